"""Frequency caps (MISSION items 6, 14): ``rate.*`` and ``region.strict``.

Rule ids held here, in evaluation order:

- ``rate.caller``: calls per caller ID per minute / hour / day (contract ``caps.caller``).
- ``rate.trunk_cps``: calls per second on the trunk (``caps.trunk_cps``).
- ``rate.callee``: calls to one callee per customer per minute / hour / day (``caps.callee``).
- ``rate.pair``: calls from one caller to one callee per window (``caps.pair``).
- ``rate.concurrency``: concurrent calls on the trunk (``caps.concurrency``): a lease per
  call UUID, released when the call hangs up (``outcome_ops``) or after ``max_call_s``.
- ``region.strict``: a key region's stricter cap (``key_regions``) for a call whose caller
  or callee is in the region. It reads the same counters as ``rate.*``.

A cap of N lets N calls through in its window and fires from the N+1-th. The counters
are read from the plan's results (``screening/counting.py`` explains the plan); with no
counters the engine records these rules as not evaluated.
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import (
    RATE_CALLEE,
    RATE_CALLER,
    RATE_CONCURRENCY,
    RATE_PAIR,
    RATE_TRUNK_CPS,
    REGION_STRICT,
)
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.readings import CapProbe, CounterReadings
from fs_plugin.screening.rules.base import CallContext, Check, fired

__all__ = ["CHECKS", "check_region_strict"]


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _positions(counts: CounterReadings) -> list[tuple[CapProbe, int]]:
    assert counts.results is not None
    out = []
    for probe in counts.plan.caps:
        n = probe.position(counts.results[probe.index])
        if n is not None:
            out.append((probe, n))
    return out


def _this_call(probe: CapProbe, n: int) -> str:
    if probe.rule == RATE_CONCURRENCY:
        return f"this would be the {_ordinal(n)}"
    return f"this is the {_ordinal(n)}"


def _rate_check(rule_id: str) -> Check:
    def check(ctx: CallContext, rule: RuleSettings) -> RuleResult:
        counts = ctx.counts
        if counts is None:
            return rule.idle
        for probe, n in _positions(counts):
            if probe.rule != rule_id or probe.limit is None or n <= probe.limit:
                continue
            owner = ctx.customer.id if ctx.customer is not None else "-"
            return fired(rule, f"{probe.describe(probe.limit)} by the contract of customer "
                               f"{owner}; {_this_call(probe, n)}")
        return rule.idle

    check.__name__ = f"check_{rule_id.replace('.', '_')}"
    return check


def check_region_strict(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    counts = ctx.counts
    if counts is None:
        return rule.idle
    for probe, n in _positions(counts):
        if probe.region_limit is None or n <= probe.region_limit:
            continue
        return fired(rule, f"key region {probe.region} ({probe.region_why}): "
                           f"{probe.describe(probe.region_limit)}; {_this_call(probe, n)}",
                     label=rule.label)
    return rule.idle


CHECKS: dict[str, Check] = {
    RATE_CALLER: _rate_check(RATE_CALLER),
    RATE_TRUNK_CPS: _rate_check(RATE_TRUNK_CPS),
    RATE_CALLEE: _rate_check(RATE_CALLEE),
    RATE_PAIR: _rate_check(RATE_PAIR),
    RATE_CONCURRENCY: _rate_check(RATE_CONCURRENCY),
    REGION_STRICT: check_region_strict,
}

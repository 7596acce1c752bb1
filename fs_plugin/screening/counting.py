"""The counter side of a decision: which counter ops a call needs, and their readings.

The protocol on the call path (one round trip to the counter store)::

    plan = plan_counters(facts, snapshot, now=now)      # pure
    results = await store.execute(plan.ops)             # skipped when plan.ops == ()
    decision = decide(facts, snapshot, CounterReadings(plan, results, None), now=now)

On a store error or missed deadline: ``CounterReadings(plan, None, "why")``; with no
store configured at all: ``counts=None``. Either way the counter rules are recorded
as not evaluated and the trunk's ``on_error`` decides (``system.counters_unavailable``).

What the plan does (each rule's keys are documented where they are built, below):

* **Caps** (``rate.*``, ``region.strict``): one ``Hit`` per cap window (one ``Acquire``
  for concurrency). The contract's limit (``rate.*``) and a key region's stricter
  limit (``region.strict``) share the counter; the op's ``limit`` is the smallest
  limit whose rule is enforced with verdict BLOCK, so a call that will be refused
  for it does not consume quota, while calls that go on (shadow, warn) are counted.
  A call the pure rules already block (enforced) only peeks: it is refused anyway and
  must not use up a caller's quota. The call is the n-th in the window, and a cap of
  N fires from n = N + 1: N calls pass, the next is blocked.
* A cap refused by one counter cannot un-count the call on the others in the same
  batch (one round trip has no conditionals): a refused call may still count
  towards the other caps. Counting errs towards caution, never towards excess.
* **Bombing** (呼死你) and **wangiri** (响一声): see ``rules/pattern.py`` and
  ``outcomes.py``; every attempt counts towards bombing, refused or not, because a
  flood that keeps being refused is still a flood.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fs_plugin.counters.ops import Acquire, Distinct, GetFlag, Hit, Op
from fs_plugin.policy.catalogue import (
    PATTERN_BOMBING,
    PATTERN_WANGIRI,
    RATE_CALLEE,
    RATE_CALLER,
    RATE_CONCURRENCY,
    RATE_PAIR,
    RATE_TRUNK_CPS,
    REGION_STRICT,
)
from fs_plugin.policy.contracts import DEFAULT_MAX_CALL_S, CapLimits, region_limits
from fs_plugin.policy.snapshot import PolicySnapshot, RuleSettings
from fs_plugin.screening.model import CallFacts, Mode, Verdict
from fs_plugin.screening.readings import (
    BombingProbe,
    CapProbe,
    CounterPlan,
    CounterReadings,
    WangiriProbe,
    bombing_keys,
    concurrency_key,
    wangiri_keys,
)
from fs_plugin.screening.rules.base import CallContext

__all__ = ["NO_LIMIT", "CounterPlan", "CounterReadings", "plan_counters", "plan_for"]

#: ``Acquire`` needs a limit; a shadow-only concurrency cap takes the lease whatever the
#: count (the call goes on) with this, and compares the count itself.
NO_LIMIT = 1_000_000_000

_NO_CAPS = CapLimits()


# -- planning ------------------------------------------------------------------------


def _blocking(rule: RuleSettings) -> bool:
    return rule.mode is Mode.ENFORCE and rule.verdict is Verdict.BLOCK


class _Builder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.caps: list[CapProbe] = []
        self.rules: set[str] = set()

    def add(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1


def _cap_windows(
    b: _Builder,
    rule: RuleSettings,
    region_rule: RuleSettings,
    base: tuple[tuple[float, int], ...],
    strict: Mapping[float, tuple[int, str, str]],
    key: str,
    subject: str,
    tag: str | None,
    peek: bool,
) -> None:
    """One Hit per window capped by the contract (``base``) or a key region (``strict``)."""
    limits = dict(base) if rule.mode is not Mode.OFF else {}
    windows = sorted(set(limits) | set(strict)) if strict else sorted(limits)
    rule_blocks = _blocking(rule)
    region_blocks = _blocking(region_rule)
    for window in windows:
        limit = limits.get(window)
        region = strict.get(window)
        hard = [lim for lim, on in ((limit, rule_blocks),
                                    (region[0] if region else None, region_blocks))
                if lim is not None and on]
        op_limit = min(hard) if hard else None
        index = b.add(Hit(f"{key}:{int(window)}", window, op_limit, peek=peek, tag=tag))
        b.caps.append(CapProbe(
            index, rule.id, subject, window, limit,
            region[0] if region else None, region[1] if region else None,
            region[2] if region else "", peek,
        ))
        b.rules.add(rule.id if limit is not None else REGION_STRICT)
        if region is not None:
            b.rules.add(REGION_STRICT)


def _capped(
    rule: RuleSettings,
    base: tuple[tuple[float, int], ...],
    strict: Mapping[float, tuple[int, str, str]],
) -> bool:
    """Whether :func:`_cap_windows` has a window to count (before naming its keys)."""
    return bool((base and rule.mode is not Mode.OFF) or strict)


_NO_WINDOWS: Mapping[float, tuple[int, str, str]] = MappingProxyType({})
_NO_STRICT: tuple[
    Mapping[str, Mapping[float, tuple[int, str, str]]], Mapping[str, tuple[int, str, str]]
] = (MappingProxyType({"caller": _NO_WINDOWS, "callee": _NO_WINDOWS, "pair": _NO_WINDOWS}),
     MappingProxyType({}))


def _strictest(
    ctx: CallContext, base: CapLimits
) -> tuple[
    Mapping[str, Mapping[float, tuple[int, str, str]]], Mapping[str, tuple[int, str, str]]
]:
    """Per cap, the strictest key-region limit for this call: (limit, region id, why)."""
    if ctx.snapshot.rules[REGION_STRICT].mode is Mode.OFF:
        return _NO_STRICT
    windows: dict[str, dict[float, tuple[int, str, str]]] | None = None
    single: dict[str, tuple[int, str, str]] = {}
    for region in ctx.snapshot.key_regions:
        why = region.covers(ctx.caller, ctx.callee)
        if why is None:
            continue
        if windows is None:
            windows = {"caller": {}, "callee": {}, "pair": {}}
        limits = region_limits(region, base)
        for name in windows:
            for window, limit in getattr(limits, name):
                old = windows[name].get(window)
                if old is None or limit < old[0]:
                    windows[name][window] = (limit, region.id, why)
        for name in ("trunk_cps", "concurrency"):
            limit = getattr(limits, name)
            if limit is not None and (name not in single or limit < single[name][0]):
                single[name] = (limit, region.id, why)
    if windows is None:
        return _NO_STRICT  # no key region covers this call
    return windows, single


def _plan_caps(b: _Builder, ctx: CallContext, peek: bool) -> None:
    snapshot = ctx.snapshot
    rules = snapshot.rules
    trunk = ctx.trunk
    contract = snapshot.contract_of(trunk)
    base = contract.caps if contract is not None else _NO_CAPS
    strict_windows, strict_single = _strictest(ctx, base)
    region_rule = rules[REGION_STRICT]
    caller = ctx.caller.key
    callee = ctx.callee.key
    # Keys and subjects are named only for the caps that count something.
    # rate.caller — key per caller ID and window; the caller's windows share a tag so one
    # script (one slot) counts the call in all of them.
    rule = rules[RATE_CALLER]
    strict = strict_windows["caller"]
    if caller is not None and _capped(rule, base.caller, strict):
        _cap_windows(b, rule, region_rule, base.caller, strict, f"rate.caller:{caller}",
                     f"caller {caller}", f"caller:{caller}", peek)
    # rate.callee — per callee per customer (the trunk when it has no customer).
    rule = rules[RATE_CALLEE]
    strict = strict_windows["callee"]
    if callee is not None and trunk is not None and _capped(rule, base.callee, strict):
        owner = trunk.customer or f"trunk.{trunk.id}"
        _cap_windows(b, rule, region_rule, base.callee, strict,
                     f"rate.callee:{owner}:{callee}", f"callee {callee} (customer {owner})",
                     None, peek)
    # rate.pair — per caller → callee pair.
    rule = rules[RATE_PAIR]
    strict = strict_windows["pair"]
    if caller is not None and callee is not None and _capped(rule, base.pair, strict):
        _cap_windows(b, rule, region_rule, base.pair, strict, f"rate.pair:{caller}:{callee}",
                     f"caller {caller} → callee {callee}", None, peek)
    if trunk is None:
        return
    # rate.trunk_cps — a one-second window per trunk.
    cps_rule = rules[RATE_TRUNK_CPS]
    cps = base.trunk_cps if cps_rule.mode is not Mode.OFF else None
    region_cps = strict_single.get("trunk_cps")
    if cps is not None or region_cps is not None:
        _cap_windows(b, cps_rule, region_rule, ((1.0, cps),) if cps is not None else (),
                     {1.0: region_cps} if region_cps is not None else {},
                     f"rate.trunk_cps:{trunk.id}", f"trunk {trunk.id}", None, peek)
    # rate.concurrency — a lease per call UUID on the trunk, released by outcome_ops.
    conc_rule = rules[RATE_CONCURRENCY]
    conc = base.concurrency if conc_rule.mode is not Mode.OFF else None
    region_conc = strict_single.get("concurrency")
    if (conc is None and region_conc is None) or not ctx.facts.uuid:
        return  # no cap, or no UUID to release the lease by
    hard = [lim for lim, on in ((conc, _blocking(conc_rule)),
                                (region_conc[0] if region_conc else None,
                                 _blocking(region_rule)))
            if lim is not None and on]
    # A peek is an Acquire with limit 0: never granted (unless this call already holds
    # the lease), so it reads the live count without taking a slot.
    limit = 0 if peek else (min(hard) if hard else NO_LIMIT)
    ttl = contract.max_call_s if contract is not None else float(DEFAULT_MAX_CALL_S)
    index = b.add(Acquire(concurrency_key(trunk.id), ctx.facts.uuid, limit, ttl))
    b.caps.append(CapProbe(
        index, RATE_CONCURRENCY, f"trunk {trunk.id}", 0.0, conc,
        region_conc[0] if region_conc else None, region_conc[1] if region_conc else None,
        region_conc[2] if region_conc else "", peek,
    ))
    if conc is not None:
        b.rules.add(RATE_CONCURRENCY)
    if region_conc is not None:
        b.rules.add(REGION_STRICT)


def _plan_bombing(b: _Builder, ctx: CallContext) -> BombingProbe | None:
    cfg = ctx.snapshot.patterns.bombing
    caller, callee = ctx.caller.key, ctx.callee.key
    if cfg is None or caller is None or callee is None:
        return None
    if ctx.snapshot.rules[PATTERN_BOMBING].mode is Mode.OFF:
        return None
    tag, keys = bombing_keys(callee, caller)
    window = float(cfg.window_s)
    probe = BombingProbe(
        pair=b.add(Hit(keys["pair"], window, tag=tag)),
        callee=b.add(Hit(keys["callee"], window, tag=tag)),
        callers=b.add(Distinct(keys["callers"], caller, window, tag=tag)),
        # Callers seen over the whole flag period: while the callee is flagged, a caller
        # already in this set is one of the sources of the flood.
        sources=b.add(Distinct(keys["sources"], caller, float(max(cfg.flag_period_s,
                                                                   cfg.window_s)), tag=tag)),
        flag=b.add(GetFlag(keys["flag"], tag=tag)),
        caller_key=caller,
        callee_key=callee,
    )
    b.rules.add(PATTERN_BOMBING)
    return probe


def _plan_wangiri(b: _Builder, ctx: CallContext) -> WangiriProbe | None:
    cfg = ctx.snapshot.patterns.wangiri
    caller = ctx.caller.key
    if cfg is None or caller is None or ctx.snapshot.rules[PATTERN_WANGIRI].mode is Mode.OFF:
        return None
    tag, keys = wangiri_keys(caller)
    b.rules.add(PATTERN_WANGIRI)
    return WangiriProbe(b.add(GetFlag(keys["flag"], tag=tag)), caller)


def plan_for(ctx: CallContext, *, peek: bool) -> CounterPlan:
    """The plan for a call already in a :class:`CallContext` (the engine's entry)."""
    b = _Builder()
    _plan_caps(b, ctx, peek)
    bombing = _plan_bombing(b, ctx)
    wangiri = _plan_wangiri(b, ctx)
    if not b.ops:
        return CounterPlan(uuid=ctx.facts.uuid)
    return CounterPlan(tuple(b.ops), tuple(b.caps), bombing, wangiri, frozenset(b.rules),
                       ctx.facts.uuid)


def plan_counters(facts: CallFacts, snapshot: PolicySnapshot, *, now: float) -> CounterPlan:
    """The counter ops ``facts`` needs under ``snapshot`` (empty: skip the round trip).

    Pure and cheap: it evaluates the pure rules to know whether the call is refused
    anyway (then cap counters are only read, see the module docstring).
    """
    from fs_plugin.screening.engine import pure_block

    ctx = CallContext(facts, snapshot, now)
    return plan_for(ctx, peek=pure_block(ctx))



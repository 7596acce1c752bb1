"""Counter ops from how calls ended (``CHANNEL_HANGUP_COMPLETE``), off the call path.

The protocol, run by the controller for **every** outcome, in the background::

    ops = outcome_ops(outcome, snapshot, now=now)
    if ops:
        results = await store.execute(ops)                      # round trip 1
        more = outcome_followup(outcome, snapshot, results)     # pure
        if more:
            await store.execute(more)                           # round trip 2 (rare)

``outcome_ops`` does what needs no reading first, and reads what the thresholds need:

* ``rate.concurrency``: ``Release`` of the call's lease (the trunk from ``fsp_trunk``;
  a hangup whose trunk is unknown releases on every leased trunk — a release of a
  lease never taken is a no-op). The lease would also expire after ``max_call_s``.
* ``pattern.wangiri``: a short (ring < ``max_ring_s``), unanswered, caller-cancelled
  (``recv_cancel``) call is a ``Hit`` on the caller's short-call counter and a
  ``Distinct`` of its callees (tag ``wangiri:<caller>``).
* ``pattern.bombing``: reads the callee's counters that the call path wrote (pair
  count, call count, distinct callers).

``outcome_followup`` reads those results and returns the ``Flag`` ops for thresholds
crossed: the caller flagged as wangiri (both short calls and distinct callees above
their thresholds) for ``flag_period_s``, the callee flagged as a 呼死你 target for
``flag_period_s``. Setting a flag again renews it, so a continuing pattern stays
flagged. The flag is written within one hangup of the crossing call; the call path
reads it on the next call (``pattern.*`` rules). Both functions are pure; the
followup derives the layout of ``results`` from (outcome, snapshot) exactly as
``outcome_ops`` did, and returns nothing if the results do not fit it (e.g. the
policy was reloaded between the two steps).
"""

from __future__ import annotations

from dataclasses import dataclass

from fs_plugin.counters.ops import (
    CountResult,
    Distinct,
    DistinctResult,
    Flag,
    Get,
    Hit,
    HitResult,
    Op,
    Release,
    Result,
)
from fs_plugin.policy.catalogue import PATTERN_BOMBING, PATTERN_WANGIRI
from fs_plugin.policy.snapshot import PolicySnapshot
from fs_plugin.screening.model import Mode, Outcome
from fs_plugin.screening.readings import bombing_keys, concurrency_key, wangiri_keys
from fs_plugin.screening.rules.base import dialled, number_of

__all__ = ["MAX_RELEASES", "OutcomeSteps", "outcome_followup", "outcome_ops", "outcome_steps"]

#: Releases sent for a hangup whose trunk is unknown: a policy with more leased trunks
#: than this leaves the rest to expire (``max_call_s``) rather than make every hangup a
#: batch of hundreds of ops.
MAX_RELEASES = 32


@dataclass(frozen=True, slots=True)
class OutcomeSteps:
    """Both steps for one hangup: the first step's ``ops``, and :meth:`followup` for
    their results (what ``outcome_ops`` and ``outcome_followup`` compute, laid out once
    for a caller that runs both against the same snapshot)."""

    ops: tuple[Op, ...]
    #: Indices of the wangiri Hit and Distinct, and the caller key.
    wangiri: tuple[int, int, str] | None
    #: Indices of the bombing pair Get, calls Get, callers Distinct; callee and caller keys.
    bombing: tuple[int, int, int, str, str] | None

    def followup(
        self, snapshot: PolicySnapshot, results: tuple[Result, ...]
    ) -> tuple[Op, ...]:
        """``outcome_followup`` for the results of :attr:`ops` (same ``snapshot``)."""
        return _followup(self, snapshot, results)


def outcome_steps(outcome: Outcome, snapshot: PolicySnapshot) -> OutcomeSteps:
    """The layout of both steps for one hangup (see the module docstring)."""
    return _layout(outcome, snapshot)


def _layout(outcome: Outcome, snapshot: PolicySnapshot) -> OutcomeSteps:
    ops: list[Op] = []
    trunk = snapshot.trunks.get(outcome.trunk_hint or "")
    if outcome.uuid:
        leased = (trunk.id,) if trunk is not None else snapshot.leased_trunks[:MAX_RELEASES]
        if trunk is not None and trunk.id not in snapshot.leased_trunks:
            leased = ()
        ops.extend(Release(concurrency_key(t), outcome.uuid) for t in leased)
    caller = number_of(outcome.from_user or "").key
    callee = number_of(dialled(outcome.destination or "", trunk)).key

    wangiri = None
    cfg = snapshot.patterns.wangiri
    if (
        cfg is not None
        and snapshot.rules[PATTERN_WANGIRI].mode is not Mode.OFF
        and caller is not None
        and callee is not None
        and not outcome.answered
        and outcome.caller_cancelled
        and outcome.ring_time_s is not None
        and outcome.ring_time_s < cfg.max_ring_s
    ):
        tag, keys = wangiri_keys(caller)
        window = float(cfg.window_s)
        ops.append(Hit(keys["short"], window, tag=tag))
        ops.append(Distinct(keys["callees"], callee, window, tag=tag))
        wangiri = (len(ops) - 2, len(ops) - 1, caller)

    bombing = None
    bcfg = snapshot.patterns.bombing
    if (
        bcfg is not None
        and snapshot.rules[PATTERN_BOMBING].mode is not Mode.OFF
        and caller is not None
        and callee is not None
    ):
        tag, keys = bombing_keys(callee, caller)
        ops.append(Get(keys["pair"], tag=tag))
        ops.append(Get(keys["callee"], tag=tag))
        ops.append(Distinct(keys["callers"], None, float(bcfg.window_s), tag=tag))
        bombing = (len(ops) - 3, len(ops) - 2, len(ops) - 1, callee, caller)
    return OutcomeSteps(tuple(ops), wangiri, bombing)


def outcome_ops(outcome: Outcome, snapshot: PolicySnapshot, *, now: float) -> tuple[Op, ...]:
    """The first step for one hangup: releases, wangiri statistics, bombing reads.

    ``now`` is accepted for symmetry with ``plan_counters``; the store keeps time.
    """
    del now
    return _layout(outcome, snapshot).ops


def outcome_followup(
    outcome: Outcome, snapshot: PolicySnapshot, results: tuple[Result, ...]
) -> tuple[Op, ...]:
    """The second step: ``Flag`` ops for thresholds the first step's ``results`` cross."""
    return _followup(_layout(outcome, snapshot), snapshot, results)


def _followup(
    layout: OutcomeSteps, snapshot: PolicySnapshot, results: tuple[Result, ...]
) -> tuple[Op, ...]:
    if len(results) != len(layout.ops):
        return ()
    flags: list[Op] = []
    wcfg = snapshot.patterns.wangiri
    if layout.wangiri is not None and wcfg is not None:
        hit_i, distinct_i, caller = layout.wangiri
        short, callees = results[hit_i], results[distinct_i]
        if (
            isinstance(short, HitResult)
            and isinstance(callees, DistinctResult)
            and short.count > wcfg.short_calls
            and callees.count > wcfg.callees
        ):
            tag, keys = wangiri_keys(caller)
            flags.append(Flag(
                keys["flag"], float(wcfg.flag_period_s),
                f"{short.count} short calls to {callees.count} callees in {wcfg.window_s} s",
                tag=tag,
            ))
    bcfg = snapshot.patterns.bombing
    if layout.bombing is not None and bcfg is not None:
        pair_i, calls_i, callers_i, callee, caller = layout.bombing
        pair, calls, callers = results[pair_i], results[calls_i], results[callers_i]
        if (
            isinstance(pair, CountResult)
            and isinstance(calls, CountResult)
            and isinstance(callers, DistinctResult)
        ):
            why = None
            if pair.count > bcfg.per_caller:
                why = f"{pair.count} calls from {caller} in {bcfg.window_s} s"
            elif calls.count > bcfg.calls and callers.count >= bcfg.min_callers:
                why = (f"{calls.count} calls from {callers.count} callers in "
                       f"{bcfg.window_s} s")
            if why is not None:
                tag, keys = bombing_keys(callee, caller)
                flags.append(Flag(keys["flag"], float(bcfg.flag_period_s), why, tag=tag))
    return tuple(flags)

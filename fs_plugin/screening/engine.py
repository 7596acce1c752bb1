"""The screening engine: a pure function of (facts, policy snapshot, counter readings).

Rules run in the documented order (``fs_plugin.policy.catalogue.RULE_ORDER``),
all of them on every call — a shadow rule must be evaluated even when an earlier
rule blocks, or a week of shadow running would under-count it. Rules in mode
``off`` are skipped and leave no trail. The verdict is the first enforced BLOCK,
else the first enforced WARN, else PASS; shadow results never change it.

Counter rules (``rate.*``, ``pattern.*``, ``region.strict``) read the counter
store's results for the call's :class:`~fs_plugin.screening.counting.CounterPlan`.
Without them (no store, store error, deadline) each such rule the call needed is
recorded as not evaluated, the pure rules still apply, and the trunk's
``on_error`` decides: ``block`` adds an enforced ``system.counters_unavailable``
block (cause NORMAL_TEMPORARY_FAILURE → SIP 503 by default: a temporary failure
the caller's network may retry or route around), ``pass`` lets the call go on
with the pure rules' verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from fs_plugin.causes import sip_status_for
from fs_plugin.policy.catalogue import (
    COUNTER_RULES,
    DEFAULT_LABEL_TEXT,
    SYSTEM_COUNTERS_UNAVAILABLE,
    SYSTEM_FALLBACK,
    LabelCategory,
)
from fs_plugin.policy.models import Action
from fs_plugin.policy.snapshot import PolicySnapshot, RuleSettings
from fs_plugin.screening.counting import plan_for
from fs_plugin.screening.model import CallFacts, Decision, Mode, RuleResult, Verdict
from fs_plugin.screening.readings import CounterPlan, CounterReadings
from fs_plugin.screening.rules import CHECKS, CallContext, label

__all__ = ["Screening", "decide", "explain", "fallback_decision", "pure_block"]

#: What a WARN shows the callee when neither the rule nor the policy gives a label:
#: every warning must carry one (the flash SMS and the caller-name label are built
#: from it).
_DEFAULT_WARN_LABEL = DEFAULT_LABEL_TEXT[LabelCategory.OTHER]

_PURE_CHECKS = tuple((rule_id, check) for rule_id, check in CHECKS
                     if rule_id not in COUNTER_RULES)

_NO_STORE = "no counter store configured"


class _Table:
    """The checks a policy runs, in order, with their settings; rules that are off are
    left out. It depends only on the snapshot's ``rules``, and is built once for them."""

    __slots__ = ("pure", "rules", "trail")

    def __init__(self, rules: Mapping[str, RuleSettings]) -> None:
        self.rules = rules
        self.pure = tuple((rule_id, check, rules[rule_id]) for rule_id, check in _PURE_CHECKS
                          if rules[rule_id].mode is not Mode.OFF)
        self.trail = tuple((rule_id, check, rules[rule_id], rule_id in COUNTER_RULES)
                           for rule_id, check in CHECKS if rules[rule_id].mode is not Mode.OFF)


#: Tables by ``id(snapshot.rules)``, each holding its (small) rules mapping: a reload
#: or a ledger overlay brings new rules, and a few of them may be in use at once.
_TABLES: dict[int, _Table] = {}
_MAX_TABLES = 8


def _table(snapshot: PolicySnapshot) -> _Table:
    rules = snapshot.rules
    table = _TABLES.get(id(rules))
    if table is None or table.rules is not rules:
        if len(_TABLES) >= _MAX_TABLES:
            del _TABLES[next(iter(_TABLES))]
        table = _TABLES[id(rules)] = _Table(rules)
    return table


def pure_block(ctx: CallContext) -> bool:
    """Whether a rule that needs no counters already blocks the call (enforced)."""
    rules = ctx.snapshot.rules
    for rule_id, check in _PURE_CHECKS:
        settings = rules[rule_id]
        if settings.mode is not Mode.ENFORCE:
            continue
        result = check(ctx, settings)
        if result.fired and result.verdict is Verdict.BLOCK:
            return True
    labelled = label.check_labels(ctx)
    return labelled is not None and labelled.enforced and labelled.verdict is Verdict.BLOCK


def _not_evaluated(settings: RuleSettings, problem: str) -> RuleResult:
    return RuleResult(settings.id, False, settings.verdict, settings.mode,
                      f"not evaluated: counters unavailable ({problem})")


def _counters_unavailable(
    ctx: CallContext, snapshot: PolicySnapshot, problem: str
) -> RuleResult | None:
    settings = snapshot.rules[SYSTEM_COUNTERS_UNAVAILABLE]
    if settings.mode is Mode.OFF:
        return None
    trunk = ctx.trunk
    if trunk is not None:
        action, whose = trunk.on_error, f"trunk {trunk.id}"
    else:
        action, whose = snapshot.defaults.on_error, "policy default"
    reason = f"counters unavailable ({problem}); on_error={action.value} ({whose})"
    if action is Action.BLOCK:
        return RuleResult(settings.id, True, Verdict.BLOCK, settings.mode, reason,
                          settings.cause)
    return RuleResult(settings.id, False, Verdict.BLOCK, settings.mode, reason)


def decide(
    facts: CallFacts,
    snapshot: PolicySnapshot,
    counts: CounterReadings | None = None,
    *,
    now: float | None = None,
) -> Decision:
    """Screen one call leg.

    ``counts`` holds the counter store's results for ``plan_counters(facts, snapshot)``
    (see ``screening/counting.py`` for the protocol); ``None`` means no counter store
    is configured. ``now`` (epoch seconds) is the time calendars and label expiry are
    judged at; by default the channel data's own timestamp, and the wall clock only
    when that is missing.
    """
    if now is None:
        now = facts.timestamp_us / 1e6 if facts.timestamp_us > 0 else time.time()
    return _decide(CallContext(facts, snapshot, now), counts, None, _UNSET)


class Screening:
    """``plan_counters`` then ``decide`` for one call, sharing one :class:`CallContext`.

    The two-step protocol run by one caller that holds on to the call between the
    steps (the offline replay): the numbers are classified and the trunk matched once,
    and each pure rule runs once — its result tells the plan whether the call is
    refused anyway and is reused in the trail. The plan and the decision are those of
    ``plan_counters(facts, snapshot, now=now)`` and ``decide(facts, snapshot, counts,
    now=now)``: the checks are pure, so running them once or twice gives the same.
    """

    __slots__ = ("_ctx", "_labelled", "_pure", "plan")

    def __init__(self, facts: CallFacts, snapshot: PolicySnapshot, *, now: float) -> None:
        ctx = CallContext(facts, snapshot, now)
        pure: dict[str, RuleResult] = {}
        refused = False
        for rule_id, check, settings in _table(snapshot).pure:
            result = pure[rule_id] = check(ctx, settings)
            if (settings.mode is Mode.ENFORCE and result.fired
                    and result.verdict is Verdict.BLOCK):
                refused = True
        labelled = label.check_labels(ctx)
        if labelled is not None and labelled.enforced and labelled.verdict is Verdict.BLOCK:
            refused = True
        self._ctx = ctx
        self._pure = pure
        self._labelled = labelled
        #: The counter ops this call needs (``plan_counters``).
        self.plan: CounterPlan = plan_for(ctx, peek=refused)

    def decide(self, counts: CounterReadings | None) -> Decision:
        """``decide`` with the store's readings for :attr:`plan` (None: no store)."""
        return _decide(self._ctx, counts, self._pure, self._labelled)


class _Unset:
    """The label check has not run yet (``None`` is its "no label" answer)."""


_UNSET = _Unset()


def _decide(
    ctx: CallContext,
    counts: CounterReadings | None,
    pure: dict[str, RuleResult] | None,
    labelled: RuleResult | _Unset | None,
) -> Decision:
    """The engine proper; ``pure`` and ``labelled`` are results already computed for
    ``ctx`` (:class:`Screening`), else the checks run here."""
    snapshot = ctx.snapshot
    problem: str | None
    plan: CounterPlan
    if counts is None:
        # Which counter rules this call would need: those are "not evaluated".
        plan = plan_for(ctx, peek=True)
        problem = _NO_STORE if plan.ops else None
    else:
        plan = counts.plan
        problem = counts.problem if plan.ops else None
        if problem is None and plan.ops:
            ctx.counts = counts
    ctx.counts_problem = problem
    rules = snapshot.rules
    trail: list[RuleResult] = []
    for rule_id, check, settings, counter_rule in _table(snapshot).trail:
        if counter_rule:
            if rule_id not in plan.rules:
                trail.append(settings.idle)
                continue
            if problem is not None:
                trail.append(_not_evaluated(settings, problem))
                continue
        elif pure is not None:
            trail.append(pure[rule_id])
            continue
        trail.append(check(ctx, settings))
    if isinstance(labelled, _Unset):
        labelled = label.check_labels(ctx)
    if labelled is not None:
        trail.append(labelled)
    if problem is not None:
        unavailable = _counters_unavailable(ctx, snapshot, problem)
        if unavailable is not None:
            trail.append(unavailable)

    deciding: RuleResult | None = None
    for result in trail:
        if result.fired and result.mode is Mode.ENFORCE:
            if result.verdict is Verdict.BLOCK:
                deciding = result
                break
            if deciding is None:
                deciding = result
    trunk = ctx.trunk
    trunk_id = trunk.id if trunk is not None else None
    customer = trunk.customer if trunk is not None else None
    if deciding is None:
        shadow = [r.rule for r in trail if r.fired]
        reason = "no enforced rule fired"
        if shadow:
            reason += "; in shadow mode: " + ", ".join(shadow)
        return Decision(
            Verdict.PASS, None, reason, trunk=trunk_id, customer=customer,
            policy_version=snapshot.version, trail=tuple(trail),
        )
    settings = rules[deciding.rule]
    if deciding.verdict is Verdict.BLOCK:
        return Decision(
            Verdict.BLOCK, deciding.rule, deciding.reason, cause=settings.cause,
            sip_status=settings.sip_status, label=deciding.label,
            announcement=settings.announcement, trunk=trunk_id, customer=customer,
            policy_version=snapshot.version, trail=tuple(trail),
        )
    return Decision(
        Verdict.WARN, deciding.rule, deciding.reason,
        label=deciding.label or settings.label or _DEFAULT_WARN_LABEL,
        trunk=trunk_id, customer=customer, policy_version=snapshot.version, trail=tuple(trail),
    )


def fallback_decision(
    facts: CallFacts, snapshot: PolicySnapshot | None, error: str
) -> Decision:
    """The decision when screening could not finish (deadline, internal error).

    The trunk's ``on_error`` applies (``pass`` = fail-open, the default), or the
    policy's ``defaults.on_error`` for a call on no known trunk; with no policy
    loaded at all the call passes. Never raises: it is the last resort.
    """
    trunk = None
    if snapshot is not None:
        try:
            trunk = snapshot.match_trunk(facts)
        except Exception:  # the fallback must not fail on the input that broke decide()
            trunk = None
    if trunk is not None:
        action, whose = trunk.on_error, f"trunk {trunk.id}"
    elif snapshot is not None:
        action, whose = snapshot.defaults.on_error, "policy default"
    else:
        action, whose = Action.PASS, "no policy loaded"
    reason = f"screening failed ({error}); on_error={action.value} ({whose})"
    version = snapshot.version if snapshot is not None else ""
    trunk_id = trunk.id if trunk is not None else None
    customer = trunk.customer if trunk is not None else None
    if action is Action.BLOCK:
        assert snapshot is not None
        cause = snapshot.defaults.block_cause
        result = RuleResult(SYSTEM_FALLBACK, True, Verdict.BLOCK, Mode.ENFORCE, reason, cause)
        return Decision(
            Verdict.BLOCK, SYSTEM_FALLBACK, reason, cause=cause, sip_status=sip_status_for(cause),
            trunk=trunk_id, customer=customer, policy_version=version, trail=(result,),
            fallback=True,
        )
    result = RuleResult(SYSTEM_FALLBACK, True, Verdict.PASS, Mode.ENFORCE, reason)
    return Decision(
        Verdict.PASS, SYSTEM_FALLBACK, reason, trunk=trunk_id, customer=customer,
        policy_version=version, trail=(result,), fallback=True,
    )


def explain(decision: Decision) -> str:
    """A multi-line explanation for people (``fs-plugin explain``)."""
    lines = [f"verdict: {decision.verdict.value.upper()}"]
    lines.append(f"rule:    {decision.rule or '-'}")
    if decision.cause is not None:
        lines.append(f"cause:   {decision.cause} (SIP {decision.sip_status})")
    lines.append(f"reason:  {decision.reason}")
    if decision.label:
        lines.append(f"label:   {decision.label}")
    if decision.announcement:
        lines.append(f"announcement: {decision.announcement}")
    lines.append(
        f"trunk:   {decision.trunk or '-'}   customer: {decision.customer or '-'}   "
        f"policy: {decision.policy_version or '-'}"
        + ("   (fallback)" if decision.fallback else "")
    )
    lines.append("trail:")
    width = max((len(r.rule) for r in decision.trail), default=0)
    for r in decision.trail:
        state = "FIRED" if r.fired else "-    "
        what = f"{r.verdict.value:<5}" if r.fired else "     "
        mark = "*" if r.rule == decision.rule and r.fired else " "
        text = f"{mark} {r.rule:<{width}}  {state}  {r.mode.value:<7}  {what}"
        if r.reason:
            text += f"  {r.reason}"
        lines.append(text.rstrip())
    return "\n".join(lines) + "\n"

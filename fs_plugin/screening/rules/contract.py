"""Subscriber contracts (MISSION items 6, 13, 15): suspension, calling hours, targets.

Rule ids held here, in evaluation order:

- ``contract.suspended``: the trunk's customer is suspended or terminated. A
  customer's contract state applies to every call of every trunk it holds,
  whatever the caller ID.
- ``credit.blacklisted``: the trunk's customer is on the joint-punishment list
  (一处失信，处处受限) kept in the ledger; the list reaches the snapshot through
  :func:`fs_plugin.policy.overlay.apply_ledger`, so without a ledger it never fires.
- ``contract.hours``: the call is outside the customer's permitted calling hours
  (its contract's ``hours``, else its industry's), judged in the **trunk's** time
  zone: a permitted weekday (or a make-up workday of the holiday file, counted as
  Mon–Fri) that is not a public holiday, inside one of the time windows; a window
  across midnight belongs to the day it opens on, so after midnight it is that
  day's weekday that counts (``20:00-08:00`` Mon–Fri permits Saturday 01:00, not
  Monday 01:00). When the ledger (台账) holds a
  contract in force for the customer, its hours apply as well: the call must be
  inside both, and the reason names the one it is outside.
- ``contract.targets``: the callee is not a permitted class (mobile, fixed, …), is
  outside the permitted regions, or inside an excluded region. Regions match the
  callee's area code (``0898``) or its attribution text (``海南`` matches
  ``海南省海口市``), so mobiles are matched by province or city name. A ledger
  contract's targets apply on top of the policy's, as its hours do.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

from fs_plugin.numbering import Number
from fs_plugin.policy.catalogue import (
    CONTRACT_HOURS,
    CONTRACT_SUSPENDED,
    CONTRACT_TARGETS,
    CREDIT_BLACKLISTED,
)
from fs_plugin.policy.contracts import CompiledTargets, region_match
from fs_plugin.policy.models import CustomerStatus
from fs_plugin.policy.overlay import LedgerSnapshot
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.rules.base import CallContext, Check, fired, shown

__all__ = ["CHECKS", "check_blacklisted", "check_hours", "check_suspended", "check_targets"]


def check_suspended(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    customer = ctx.customer
    if customer is None or customer.status is CustomerStatus.ACTIVE:
        return rule.idle
    trunk_id = ctx.trunk.id if ctx.trunk is not None else "-"
    reason = f"customer {customer.id} of trunk {trunk_id} is {customer.status.value}"
    snapshot = ctx.snapshot
    if isinstance(snapshot, LedgerSnapshot):
        why = snapshot.suspensions.get(customer.id)
        if why is not None:
            reason = f"{reason} ({why})"
    return fired(rule, reason)


def check_blacklisted(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    customer = ctx.customer
    snapshot = ctx.snapshot
    if customer is None or not isinstance(snapshot, LedgerSnapshot):
        return rule.idle
    why = snapshot.blacklisted.get(customer.id)
    if why is None:
        return rule.idle
    trunk_id = ctx.trunk.id if ctx.trunk is not None else "-"
    return fired(
        rule, f"customer {customer.id} of trunk {trunk_id} is on the joint-punishment list: {why}"
    )


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def check_hours(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    trunk = ctx.trunk
    contract = ctx.snapshot.contract_of(trunk)
    if trunk is None or contract is None:
        return rule.idle
    terms = contract.hours_terms()
    if not terms:
        return rule.idle
    try:
        local = dt.datetime.fromtimestamp(ctx.now, _zone(trunk.timezone))
    except (OverflowError, OSError, ValueError):
        # A clock or timestamp outside what datetime holds: the hours cannot be judged,
        # and refusing every call for it would turn one bad timestamp into an outage.
        return RuleResult(rule.id, False, rule.verdict, rule.mode,
                          f"not evaluated: time {ctx.now!r} out of range")
    for hours, source in terms:
        ok, why = hours.permits(local)
        if not ok:
            return fired(
                rule,
                f"{local:%Y-%m-%d %H:%M} {trunk.timezone} is {why}: customer "
                f"{contract.customer} may call {hours.text} ({source})",
            )
    return rule.idle


def _refusal(t: CompiledTargets, callee: Number, who: str, source: str) -> str | None:
    """Why ``t`` does not permit ``callee``; None when it does."""
    if t.classes and callee.cls not in t.classes:
        allowed = ", ".join(sorted(c.value for c in t.classes))
        return (f"callee {shown(callee)} is a {callee.cls.value} number; {who} may call "
                f"{allowed} numbers ({source})")
    where = callee.area_code or callee.region or "unknown region"
    if t.regions and region_match(callee, t.regions) is None:
        return (f"callee {shown(callee)} ({where}) is outside the regions {who} may call: "
                f"{', '.join(t.regions)} ({source})")
    excluded = region_match(callee, t.exclude) if t.exclude else None
    if excluded is not None:
        return (f"callee {shown(callee)} ({where}) is in {excluded}, which {who} may not "
                f"call ({source})")
    return None


def check_targets(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    contract = ctx.snapshot.contract_of(ctx.trunk)
    if contract is None:
        return rule.idle
    terms = contract.targets_terms()
    if not terms:
        return rule.idle
    callee = ctx.callee
    who = f"customer {contract.customer}"
    if callee.key is None:
        return fired(rule, f"callee {shown(callee)} is not a valid number; {who} may only "
                           "call its permitted targets")
    for targets, source in terms:
        why = _refusal(targets, callee, who, source)
        if why is not None:
            return fired(rule, why)
    return rule.idle


CHECKS: dict[str, Check] = {
    CONTRACT_SUSPENDED: check_suspended,
    CREDIT_BLACKLISTED: check_blacklisted,
    CONTRACT_HOURS: check_hours,
    CONTRACT_TARGETS: check_targets,
}

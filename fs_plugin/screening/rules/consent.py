"""Consent for marketing calls (MISSION item 7): ``consent.dnc`` and ``consent.required``.

Both apply only to **marketing** calls: a trunk with ``marketing: true``, or any trunk
of a customer whose ``business_type`` is ``marketing``.

- ``consent.dnc``: the callee is on the global do-not-call list (``lists.dnc``) or on
  the customer's own (``contract.consent.dnc``). Once a user refuses, no further
  calls — a consent record does not outweigh a refusal.
- ``consent.required``: the callee is not on the customer's consent whitelist
  (``contract.consent.whitelist``); a marketing customer with no whitelist may call
  no one.

Lookups are binary searches in compact in-memory lists (``policy/lists.py``).
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import CONSENT_DNC, CONSENT_REQUIRED
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.rules.base import CallContext, Check, fired, shown

__all__ = ["CHECKS", "check_dnc", "check_required"]


def check_dnc(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    if not ctx.snapshot.is_marketing(ctx.trunk):
        return rule.idle
    callee = ctx.callee
    if callee in ctx.snapshot.dnc:
        return fired(rule, f"callee {shown(callee)} refused marketing calls "
                           f"(global do-not-call list {ctx.snapshot.dnc.describe})")
    contract = ctx.snapshot.contract_of(ctx.trunk)
    if contract is not None and callee in contract.dnc:
        return fired(rule, f"callee {shown(callee)} refused calls from customer "
                           f"{contract.customer} (do-not-call list {contract.dnc.describe})")
    return rule.idle


def check_required(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    trunk = ctx.trunk
    if not ctx.snapshot.is_marketing(trunk):
        return rule.idle
    assert trunk is not None  # is_marketing needs a trunk
    contract = ctx.snapshot.contract_of(trunk)
    callee = ctx.callee
    if contract is None or contract.whitelist is None:
        owner = trunk.customer or trunk.id
        return fired(rule, f"marketing call to {shown(callee)}: {owner} has no consent "
                           "whitelist")
    if callee in contract.whitelist:
        return rule.idle
    return fired(rule, f"marketing call to {shown(callee)}, who is not on customer "
                       f"{contract.customer}'s consent whitelist "
                       f"({contract.whitelist.describe})")


CHECKS: dict[str, Check] = {CONSENT_DNC: check_dnc, CONSENT_REQUIRED: check_required}

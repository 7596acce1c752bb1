"""``contract.suspended``: the trunk's customer is suspended or terminated.

A customer's contract state applies to every call of every trunk it holds,
whatever the caller ID (MISSION items 6 and 13).
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import CONTRACT_SUSPENDED
from fs_plugin.policy.models import CustomerStatus
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.rules.base import CallContext, Check, fired

__all__ = ["CHECKS", "check_suspended"]


def check_suspended(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    customer = ctx.customer
    if customer is None or customer.status is CustomerStatus.ACTIVE:
        return rule.idle
    trunk_id = ctx.trunk.id if ctx.trunk is not None else "-"
    return fired(
        rule,
        f"customer {customer.id} of trunk {trunk_id} is {customer.status.value}",
    )


CHECKS: dict[str, Check] = {CONTRACT_SUSPENDED: check_suspended}

"""``trunk.unknown``: the call matched no trunk of the policy.

Every trunk must have a known customer (谁接入谁负责), so a call on no known trunk
is refused by default (enforce, CALL_REJECTED → 603). A carrier bringing a new
switch into service can set the rule to ``shadow`` (see which calls would fail)
or ``off`` (pass them) in ``rules:``.
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import TRUNK_UNKNOWN
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.rules.base import CallContext, Check, fired

__all__ = ["CHECKS", "check_unknown"]


def check_unknown(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    if ctx.trunk is not None:
        return rule.idle
    f = ctx.facts
    return fired(
        rule,
        "the call matched no trunk of the policy "
        f"(fsp_trunk={f.trunk_hint or '-'}, gateway={f.gateway or '-'}, "
        f"sofia profile={f.sofia_profile or '-'}, source={f.network_ip or '-'})",
    )


CHECKS: dict[str, Check] = {TRUNK_UNKNOWN: check_unknown}

"""The checks, one module per rule family, each holding its rule ids.

Evaluation order is ``fs_plugin.policy.catalogue.RULE_ORDER`` (documented in
``policies/README.md``); :data:`CHECKS` pairs each id with its check in that order.
Checks of rules in ``COUNTER_RULES`` read ``CallContext.counts``; the engine only
calls them when the counters were planned and read.
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import RULE_ORDER
from fs_plugin.screening.rules import cid, consent, contract, label, pattern, rate, trunk
from fs_plugin.screening.rules.base import CallContext, Check, number_of

__all__ = ["CHECKS", "CallContext", "Check", "label", "number_of"]

_BY_ID: dict[str, Check] = {
    **trunk.CHECKS, **contract.CHECKS, **cid.CHECKS, **consent.CHECKS, **rate.CHECKS,
    **pattern.CHECKS,
}

#: (rule id, check) for every rule except the label family, in evaluation order.
CHECKS: tuple[tuple[str, Check], ...] = tuple(
    (spec.id, _BY_ID[spec.id]) for spec in RULE_ORDER if spec.id in _BY_ID
)

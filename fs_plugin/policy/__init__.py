"""Policy: YAML files → validated models → an immutable :class:`PolicySnapshot`.

``load_policy(path)`` returns a whole new snapshot or raises
:class:`fs_plugin.errors.ConfigError` naming the file, line and key;
``check_policy(path)`` lists every problem (``fs-plugin check``).
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import RULE_ORDER, RULES, LabelCategory, RuleSpec
from fs_plugin.policy.loader import check_policy, load_policy
from fs_plugin.policy.models import (
    Action,
    CallerIds,
    Customer,
    CustomerStatus,
    Defaults,
    Industry,
    Label,
    PolicyFile,
    RuleConfig,
    Trunk,
    TrunkKind,
    TrunkMatch,
)
from fs_plugin.policy.snapshot import CompiledLabel, PolicySnapshot, RuleSettings

__all__ = [
    "RULES",
    "RULE_ORDER",
    "Action",
    "CallerIds",
    "CompiledLabel",
    "Customer",
    "CustomerStatus",
    "Defaults",
    "Industry",
    "Label",
    "LabelCategory",
    "PolicyFile",
    "PolicySnapshot",
    "RuleConfig",
    "RuleSettings",
    "RuleSpec",
    "Trunk",
    "TrunkKind",
    "TrunkMatch",
    "check_policy",
    "load_policy",
]

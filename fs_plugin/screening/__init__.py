"""Screening: the checks and the engine — pure functions of (facts, snapshot, counts).

``decide``, ``fallback_decision``, ``explain`` and ``facts_from_channel_data``
are imported lazily: ``fs_plugin.policy`` imports ``screening.model`` for the
Verdict/Mode enums while the engine imports the policy, and a lazy package
init keeps that from being an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fs_plugin.screening.model import (
    CallFacts,
    Decision,
    Mode,
    Outcome,
    RuleResult,
    Verdict,
    outcome_from_event,
)

if TYPE_CHECKING:
    from fs_plugin.screening.engine import decide, explain, fallback_decision
    from fs_plugin.screening.facts import facts_from_channel_data

__all__ = [
    "CallFacts",
    "Decision",
    "Mode",
    "Outcome",
    "RuleResult",
    "Verdict",
    "decide",
    "explain",
    "facts_from_channel_data",
    "fallback_decision",
    "outcome_from_event",
]

_LAZY = {
    "decide": "fs_plugin.screening.engine",
    "explain": "fs_plugin.screening.engine",
    "fallback_decision": "fs_plugin.screening.engine",
    "facts_from_channel_data": "fs_plugin.screening.facts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

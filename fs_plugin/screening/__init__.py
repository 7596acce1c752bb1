"""Screening: the checks and the engine — pure functions of (facts, snapshot, counts).

On the call path: ``plan = plan_counters(facts, snapshot, now=...)``, run ``plan.ops``
on the counter store (one round trip; none when ``plan.ops`` is empty), then
``decide(facts, snapshot, CounterReadings(plan, results, error), now=...)``. After
each hangup: ``outcome_ops`` then ``outcome_followup`` (see ``screening/outcomes.py``).

Everything but the model is imported lazily: ``fs_plugin.policy`` imports
``screening.model`` for the Verdict/Mode enums while the engine imports the policy,
and a lazy package init keeps that from being an import cycle.
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
    from fs_plugin.screening.counting import plan_counters
    from fs_plugin.screening.engine import decide, explain, fallback_decision
    from fs_plugin.screening.facts import facts_from_channel_data
    from fs_plugin.screening.outcomes import outcome_followup, outcome_ops
    from fs_plugin.screening.readings import CounterPlan, CounterReadings

__all__ = [
    "CallFacts",
    "CounterPlan",
    "CounterReadings",
    "Decision",
    "Mode",
    "Outcome",
    "RuleResult",
    "Verdict",
    "decide",
    "explain",
    "facts_from_channel_data",
    "fallback_decision",
    "outcome_followup",
    "outcome_from_event",
    "outcome_ops",
    "plan_counters",
]

_LAZY = {
    "decide": "fs_plugin.screening.engine",
    "explain": "fs_plugin.screening.engine",
    "fallback_decision": "fs_plugin.screening.engine",
    "facts_from_channel_data": "fs_plugin.screening.facts",
    "plan_counters": "fs_plugin.screening.counting",
    "outcome_ops": "fs_plugin.screening.outcomes",
    "outcome_followup": "fs_plugin.screening.outcomes",
    "CounterPlan": "fs_plugin.screening.readings",
    "CounterReadings": "fs_plugin.screening.readings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

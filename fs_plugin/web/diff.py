"""What a policy change would do: replay call facts through two policies and compare.

Each policy gets its own in-memory counter store on a manual clock set to each
call's time, so rate caps and patterns see the calls as they came (replays are
sorted by time). Shadow hits are compared too: a rule moved from shadow to
enforce shows up as verdict changes, a new shadow rule as new shadow hits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fs_plugin.clock import ManualClock
from fs_plugin.counters import open_store
from fs_plugin.policy import PolicySnapshot
from fs_plugin.screening import CounterReadings, decide, plan_counters
from fs_plugin.screening.model import CallFacts, Decision
from fs_plugin.web.bus import mask_text

__all__ = ["PolicyDiff", "diff_policies"]

#: Changed calls listed one by one in the report; the counts cover all of them.
MAX_EXAMPLES = 50


@dataclass
class PolicyDiff:
    old_version: str
    new_version: str
    calls: int = 0
    changed: int = 0
    #: Same verdict, different deciding rule.
    rule_only: int = 0
    #: "block→pass" style transitions.
    transitions: Counter[str] = field(default_factory=Counter)
    by_trunk: Counter[str] = field(default_factory=Counter)
    #: The rule that made the difference (new deciding rule, else the old one).
    by_rule: Counter[str] = field(default_factory=Counter)
    shadow_old: Counter[str] = field(default_factory=Counter)
    shadow_new: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version, "new_version": self.new_version,
            "calls": self.calls, "changed": self.changed, "rule_only": self.rule_only,
            "transitions": dict(self.transitions.most_common()),
            "by_trunk": dict(self.by_trunk.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "shadow_old": dict(self.shadow_old.most_common()),
            "shadow_new": dict(self.shadow_new.most_common()),
            "examples": self.examples,
        }

    def text(self) -> str:
        lines = [
            f"policy {self.old_version} → {self.new_version}: {self.calls} call(s) replayed, "
            f"{self.changed} would change verdict ({self.rule_only} more keep the verdict "
            "by another rule)"
        ]
        for title, counts in (("by transition", self.transitions), ("by trunk", self.by_trunk),
                              ("by rule", self.by_rule)):
            if counts:
                lines.append(f"  {title}:")
                lines.extend(f"    {k:<32} {v}" for k, v in counts.most_common())
        moved = set(self.shadow_old) | set(self.shadow_new)
        if moved:
            lines.append("  shadow hits (old → new):")
            lines.extend(f"    {r:<32} {self.shadow_old[r]} → {self.shadow_new[r]}"
                         for r in sorted(moved))
        return "\n".join(lines)


class _Replayer:
    def __init__(self, snapshot: PolicySnapshot, start: float) -> None:
        self.snapshot = snapshot
        self.clock = ManualClock(start)
        self.store = open_store("memory://", clock=self.clock)

    async def decide(self, facts: CallFacts, at: float) -> Decision:
        self.clock.set(at)
        plan = plan_counters(facts, self.snapshot, now=at)
        results = await self.store.execute(plan.ops) if plan.ops else ()
        return decide(facts, self.snapshot, CounterReadings(plan, results, None), now=at)

    async def close(self) -> None:
        await self.store.close()


async def diff_policies(
    old: PolicySnapshot, new: PolicySnapshot, calls: Iterable[tuple[CallFacts, float]]
) -> PolicyDiff:
    """Compare the verdicts of ``old`` and ``new`` over (facts, epoch seconds) pairs."""
    ordered = sorted(calls, key=lambda c: c[1])
    report = PolicyDiff(old.version, new.version)
    start = ordered[0][1] if ordered else 0.0
    a, b = _Replayer(old, start), _Replayer(new, start)
    try:
        for facts, at in ordered:
            da = await a.decide(facts, at)
            db = await b.decide(facts, at)
            report.calls += 1
            report.shadow_old.update(r.rule for r in da.shadow_hits)
            report.shadow_new.update(r.rule for r in db.shadow_hits)
            if da.verdict is db.verdict:
                # Same verdict for another reason: worth knowing, not a change of outcome.
                report.rule_only += int(da.rule != db.rule)
                continue
            report.changed += 1
            report.transitions[f"{da.verdict.value}→{db.verdict.value}"] += 1
            report.by_trunk[db.trunk or da.trunk or "unknown"] += 1
            report.by_rule[db.rule or da.rule or "(none)"] += 1
            if len(report.examples) < MAX_EXAMPLES:
                report.examples.append({
                    "uuid": facts.uuid, "trunk": db.trunk or da.trunk,
                    "old": {"verdict": da.verdict.value, "rule": da.rule},
                    "new": {"verdict": db.verdict.value, "rule": db.rule,
                            "reason": mask_text(db.reason)},
                })
    finally:
        await a.close()
        await b.close()
    return report

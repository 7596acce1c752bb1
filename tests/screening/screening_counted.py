"""Run decisions and hangups through the real counter protocol on a MemoryStore.

The store keeps time by a ManualClock; tests move it with ``advance`` (never sleep).
"""

from __future__ import annotations

from fs_plugin.clock import ManualClock
from fs_plugin.counters.memory import MemoryStore
from fs_plugin.counters.ops import Op, Result
from fs_plugin.policy import PolicySnapshot
from fs_plugin.screening import (
    CallFacts,
    CounterReadings,
    Decision,
    Outcome,
    decide,
    outcome_followup,
    outcome_ops,
    plan_counters,
)

#: 2026-06-01 10:00 Asia/Shanghai, a Monday (02:00 UTC).
MONDAY_10AM = 1_780_279_200.0


class Counted:
    """A switch's view: one store, one clock, the lead's call and hangup protocol."""

    def __init__(self, snapshot: PolicySnapshot, start: float = MONDAY_10AM) -> None:
        self.snapshot = snapshot
        self.clock = ManualClock(start)
        self.store = MemoryStore(clock=self.clock)
        self.batches: list[tuple[Op, ...]] = []

    async def run(self, ops: tuple[Op, ...]) -> tuple[Result, ...]:
        self.batches.append(ops)
        return await self.store.execute(ops) if ops else ()

    async def call(self, facts: CallFacts, snapshot: PolicySnapshot | None = None) -> Decision:
        snap = snapshot or self.snapshot
        now = self.clock.time()
        plan = plan_counters(facts, snap, now=now)
        results = await self.run(plan.ops)
        return decide(facts, snap, CounterReadings(plan, results, None), now=now)

    async def hangup(self, outcome: Outcome) -> tuple[Op, ...]:
        """Both outcome steps; returns the follow-up ops (the flags set)."""
        ops = outcome_ops(outcome, self.snapshot, now=self.clock.time())
        results = await self.run(ops)
        more = outcome_followup(outcome, self.snapshot, results)
        await self.run(more)
        return more


def outcome(uuid: str, caller: str, callee: str, *, trunk: str | None = None,
            ring_s: float | None = 1.0, answered: bool = False,
            disposition: str = "recv_cancel") -> Outcome:
    return Outcome(
        uuid=uuid, hangup_cause="ORIGINATOR_CANCEL", disposition=disposition,
        answered=answered, ring_time_s=None if answered else ring_s, duration_s=1.0,
        billsec=0, from_user=caller, destination=callee, trunk_hint=trunk, switch="sw1",
        end_timestamp_us=0,
    )

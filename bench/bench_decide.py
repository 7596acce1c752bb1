"""Decisions per second on one core for the example policy (plain script).

    python bench/bench_decide.py [seconds]

A mix of demo calls (passes, warns and each kind of block) runs through ``decide``
against ``policies/``; the number caches are warm, as on a live switch. Two runs:

* ``decide``: no counter store (``counts=None``), the pure rules only;
* ``plan+decide``: ``plan_counters`` then ``decide`` with the store's readings, as the
  controller runs a call (the store's round trip itself is not measured: its results
  are taken once from an in-memory store and replayed).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fs_plugin.clock import ManualClock
from fs_plugin.counters.memory import MemoryStore
from fs_plugin.counters.ops import Result
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, CounterReadings, decide, plan_counters

REPO = Path(__file__).resolve().parents[1]
NOW = 1_780_279_200.0  # a Monday, 10:00 in Shanghai: inside the marketing hours

CALLS = [
    CallFacts("u", "02088886666", "13900001111", pai="02088886666", trunk_hint="ent-1"),
    CallFacts("u", "02088887777", "13900001111", trunk_hint="ent-1"),
    CallFacts("u", "02088876666", "13900001111", trunk_hint="ent-1"),
    CallFacts("u", "95566", "13900001111", trunk_hint="cc-1"),
    CallFacts("u", "13912345678", "13900001111", trunk_hint="cc-1"),
    CallFacts("u", "+8613900001111", "13900001111", gateway="intl-gw"),
    CallFacts("u", "+14155550100", "13900001111", network_ip="198.51.100.20"),
    CallFacts("u", "13900009999", "13900001111", network_ip="203.0.113.9"),
    CallFacts("u", "02088770001", "13900001111", trunk_hint="ent-suspended"),
    CallFacts("u", "13900001111", "13900001111", trunk_hint="nowhere"),
    CallFacts("u", "089866880001", "13907551234", trunk_hint="mkt-1"),
    CallFacts("u", "089866880001", "13907559999", trunk_hint="mkt-1"),
]


def measure(name: str, seconds: float, one_round: Callable[[], None], version: str) -> None:
    one_round()  # warm the classification caches
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            one_round()
        done += 100 * len(CALLS)
    elapsed = time.perf_counter() - start
    print(f"{name}: {done / elapsed:,.0f} decisions/s ({done} in {elapsed:.2f} s, "
          f"{len(CALLS)} call shapes, policy {version})")


async def store_results(snapshot: PolicySnapshot) -> list[tuple[Result, ...]]:
    store = MemoryStore(clock=ManualClock(NOW))
    out = []
    for i, f in enumerate(CALLS):
        plan = plan_counters(f, snapshot, now=NOW)
        out.append(await store.execute(plan.ops) if plan.ops else ())
        del i
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    snapshot = load_policy(REPO / "policies")

    def pure() -> None:
        for f in CALLS:
            decide(f, snapshot, now=NOW)

    results = asyncio.run(store_results(snapshot))
    shapes = list(zip(CALLS, results, strict=True))

    def counted() -> None:
        for f, res in shapes:
            plan = plan_counters(f, snapshot, now=NOW)
            decide(f, snapshot, CounterReadings(plan, res, None), now=NOW)

    measure("decide", seconds, pure, snapshot.version)
    measure("plan+decide", seconds, counted, snapshot.version)


if __name__ == "__main__":
    main()

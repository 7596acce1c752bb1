"""Decisions per second on one core for the example policy (plain script).

    python bench/bench_decide.py [seconds]

A mix of demo calls (passes, warns and each kind of block) runs through
``decide`` against ``policies/``; the number caches are warm, as on a live switch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fs_plugin.policy import load_policy
from fs_plugin.screening import CallFacts, decide

REPO = Path(__file__).resolve().parents[1]

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
]


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    snapshot = load_policy(REPO / "policies")
    now = 1_780_272_000.0
    for f in CALLS:  # warm the classification caches
        decide(f, snapshot, now=now)
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            for f in CALLS:
                decide(f, snapshot, now=now)
        done += 100 * len(CALLS)
    elapsed = time.perf_counter() - start
    print(f"decide: {done / elapsed:,.0f} decisions/s ({done} in {elapsed:.2f} s, "
          f"{len(CALLS)} call shapes, policy {snapshot.version})")


if __name__ == "__main__":
    main()

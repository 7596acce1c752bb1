"""Classification throughput, cold (every number new) and warm (the cache serves).

Run: ``python bench/bench_numbering.py [--count N]``. Prints classifications per second
and NumberSet lookups per second; the brief's floor is 50k/s warm. ``cold (public
API)`` is the same cold run asking phonenumbers' public API instead of the precomputed
CN tables (``numbering._classify._Tables``), for comparison.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from fs_plugin.numbering import NumberSet, classify
from fs_plugin.numbering._classify import cache_clear, classify_reference

__all__ = ["main"]


def _corpus(count: int, rng: random.Random) -> list[str]:
    """A caller-ID mix shaped like a trunk's: mostly mobiles and fixed lines, some of
    everything else, in the forms switches present them."""
    makers: Sequence[Callable[[], str]] = (
        lambda: f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
        lambda: f"+861{rng.choice('3589')}{rng.randrange(10**9):09d}",
        lambda: f"0{rng.choice(['20', '21', '10', '755', '571'])}{rng.randrange(2 * 10**7, 10**8)}",
        lambda: f"sip:+8620{rng.randrange(2 * 10**7, 10**8)}@10.0.0.1;user=phone",
        lambda: f"95{rng.randrange(10**3, 10**4)}",
        lambda: f"400{rng.randrange(10**7):07d}",
        lambda: f"+1415{rng.randrange(2 * 10**6, 10**7)}",
        lambda: f"{rng.randrange(10**12)}",  # junk: mostly malformed
    )
    weights = (40, 10, 25, 5, 5, 5, 5, 5)
    return [rng.choices(makers, weights)[0]() for _ in range(count)]


def _rate(func: Callable[[], int]) -> float:
    started = time.perf_counter()
    done = func()
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=50_000, help="distinct numbers (cold)")
    parser.add_argument("--working-set", type=int, default=5_000, help="distinct (warm)")
    parser.add_argument("--rounds", type=int, default=40, help="passes over the working set")
    args = parser.parse_args()
    rounds: int = args.rounds
    rng = random.Random(20240501)

    cold = _corpus(args.count, rng)
    cache_clear()

    def run_cold() -> int:
        for raw in cold:
            classify(raw)
        return len(cold)

    def run_reference() -> int:
        for raw in cold:
            classify_reference(raw)
        return len(cold)

    warm = _corpus(args.working_set, rng)
    cache_clear()
    for raw in warm:
        classify(raw)

    def run_warm() -> int:
        for _ in range(rounds):
            for raw in warm:
                classify(raw)
        return rounds * len(warm)

    allowed = NumberSet(
        ranges=[f"020{8000 + i:04d}0000-020{8000 + i:04d}4999" for i in range(2_000)],
        prefixes=["0755*", "139*"],
        numbers=[f"400{i:07d}" for i in range(50_000)],
    )
    probes = [classify(raw) for raw in warm]

    def run_lookups() -> int:
        for _ in range(rounds):
            for n in probes:
                _ = n in allowed
        return rounds * len(probes)

    print(f"classify cold : {_rate(run_cold):>12,.0f} /s  ({len(cold):,} distinct numbers)")
    print(f"  (public API): {_rate(run_reference):>12,.0f} /s")
    print(f"classify warm : {_rate(run_warm):>12,.0f} /s  ({len(warm):,} numbers, cached)")
    print(f"NumberSet in  : {_rate(run_lookups):>12,.0f} /s  ({allowed!r})")


if __name__ == "__main__":
    main()

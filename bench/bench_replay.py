"""Benchmark: offline replay of a synthetic trace of 100,000 INVITE dialogs.

Plain script (no pytest)::

    python bench/bench_replay.py [--calls N] [--keep PATH] [--reuse] [--min-rate R]

Generates the pcap once (not timed; ``--reuse`` takes an existing ``--keep`` file),
then times

1. ``read``: ``read_trace`` alone (pcap decoding, SIP parsing, dialog grouping);
2. ``evaluate``: the evaluation alone, on calls read beforehand with the reader's
   watermarks (``plan_counters`` → memory store → ``decide`` → outcomes, on the trace's
   clock) — the part that must stay in one process, in time order;
3. ``replay``: what ``fs-plugin replay TRACE --trunk-map …`` does — reading in a
   worker process overlapped with the evaluation (``plan_counters`` → memory store →
   ``decide`` → outcome statistics, on the trace's clock) and the summary;
4. ``replay --no-parallel``: the same in one process.

The synthetic callers and callees are random numbers, each new: the worst case for
the number classification caches. ``--population N`` draws them from N numbers, as a
live trunk repeats its callers and callees.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fs_plugin.policy import load_policy
from fs_plugin.replay import read_trace
from fs_plugin.replay.commands import fewer_collections, replay_offline
from fs_plugin.replay.evaluate import Evaluator, TrunkMap
from fs_plugin.replay.synth import synth_calls, write_pcap

REPO = Path(__file__).resolve().parents[1]
#: The synthetic trunks' sources (``synth._TRUNK_IPS``) on trunks of the example policy.
TRUNK_MAP = ("10.20.0.0/16=cc-1", "10.30.0.0/16=ent-1", "192.0.2.0/24=ic-1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the pcap here and keep it")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing --keep file")
    parser.add_argument("--min-rate", type=float, default=0.0,
                        help="exit 1 if the parallel replay is below this many calls/s")
    parser.add_argument("--skip-serial", action="store_true")
    parser.add_argument("--population", type=int, default=None,
                        help="draw callers and callees from this many numbers (default: "
                             "every number new, the worst case for the number caches)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "bench.pcap"
        if not (args.reuse and path.exists()):
            started = time.perf_counter()
            packets = write_pcap(path, synth_calls(args.calls, seed=1,
                                                   population=args.population))
            generated = time.perf_counter() - started
            print(f"generated {args.calls} calls, {packets} packets in {generated:.1f} s")

        started = time.perf_counter()
        with read_trace(path) as result:
            calls = sum(1 for _ in result)
        elapsed = time.perf_counter() - started
        print(f"read:                  {calls} calls in {elapsed:6.2f} s = "
              f"{calls / elapsed:8,.0f} calls/s ({result.stats.frames / elapsed:,.0f} packets/s)")

        snapshot = load_policy(REPO / "policies")
        trunks = TrunkMap.parse(None, TRUNK_MAP)
        with read_trace(path) as result:
            fed = [(call, result.watermark) for call in result]
        evaluator = Evaluator(snapshot, trunks=trunks)
        started = time.perf_counter()
        decided = 0
        with fewer_collections():  # as replay_offline runs it
            for call, watermark in fed:
                decided += len(evaluator.feed(call, watermark))
            decided += len(evaluator.finish())
        elapsed = time.perf_counter() - started
        print(f"evaluate:              {decided} calls in {elapsed:6.2f} s = "
              f"{decided / elapsed:8,.0f} calls/s ({elapsed / decided * 1e6:.0f} µs per call)")
        del fed, evaluator
        modes = [("replay", True)] + ([] if args.skip_serial else [("replay --no-parallel",
                                                                     False)])
        rate = 0.0
        for name, parallel in modes:
            started = time.perf_counter()
            summary = replay_offline([path], snapshot, trunks=trunks, parallel=parallel)
            elapsed = time.perf_counter() - started
            this = summary.calls / elapsed
            rate = rate or this
            verdicts = ", ".join(f"{k} {v}" for k, v in sorted(summary.verdicts.items()))
            print(f"{name + ':':22} {summary.calls} calls in {elapsed:6.2f} s = "
                  f"{this:8,.0f} calls/s ({verdicts})")
            if summary.calls != calls:
                print(f"expected {calls} calls, evaluated {summary.calls}", file=sys.stderr)
                return 1
    return 0 if rate >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())

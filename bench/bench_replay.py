"""Benchmark: read and group a synthetic trace of 100,000 INVITE dialogs.

Plain script (no pytest): ``python bench/bench_replay.py [--calls N] [--keep PATH]``.
Generates the pcap once (not timed), then times ``read_trace`` end to end (pcap
reading, frame decoding, SIP parsing, dialog grouping) and prints calls/s. The
offline replay's target is 20,000 calls/s including policy evaluation, so the
reading part alone should be well above it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fs_plugin.replay import read_trace
from fs_plugin.replay.synth import synth_calls, write_pcap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the pcap here and keep it")
    parser.add_argument("--min-rate", type=float, default=0.0, help="exit 1 below this calls/s")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "bench.pcap"
        started = time.perf_counter()
        packets = write_pcap(path, synth_calls(args.calls, seed=1))
        generated = time.perf_counter() - started
        print(f"generated {args.calls} calls, {packets} packets in {generated:.1f} s: {path}")

        started = time.perf_counter()
        with read_trace(path) as result:
            calls = sum(1 for _ in result)
        elapsed = time.perf_counter() - started
        rate = calls / elapsed if elapsed else float("inf")
        print(
            f"read {calls} calls from {result.stats.frames} frames in {elapsed:.2f} s: "
            f"{rate:,.0f} calls/s, {result.stats.frames / elapsed:,.0f} packets/s, "
            f"skipped {result.skipped_total}"
        )
    if calls != args.calls:
        print(f"expected {args.calls} calls", file=sys.stderr)
        return 1
    return 0 if rate >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())

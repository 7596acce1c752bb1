"""Micro-benchmark: parse the outbound channel-data frame N times (not run by the tests).

Usage: python bench/bench_esl.py [N]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fs_plugin import esl

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FSP_SHARED", REPO.parent / "shared"))


def channel_data_frame() -> bytes:
    data = (SHARED / "fixtures" / "esl" / "out_sync_pass.fs.bin").read_bytes()
    end = data.index(b"Control: full\n\n") + len(b"Control: full\n\n")
    return data[:end]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    frame = channel_data_frame()
    started = time.perf_counter()
    for _ in range(n):
        conn = esl.Connection(esl.Role.OUTBOUND)
        conn.send(esl.Connect())
        conn.receive_data(frame)
        event = conn.next_event()
        assert isinstance(event, esl.ChannelData)
    elapsed = time.perf_counter() - started
    print(f"{n} channel-data frames ({len(frame)} bytes, {len(event.headers)} headers) "
          f"in {elapsed:.3f} s: {n / elapsed:,.0f} frames/s, {elapsed / n * 1e6:.1f} us/frame")


if __name__ == "__main__":
    main()

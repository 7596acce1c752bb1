"""Counter-store throughput and latency: batches of 4 ops, as one call's screening sends.

    python bench/bench_counters.py                       # memory + redis://127.0.0.1:6379/9
    python bench/bench_counters.py --url redis+cluster://127.0.0.1:7000 --seconds 5

Each batch: a per-caller rate cap, a per-trunk CPS cap, a per-callee (bombing) counter and
a concurrency lease — one ``execute`` (one round trip). Workers run concurrently in one
event loop; with 1 worker the latency is the bare round trip. Keys live in the namespace
``fspbench`` and are deleted afterwards; nothing else in the database is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
import uuid

from fs_plugin.counters import Acquire, CounterStore, Hit, Op, open_store
from fs_plugin.errors import StorageError

NAMESPACE = "fspbench"


def call_ops(rng: random.Random) -> list[Op]:
    caller = f"caller:86{rng.randrange(10_000):010d}"
    callee = f"callee:861{rng.randrange(100_000):010d}"
    trunk = f"trunk:ent-{rng.randrange(20)}"
    return [
        Hit(caller, 60.0, limit=1_000_000),
        Hit(f"{trunk}:cps", 1.0, limit=1_000_000),
        Hit(callee, 3600.0),
        Acquire(f"{trunk}:conc", str(uuid.uuid4()), 1_000_000, 5.0),
    ]


async def worker(store: CounterStore, stop_at: float, seed: int, out: list[float]) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < stop_at:
        ops = call_ops(rng)
        started = time.perf_counter()
        await store.execute(ops, timeout_s=5.0)
        out.append(time.perf_counter() - started)
        # The memory store never suspends: yield so the workers interleave as calls do.
        await asyncio.sleep(0)


async def run(url: str, seconds: float, workers: int) -> None:
    store = open_store(url, namespace=NAMESPACE, timeout_s=5.0)
    try:
        await store.ping(timeout_s=5.0)
        await store.reset(timeout_s=30.0)
        # Warm up: connections, script cache, cluster topology.
        await asyncio.gather(*(store.execute(call_ops(random.Random(i))) for i in range(workers)))
        latencies: list[float] = []
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(worker(store, stop_at, i, latencies) for i in range(workers)))
        elapsed = time.perf_counter() - started
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"{url:<40} workers={workers:<3} batches={len(latencies):<8} "
            f"batches/s={len(latencies) / elapsed:>9.0f}  "
            f"p50={p50 * 1e3:7.3f} ms  p99={p99 * 1e3:7.3f} ms"
        )
    except StorageError as exc:
        print(f"{url:<40} unavailable: {exc}")
    finally:
        with contextlib.suppress(StorageError):
            await store.reset(timeout_s=30.0)
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--url",
        action="append",
        help="store URL (repeatable); default: memory:// and redis://127.0.0.1:6379/9",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="duration per run")
    parser.add_argument(
        "--workers", type=int, action="append", help="concurrent callers (repeatable; 1 and 32)"
    )
    args = parser.parse_args(argv)
    urls = args.url or ["memory://", "redis://127.0.0.1:6379/9"]
    for url in urls:
        for workers in args.workers or [1, 32]:
            asyncio.run(run(url, args.seconds, workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Journal throughput: sustained records/s into PostgreSQL, and what ``record_decision``
costs the caller (µs).

    python bench/bench_journal.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                  [--embedded] [--records 100000] [--batch-max 1000]
                                  [--rate 0]

Without ``--dsn`` it uses PostgreSQL at 127.0.0.1:5432 when that answers, else an
embedded server in a temporary directory. It works in a fresh database
(``fsp_bench_<random>``) that it drops afterwards.

``--rate 0`` offers records as fast as the caller can (a burst that the queue
absorbs, bounded by ``queue_max``); ``--rate N`` offers N records/s in 10 ms ticks,
like a switch under steady load, and reports whether the writer kept up.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import socket
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from fs_plugin.journal import Journal
from fs_plugin.journal.embedded import EmbeddedPostgres, start_embedded
from fs_plugin.screening.model import CallFacts, Decision, Mode, RuleResult, Verdict

TRAIL = (
    RuleResult("cid.malformed", False, Verdict.PASS, Mode.ENFORCE),
    RuleResult("cid.not_allowed", True, Verdict.BLOCK, Mode.ENFORCE, "outside ranges", "UNWANTED"),
    RuleResult("pattern.wangiri", True, Verdict.WARN, Mode.SHADOW, "ring once"),
    RuleResult("rate.caller", False, Verdict.PASS, Mode.ENFORCE),
)
DECISION = Decision(
    Verdict.BLOCK,
    "cid.not_allowed",
    "caller ID outside the trunk's ranges",
    cause="UNWANTED",
    sip_status=607,
    trunk="ent-1",
    customer="acme",
    policy_version="bench",
    trail=TRAIL,
)


def _external_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return True
    except OSError:
        return False


async def _admin_dsn(args: argparse.Namespace, tmp: Path) -> tuple[str, EmbeddedPostgres | None]:
    if args.dsn:
        return str(args.dsn), None
    if not args.embedded and _external_answers():
        return "postgresql://postgres@127.0.0.1:5432/postgres", None
    embedded = await start_embedded(tmp / "pg")
    return embedded.dsn, embedded


def _with_database(dsn: str, database: str) -> str:
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        admin_dsn, embedded = await _admin_dsn(args, tmp)
        name = f"fsp_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await _bench(_with_database(admin_dsn, name), tmp, args)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()
            if embedded is not None:
                await embedded.stop(delete=True)


async def _bench(dsn: str, tmp: Path, args: argparse.Namespace) -> None:
    n = args.records
    journal = await Journal.open(
        dsn,
        state_dir=tmp / "state",
        switch="bench",
        batch_max=args.batch_max,
        queue_max=max(n, 20_000),
        flush_interval_s=0.1,
    )
    facts = [
        CallFacts(
            uuid=f"{i:08d}-bench-0000-0000-000000000000",
            from_user=f"139{i % 100_000_000:08d}",
            destination=f"0208888{i % 10_000:04d}",
            pai=f"<sip:139{i % 100_000_000:08d}@10.0.0.1>",
            call_id=f"{i}@bench",
            network_ip="10.0.0.1",
        )
        for i in range(n)
    ]
    costs: list[float] = []
    perf = time.perf_counter
    start = perf()
    now = time.time()
    if args.rate:
        per_tick = max(1, round(args.rate / 100))
        i = 0
        while i < n:
            tick_end = start + (i // per_tick + 1) * 0.01
            for _ in range(min(per_tick, n - i)):
                t0 = perf()
                journal.record_decision(facts[i], DECISION, decided_at=now + i * 1e-4, latency_ms=1)
                costs.append(perf() - t0)
                i += 1
            await asyncio.sleep(max(0.0, tick_end - perf()))
    else:
        for i in range(n):
            t0 = perf()
            journal.record_decision(facts[i], DECISION, decided_at=now + i * 1e-4, latency_ms=1)
            costs.append(perf() - t0)
    offered = perf() - start
    ok = await journal.flush()
    total = perf() - start
    stats = journal.stats()
    await journal.close()

    costs_us = sorted(c * 1e6 for c in costs)
    p99 = costs_us[int(len(costs_us) * 0.99) - 1]
    print(f"records            {n}")
    print(f"offered in         {offered:.2f} s ({n / offered:,.0f} records/s offered)")
    print(f"committed in       {total:.2f} s -> {n / total:,.0f} records/s sustained (ok={ok})")
    print(f"COPY batches       {stats['copy_batches']} of <= {args.batch_max}")
    print(
        "record_decision    "
        f"median {statistics.median(costs_us):.1f} us, p99 {p99:.1f} us, max {costs_us[-1]:.0f} us"
    )
    print(f"written/spooled    {stats['records_written']}/{stats['records_spooled']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="admin DSN (a database is created under it)")
    parser.add_argument("--embedded", action="store_true", help="use an embedded server")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-max", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=0, help="records/s offered (0 = burst)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

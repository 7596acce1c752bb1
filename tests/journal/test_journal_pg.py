"""The journal against real PostgreSQL (external and embedded; see conftest.py)."""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from fs_plugin.clock import ManualClock
from fs_plugin.journal import Journal, write_csv
from fs_plugin.journal.partitions import DAY_US, day_of_us, partition_name
from fs_plugin.journal.rows import us_from_epoch
from fs_plugin.screening.model import CallFacts, Decision, Mode, Outcome, RuleResult, Verdict

if TYPE_CHECKING:  # fixtures' types, from this directory's conftest.py
    from conftest import CuttableProxy, Db

NOW = 1_795_000_000.0  # 2026-11-18 UTC, a ManualClock's default start


def facts(
    i: int, *, caller: str = "13900001111", callee: str = "02088881234", **kw: Any
) -> CallFacts:
    return CallFacts(uuid=f"call-{i:06d}", from_user=caller, destination=callee, **kw)


def decision(verdict: Verdict = Verdict.BLOCK, **kw: Any) -> Decision:
    trail = (
        RuleResult("cid.not_allowed", True, Verdict.BLOCK, Mode.ENFORCE, "outside", "UNWANTED"),
        RuleResult("pattern.wangiri", True, Verdict.WARN, Mode.SHADOW, "ring once"),
    )
    base: dict[str, Any] = {
        "rule": "cid.not_allowed",
        "reason": "outside range",
        "cause": "UNWANTED",
        "sip_status": 607,
        "trunk": "ent-1",
        "customer": "acme",
        "policy_version": "v7",
        "trail": trail,
    }
    base.update(kw)
    return Decision(verdict, **base)


def outcome(uuid: str, end_s: float, **kw: Any) -> Outcome:
    base: dict[str, Any] = {
        "uuid": uuid,
        "hangup_cause": "ORIGINATOR_CANCEL",
        "disposition": "recv_cancel",
        "answered": False,
        "ring_time_s": 1.5,
        "duration_s": 2.0,
        "billsec": 0,
        "from_user": "13900001111",
        "destination": "02088881234",
        "trunk_hint": "ent-1",
        "switch": "fs-a",
        "end_timestamp_us": us_from_epoch(end_s),
    }
    base.update(kw)
    return Outcome(**base)


async def open_journal(dsn: str, tmp_path: Path, **kw: Any) -> Journal:
    kw.setdefault("switch", "sw-test")
    kw.setdefault("flush_interval_s", 30.0)  # tests flush explicitly
    kw.setdefault("connect_timeout_s", 5.0)
    return await Journal.open(dsn, state_dir=tmp_path, **kw)


def spool_uuids(path: Path) -> list[str]:
    return [json.loads(line)["r"]["uuid"] for line in path.read_bytes().splitlines() if line]


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for the background writer to reach a state (it signals nothing we can await)."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- round trip


async def test_decisions_and_outcomes_round_trip(db: Db, tmp_path: Path) -> None:
    journal = await open_journal(db.dsn, tmp_path)
    try:
        for i in range(300):
            journal.record_decision(
                facts(i, pai="<sip:+8613900001111@gw>", diversion="<sip:955880@x>", call_id=str(i)),
                decision(),
                decided_at=NOW + i,
                latency_ms=0.5 + i,
            )
        for i in range(0, 300, 3):
            journal.record_outcome(outcome(f"call-{i:06d}", NOW + i + 10))
        assert await journal.flush()
    finally:
        await journal.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 300
    assert await db.fetchval("SELECT count(DISTINCT uuid) FROM journal_decision") == 300
    assert await db.fetchval("SELECT count(*) FROM journal_outcome") == 100
    row = (await db.fetch("SELECT * FROM journal_decision WHERE uuid = 'call-000007'"))[0]
    assert row["decided_at"] == datetime.fromtimestamp(NOW + 7, UTC)
    assert row["switch"] == "sw-test"
    assert (row["from_raw"], row["from_norm"]) == ("13900001111", "13900001111")
    assert (row["pai_raw"], row["pai_norm"]) == ("<sip:+8613900001111@gw>", "+8613900001111")
    assert (row["diversion_raw"], row["diversion_norm"]) == ("<sip:955880@x>", "955880")
    assert row["callee"] == "02088881234" and row["sip_call_id"] == "7"
    assert (row["verdict"], row["rule"], row["cause"], row["sip_status"]) == (
        "block",
        "cid.not_allowed",
        "UNWANTED",
        607,
    )
    assert (row["trunk"], row["customer"], row["policy_version"]) == ("ent-1", "acme", "v7")
    assert row["latency_ms"] == 7.5
    assert row["shadow_hits"] == ["pattern.wangiri"]
    trail = json.loads(row["trail"])
    assert [(t["rule"], t["mode"], t["fired"]) for t in trail] == [
        ("cid.not_allowed", "enforce", True),
        ("pattern.wangiri", "shadow", True),
    ]
    out = (await db.fetch("SELECT * FROM journal_outcome WHERE uuid = 'call-000009'"))[0]
    assert out["ended_at"] == datetime.fromtimestamp(NOW + 19, UTC)
    assert (out["hangup_cause"], out["disposition"], out["answered"]) == (
        "ORIGINATOR_CANCEL",
        "recv_cancel",
        False,
    )
    assert (out["ring_time_s"], out["duration_s"], out["billsec"]) == (1.5, 2.0, 0)


async def test_batches_are_written_with_copy(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = asyncpg.connection.Connection.copy_records_to_table

    async def spy(self: Any, table_name: str, *, records: Any, **kw: Any) -> Any:
        records = list(records)
        sizes.append(len(records))
        return await original(self, table_name, records=records, **kw)

    monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", spy)
    journal = await open_journal(db.dsn, tmp_path, batch_max=100)
    try:
        for i in range(250):
            journal.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1.0)
        assert await journal.flush()
        assert journal.stats()["copy_batches"] == 3
    finally:
        await journal.close()
    assert sizes == [100, 100, 50]
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 250


async def test_writer_flushes_in_the_background_when_a_batch_is_full(
    db: Db, tmp_path: Path
) -> None:
    journal = await open_journal(db.dsn, tmp_path, batch_max=50)
    try:
        for i in range(50):
            journal.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1.0)
        await eventually(lambda: journal.stats()["records_written"] == 50)
    finally:
        await journal.close()


async def test_migrations_are_idempotent_and_safe_to_run_at_once(db: Db, tmp_path: Path) -> None:
    first, second = await asyncio.gather(
        open_journal(db.dsn, tmp_path / "a", switch="sw-a"),
        open_journal(db.dsn, tmp_path / "b", switch="sw-b"),
    )
    await asyncio.gather(first.close(), second.close())
    third = await open_journal(db.dsn, tmp_path / "c", switch="sw-c")
    await third.close()
    rows = await db.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"]) for r in rows] == [(1, "init"), (2, "ledger")]
    assert await db.fetchval("SELECT to_regclass('journal_decision') IS NOT NULL")
    assert first.stats()["connected"] == 0  # closed
    assert first.stats()["errors"] == 0 and second.stats()["errors"] == 0


async def test_open_with_no_dsn_starts_embedded_postgres_and_reuses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for run in range(2):
        journal = await Journal.open(None, state_dir=state, switch="sw-e", flush_interval_s=30)
        try:
            assert journal.embedded is not None
            assert journal.embedded.pgdata == state / "pg"
            journal.record_decision(facts(run), decision(), decided_at=NOW, latency_ms=1)
            assert await journal.flush()
            assert len(await journal.trace(number="13900001111")) == run + 1
        finally:
            await journal.close()
    assert journal.embedded is not None
    await journal.embedded.stop(delete=True)


# --------------------------------------------------------------------------- outages


async def test_database_down_record_never_blocks_and_everything_is_spooled_then_drained(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    proxy.cut()
    journal = await open_journal(proxy.dsn(db.name), tmp_path, queue_max=1_000)
    try:
        assert journal.stats()["connected"] == 0
        assert not inspect.iscoroutinefunction(journal.record_decision)
        # Never blocks: plain calls with the database down, no await between them (what
        # each costs is bench/bench_journal.py's to say, not a wall-clock bound here).
        for i in range(10_000):
            journal.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1)
        # 9,000 of these overflowed the queue straight into the spool file, synchronously.
        assert journal.stats()["queue_depth"] == 1_000
        assert journal.stats()["spool_records"] == 9_000
        assert not await journal.flush()
        assert sorted(spool_uuids(journal.spool_path)) == [f"call-{i:06d}" for i in range(10_000)]
        assert journal.stats()["spool_records"] == 10_000
        assert await db.fetchval("SELECT to_regclass('journal_decision') IS NULL")

        await proxy.restore()
        assert await journal.flush()
        stats = journal.stats()
        assert stats["decisions_written"] == 10_000 and stats["spool_bytes"] == 0
        assert stats["records_dropped"] == 0 and stats["spool_drains"] == 1
    finally:
        await journal.close()
    assert journal.spool_path.stat().st_size == 0
    assert await db.fetchval("SELECT count(DISTINCT uuid) FROM journal_decision") == 10_000


async def test_connection_killed_mid_copy_loses_nothing_and_duplicates_nothing(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    total = 20_000
    journal = await open_journal(proxy.dsn(db.name), tmp_path, batch_max=500, queue_max=50_000)
    try:
        for i in range(total):
            journal.record_decision(facts(i), decision(), decided_at=NOW + i / 1000, latency_ms=1)
            if i % 3 == 0:
                journal.record_outcome(outcome(f"call-{i:06d}", NOW + i / 1000 + 5))
        # Cut in the middle of the stream of COPY data (a few batches in).
        proxy.cut_after(client_bytes=1_000_000)
        assert not await journal.flush()
        assert proxy.cuts == 1
        written = await db.fetchval("SELECT count(*) FROM journal_decision")
        assert isinstance(written, int) and 0 < written < total
        assert journal.stats()["spool_records"] > 0

        # Records keep coming while the database is away.
        for i in range(total, total + 100):
            journal.record_decision(facts(i), decision(), decided_at=NOW + i / 1000, latency_ms=1)
        await proxy.restore()
        assert await journal.flush()
    finally:
        await journal.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == total + 100
    assert await db.fetchval("SELECT count(DISTINCT uuid) FROM journal_decision") == total + 100
    assert await db.fetchval("SELECT count(*) FROM journal_outcome") == len(range(0, total, 3))
    assert journal.stats()["records_dropped"] == 0


async def test_stalled_database_hits_the_deadline_and_spools(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    proxy.blackhole = True
    journal = await open_journal(proxy.dsn(db.name), tmp_path, connect_timeout_s=0.3)
    try:
        journal.record_decision(facts(1), decision(), decided_at=NOW, latency_ms=1)
        assert not await journal.flush()
        stats = journal.stats()
        assert journal.last_error == "TimeoutError" and stats["spool_records"] == 1
    finally:
        await journal.close()
    assert spool_uuids(tmp_path / "journal.spool") == ["call-000001"]


async def test_spool_replay_after_a_crash_creates_no_duplicates(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    # The same 100 records reach PostgreSQL and the spool (a commit whose ack was lost),
    # then a new process replays the spool.
    committed = await open_journal(db.dsn, tmp_path / "a")
    for i in range(100):
        committed.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1)
    assert await committed.flush()
    await committed.close()

    proxy.cut()
    down = await open_journal(proxy.dsn(db.name), tmp_path / "b")
    for i in range(150):
        down.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1)
    await down.close()  # spooled, fsync'd
    spool = tmp_path / "b" / "journal.spool"
    assert len(spool_uuids(spool)) == 150

    again = await open_journal(db.dsn, tmp_path / "b")
    try:
        assert await again.flush()
        stats = again.stats()
        assert stats["decisions_written"] == 50 and stats["duplicates_skipped"] == 100
    finally:
        await again.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 150
    assert spool.stat().st_size == 0


async def test_spool_is_bounded_and_says_so(db: Db, proxy: CuttableProxy, tmp_path: Path) -> None:
    proxy.cut()
    journal = await open_journal(proxy.dsn(db.name), tmp_path, spool_max_bytes=20_000)
    try:
        with capture_logs() as logs:
            for i in range(200):
                journal.record_decision(facts(i), decision(), decided_at=NOW + i, latency_ms=1)
            await journal.flush()
        stats = journal.stats()
        assert 0 < stats["records_spooled"] < 200
        assert stats["records_spooled"] + stats["records_dropped"] == 200
        assert journal.spool_path.stat().st_size <= 20_000
        full = [e for e in logs if e["event"] == "journal_spool_full"]
        assert full and full[0]["log_level"] == "error"
    finally:
        await journal.close()


async def test_bad_rows_are_set_aside_and_the_rest_written(db: Db, tmp_path: Path) -> None:
    journal = await open_journal(db.dsn, tmp_path)
    try:
        for i in range(20):
            status = 2**40 if i == 7 else 607  # does not fit the integer column
            journal.record_decision(
                facts(i), decision(sip_status=status), decided_at=NOW + i, latency_ms=1
            )
        assert await journal.flush()
        assert journal.stats()["records_rejected"] == 1
    finally:
        await journal.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 19
    rejected = (tmp_path / "journal.spool.rejected").read_bytes().splitlines()
    assert [json.loads(line)["r"]["uuid"] for line in rejected] == ["call-000007"]


async def test_records_after_close_go_to_the_spool(db: Db, tmp_path: Path) -> None:
    journal = await open_journal(db.dsn, tmp_path)
    journal.record_decision(facts(1), decision(), decided_at=NOW, latency_ms=1)
    await journal.close()
    journal.record_decision(facts(2), decision(), decided_at=NOW, latency_ms=1)
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 1
    assert spool_uuids(tmp_path / "journal.spool") == ["call-000002"]
    reopened = await open_journal(db.dsn, tmp_path)
    try:
        assert await reopened.flush()
    finally:
        await reopened.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 2


async def journal_backends(db: Db, *, waiting_on_lock: bool = False) -> int:
    """The journal writer's server sessions (``waiting_on_lock``: those blocked on a lock)."""
    count = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'fs_plugin-journal' "
        "AND ($1 = false OR wait_event_type = 'Lock')",
        waiting_on_lock,
    )
    assert isinstance(count, int)
    return count


async def test_a_flush_cancelled_mid_write_loses_none_of_its_batch(
    db: Db, tmp_path: Path
) -> None:
    journal = await open_journal(db.dsn, tmp_path)
    holder = await db.connect()
    try:
        journal.record_decision(facts(1), decision(), decided_at=NOW, latency_ms=1)
        assert await journal.flush()  # connected, today's partition made
        async with holder.transaction():
            # The table locked: the next batch's INSERT waits, with its records in flight.
            await holder.execute("LOCK TABLE journal_decision IN ACCESS EXCLUSIVE MODE")
            for i in (2, 3, 4):
                journal.record_decision(facts(i), decision(), decided_at=NOW, latency_ms=1)
            flushing = asyncio.create_task(journal.flush())
            async with asyncio.timeout(10):
                while not await journal_backends(db, waiting_on_lock=True):
                    await asyncio.sleep(0.01)
            flushing.cancel()  # its caller gave up (a deadline of its own)
            async with asyncio.timeout(10):
                await asyncio.wait({flushing})
        journal.record_decision(facts(5), decision(), decided_at=NOW, latency_ms=1)
        assert await journal.flush()
    finally:
        await holder.close()
        await journal.close()
    uuids = [r["uuid"] for r in await db.fetch("SELECT uuid FROM journal_decision ORDER BY uuid")]
    assert uuids == [f"call-{i:06d}" for i in range(1, 6)]
    assert journal.stats()["records_dropped"] == 0


async def test_close_giving_up_on_a_reconnect_leaves_no_connection_open(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    from fs_plugin.journal.migrate import MIGRATION_LOCK_KEY

    proxy.cut()
    journal = await open_journal(proxy.dsn(db.name), tmp_path, close_timeout_s=1.0)
    await proxy.restore()
    holder = await db.connect()
    try:
        async with holder.transaction():
            # Another process migrating: the writer's reconnect at close waits for the
            # lock past close_timeout_s, and close() cancels it half-way.
            await holder.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            with capture_logs() as logs:
                await journal.close()
            assert "journal_close_timeout" in [e["event"] for e in logs]
        async with asyncio.timeout(10):
            while await journal_backends(db):
                await asyncio.sleep(0.05)
    finally:
        await holder.close()


# --------------------------------------------------------------------------- partitions


async def test_retention_drops_exactly_the_old_partitions(db: Db, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    today = day_of_us(us_from_epoch(NOW))
    journal = await open_journal(db.dsn, tmp_path, clock=clock, partitions_ahead_days=2)
    try:
        ages = (10, 5, 4, 3, 1, 0)
        for n, age in enumerate(ages):
            at = NOW - age * 86_400
            for k in range(5):
                journal.record_decision(facts(n * 10 + k), decision(), decided_at=at, latency_ms=1)
                journal.record_outcome(outcome(f"call-{n * 10 + k:06d}", at + 1))
        assert await journal.flush()
        conn = await db.connect()
        try:
            # Lookalikes that retention must leave alone.
            await conn.execute('CREATE TABLE "journal_decision_p20000101" (x int)')
            await conn.execute("CREATE TABLE keep_me (x int)")
        finally:
            await conn.close()

        dropped = await journal.enforce_retention(3)
        # A day goes only when all of it is older than 3 days: ages 10, 5 and 4.
        expected = sorted(
            partition_name(parent, today - age)
            for parent in ("journal_decision", "journal_outcome")
            for age in (10, 5, 4)
        )
        assert sorted(dropped) == expected
        assert await journal.enforce_retention(3) == []
        # Partitions keep being usable for days the cache thought were there.
        journal.record_decision(facts(999), decision(), decided_at=NOW - 3 * 86_400, latency_ms=1)
        assert await journal.flush()
    finally:
        await journal.close()
    assert await db.fetchval("SELECT count(*) FROM journal_decision") == 3 * 5 + 1
    assert await db.fetchval("SELECT count(*) FROM journal_outcome") == 3 * 5
    left = {
        r["relname"]
        for r in await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'journal_decision'::regclass"
        )
    }
    assert left == {partition_name("journal_decision", today + d) for d in (-3, -1, 0, 1, 2)}
    assert await db.fetchval("SELECT to_regclass('journal_decision_p20000101') IS NOT NULL")
    assert await db.fetchval("SELECT to_regclass('keep_me') IS NOT NULL")


async def test_partitions_are_created_ahead(db: Db, tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    journal = await open_journal(db.dsn, tmp_path, clock=clock, partitions_ahead_days=4)
    await journal.close()
    today = day_of_us(us_from_epoch(NOW))
    names = {r["tablename"] for r in await db.fetch("SELECT tablename FROM pg_tables")}
    for parent in ("journal_decision", "journal_outcome"):
        assert {partition_name(parent, today + d) for d in range(5)} <= names
        assert partition_name(parent, today + 5) not in names
        assert partition_name(parent, today - 1) not in names
    assert DAY_US == 86_400 * 1_000_000


# --------------------------------------------------------------------------- tracing


async def test_trace_by_number_uuid_trunk_and_time(db: Db, tmp_path: Path) -> None:
    journal = await open_journal(db.dsn, tmp_path)
    a, b = "13900001111", "02088881234"
    try:
        journal.record_decision(
            facts(1, caller=a, callee=b), decision(), decided_at=NOW, latency_ms=1
        )
        journal.record_decision(
            facts(2, caller="4008123123", callee="13700002222", pai=f"<sip:{a}@gw>"),
            decision(Verdict.PASS, rule=None, trunk="cc-9"),
            decided_at=NOW + 60,
            latency_ms=1,
        )
        journal.record_decision(
            facts(3, caller="13800003333", callee=a), decision(), decided_at=NOW + 120, latency_ms=1
        )
        journal.record_decision(
            facts(4, caller="13800003333", callee="13600004444"),
            decision(),
            decided_at=NOW + 180,
            latency_ms=1,
        )
        journal.record_outcome(outcome("call-000001", NOW + 3, answered=False, ring_time_s=2.5))
        assert await journal.flush()

        by_number = await journal.trace(number=a)
        assert [r["uuid"] for r in by_number] == ["call-000003", "call-000002", "call-000001"]
        one = await journal.trace(uuid="call-000001")
        assert len(one) == 1
        assert one[0]["ring_time_s"] == 2.5 and one[0]["disposition"] == "recv_cancel"
        assert one[0]["trail"][0]["rule"] == "cid.not_allowed"
        assert (await journal.trace(uuid="call-000004"))[0]["ended_at"] is None
        assert [r["uuid"] for r in await journal.trace(trunk="cc-9")] == ["call-000002"]
        window = await journal.trace(
            since=datetime.fromtimestamp(NOW + 60, UTC), until=NOW + 180
        )
        assert [r["uuid"] for r in window] == ["call-000003", "call-000002"]
        assert [r["uuid"] for r in await journal.trace(number=a, since=NOW + 1)] == [
            "call-000003",
            "call-000002",
        ]
        assert await journal.trace(number="10000000000") == []
        assert len(await journal.trace(limit=2)) == 2
        assert len(await journal.trace(customer="acme", until=NOW + 1)) == 1
    finally:
        await journal.close()
    out = io.StringIO()
    assert write_csv(by_number, out) == 3
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["uuid"] for r in parsed] == ["call-000003", "call-000002", "call-000001"]
    assert parsed[2]["hangup_cause"] == "ORIGINATOR_CANCEL"


async def test_trace_uses_the_normaliser(db: Db, tmp_path: Path) -> None:
    def e164(raw: str) -> str:
        digits = raw.removeprefix("+86").removeprefix("0086")
        return "+86" + digits

    journal = await open_journal(db.dsn, tmp_path, normaliser=e164)
    try:
        journal.record_decision(
            facts(1, caller="008613900001111"), decision(), decided_at=NOW, latency_ms=1
        )
        assert await journal.flush()
        found = await journal.trace(number="13900001111")
        assert [(r["from_raw"], r["from_norm"]) for r in found] == [
            ("008613900001111", "+8613900001111")
        ]
    finally:
        await journal.close()


async def test_trace_raises_storage_error_when_database_is_down(
    db: Db, proxy: CuttableProxy, tmp_path: Path
) -> None:
    from fs_plugin.errors import StorageError

    proxy.cut()
    journal = await open_journal(proxy.dsn(db.name), tmp_path)
    try:
        with pytest.raises(StorageError):
            await journal.trace(number="1")
        with pytest.raises(StorageError):
            await journal.enforce_retention(30)
    finally:
        await journal.close()

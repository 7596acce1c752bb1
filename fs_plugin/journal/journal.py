"""The call journal: decisions and outcomes into PostgreSQL, off the call path.

How a record travels::

    record_decision / record_outcome   (plain functions: no await, no I/O)
        │  append to a bounded in-memory deque ─ full? ─► one write() to the spool
        ▼
    writer task, every ``flush_interval_s`` or when ``batch_max`` records wait
        │  1. connect if needed (migrations, partitions ahead, staging tables)
        │  2. drain the spool (older records first), truncate it once committed
        │  3. COPY the queue in batches of ``batch_max``
        │  any failure on the way ─► the batch and the queue go to the spool (fsync)
        ▼
    COPY into a per-connection temp table, then INSERT … ON CONFLICT DO NOTHING
    into the partitioned table, in one transaction.

The staging step makes every write duplicate-safe: a batch whose commit reached the
server but whose acknowledgement was lost (connection cut mid-COPY) is spooled and
replayed, and the replay's rows collide with the committed ones on the primary key
``(uuid, switch, time)`` and are dropped. Times are integer microseconds end to end
(rows.py), so a replayed key is bit-for-bit the committed one.

Records PostgreSQL refuses for their content (a data error, not an outage) are
retried one by one and the offenders moved to ``<spool>.rejected``; they are
counted and logged, never silently discarded, and never block the rest.

``record_*`` must be called from the event loop's thread (they touch the deque and
an ``asyncio.Event``).
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import StorageError
from fs_plugin.journal.embedded import EmbeddedPostgres, start_embedded
from fs_plugin.journal.migrate import apply_migrations, load_migrations
from fs_plugin.journal.partitions import (
    day_of_us,
    drop_expired_partitions,
    ensure_partitions,
    partition_day,
)
from fs_plugin.journal.rows import (
    DECISION_COLUMNS,
    OUTCOME_COLUMNS,
    Normaliser,
    PendingDecision,
    PendingOutcome,
    decision_row,
    outcome_row,
    to_copy_record,
    us_from_epoch,
    user_part,
)
from fs_plugin.journal.spool import Spool
from fs_plugin.journal.trace import build_trace_query, trace_row
from fs_plugin.screening.model import CallFacts, Decision, Outcome

__all__ = ["DEFAULT_BATCH_MAX", "DEFAULT_QUEUE_MAX", "DEFAULT_SPOOL_MAX_BYTES", "Journal"]

log = structlog.get_logger(__name__)

#: In-memory queue bound. A queued record is ~1 KiB (the call's variables are not
#: kept), so 20,000 is ~20 MiB. At 2,000 calls/s (a large switch, decisions and
#: outcomes both counted) that is ~5 s of a stalled PostgreSQL before records start
#: going straight to the spool; while PostgreSQL is down the writer empties the
#: queue into the spool every flush interval anyway.
DEFAULT_QUEUE_MAX: Final = 20_000
#: Rows per COPY: large enough that per-transaction cost vanishes (≥ 5,000 rows/s
#: needs only a few commits a second), small enough that one batch holds the event
#: loop (row conversion) for a few milliseconds at most.
DEFAULT_BATCH_MAX: Final = 1_000
#: 1 GiB ≈ a million records: hours of a busy switch with PostgreSQL down.
DEFAULT_SPOOL_MAX_BYTES: Final = 1 << 30

_KIND_DECISION: Final = "decision"
_KIND_OUTCOME: Final = "outcome"
_TABLES: Final = {
    _KIND_DECISION: ("journal_decision", "fsp_stage_decision", DECISION_COLUMNS, "decided_at"),
    _KIND_OUTCOME: ("journal_outcome", "fsp_stage_outcome", OUTCOME_COLUMNS, "ended_at"),
}
#: The rows' content was refused, by PostgreSQL (SQLSTATE classes 22, 23, 54) or by
#: asyncpg's encoder (a value of the wrong type or range, e.g. from a hand-edited
#: spool): retrying the same batch can never succeed, so it is split and the
#: offending rows set aside.
_CONTENT_ERRORS: Final = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    TypeError,
    ValueError,
    OverflowError,
)
#: Minimum seconds between two "spool full" log lines (the call path may hit it per call).
_DROP_LOG_INTERVAL_S: Final = 10.0
_BACKOFF_MIN_S: Final = 0.5
_BACKOFF_MAX_S: Final = 15.0


class _Entry:
    """A record in wire shape, ready for COPY or for a spool line."""

    __slots__ = ("kind", "line", "row")

    def __init__(self, kind: str, row: dict[str, Any], line: bytes | None = None) -> None:
        self.kind = kind
        self.row = row
        self.line = line

    def encoded(self) -> bytes:
        if self.line is None:
            body = {"k": self.kind, "r": self.row}
            self.line = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        return self.line


def _parse_line(line: bytes) -> _Entry | None:
    """A spool line → entry, or ``None`` if it cannot be a record of ours."""
    try:
        body = json.loads(line)
        kind = body["k"]
        row = body["r"]
        columns, time_column = _TABLES[kind][2], _TABLES[kind][3]
        to_copy_record(row, columns)  # validates types before a whole batch depends on it
        int(row[time_column])
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return _Entry(kind, row, line if line.endswith(b"\n") else line + b"\n")


class Journal:
    """Batched, spooled journal of screening decisions and call outcomes.

    Create with :meth:`open`; end with :meth:`close`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        switch: str,
        spool: Spool,
        clock: Clock,
        queue_max: int,
        batch_max: int,
        flush_interval_s: float,
        partitions_ahead_days: int,
        retention_days: int | None,
        maintenance_interval_s: float,
        normaliser: Normaliser | None,
        connect_timeout_s: float,
        command_timeout_s: float,
        close_timeout_s: float,
        embedded: EmbeddedPostgres | None,
    ) -> None:
        self._dsn = dsn
        self._switch = switch
        self._spool = spool
        self._clock = clock
        self._queue_max = queue_max
        self._batch_max = batch_max
        self._flush_interval_s = flush_interval_s
        self._ahead = partitions_ahead_days
        self._retention_days = retention_days
        self._maintenance_interval_s = maintenance_interval_s
        self._normaliser = normaliser or user_part
        self._connect_timeout_s = connect_timeout_s
        self._command_timeout_s = command_timeout_s
        self._close_timeout_s = close_timeout_s
        self.embedded = embedded

        self._migrations = load_migrations()
        self._queue: deque[PendingDecision | PendingOutcome] = deque()
        self._inflight: list[_Entry] = []
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._conn: Any = None
        self._known_days: set[int] = set()
        self._drain_offset = 0
        self._next_connect_at = 0.0
        self._backoff_s = _BACKOFF_MIN_S
        self._next_maintenance_at = 0.0
        self._last_drop_log_at: float | None = None
        self._closing = False
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        self._counters: dict[str, int] = dict.fromkeys(
            (
                "decisions_written",
                "outcomes_written",
                "duplicates_skipped",
                "copy_batches",
                "records_spooled",
                "records_dropped",
                "records_rejected",
                "spool_drains",
                "errors",
                "reconnects",
            ),
            0,
        )
        self._last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        dsn: str | None,
        *,
        state_dir: Path,
        switch: str,
        clock: Clock | None = None,
        queue_max: int = DEFAULT_QUEUE_MAX,
        batch_max: int = DEFAULT_BATCH_MAX,
        flush_interval_s: float = 0.5,
        spool_path: Path | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        partitions_ahead_days: int = 3,
        retention_days: int | None = None,
        maintenance_interval_s: float = 3600.0,
        normaliser: Normaliser | None = None,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 15.0,
        close_timeout_s: float = 10.0,
    ) -> Journal:
        """Open the journal; with ``dsn=None`` start the embedded PostgreSQL under
        ``state_dir/pg``.

        An unreachable PostgreSQL does not fail the open: the journal starts spooling
        and connects (and migrates) when it can. A broken embedded server does fail
        (:class:`StorageError`): it is a local fault an operator must see at start.
        """
        if queue_max < 1 or batch_max < 1 or flush_interval_s <= 0 or spool_max_bytes < 1:
            raise ValueError("queue_max, batch_max, flush_interval_s, spool_max_bytes must be > 0")
        if partitions_ahead_days < 0:
            raise ValueError("partitions_ahead_days must be >= 0")
        if retention_days is not None and retention_days < 1:
            raise ValueError("retention_days must be >= 1")
        embedded = None
        if dsn is None:
            embedded = await start_embedded(state_dir / "pg")
            dsn = embedded.dsn
        spool_file = spool_path or state_dir / "journal.spool"
        spool = await Spool.open(spool_file, max_bytes=spool_max_bytes)
        journal = cls(
            dsn,
            switch=switch,
            spool=spool,
            clock=clock or SystemClock(),
            queue_max=queue_max,
            batch_max=batch_max,
            flush_interval_s=flush_interval_s,
            partitions_ahead_days=partitions_ahead_days,
            retention_days=retention_days,
            maintenance_interval_s=maintenance_interval_s,
            normaliser=normaliser,
            connect_timeout_s=connect_timeout_s,
            command_timeout_s=command_timeout_s,
            close_timeout_s=close_timeout_s,
            embedded=embedded,
        )
        async with journal._lock:
            await journal._connection(force=True)
        if spool.size_bytes:
            journal._wakeup.set()
        journal._writer = asyncio.create_task(journal._run(), name="journal-writer")
        return journal

    async def close(self) -> None:
        """Flush what is queued (waiting at most ``close_timeout_s``) and stop.

        Whatever could not be committed in time is written to the spool (fsync'd),
        so the next start picks it up. The embedded server is left to pgserver,
        which stops it when the last process using it exits.
        """
        if self._closed:
            return
        self._closing = True
        self._wakeup.set()
        writer = self._writer
        try:
            if writer is not None:
                done, _ = await asyncio.wait({writer}, timeout=self._close_timeout_s)
                if not done:
                    log.warning("journal_close_timeout", queued=len(self._queue))
                    writer.cancel()
                    await asyncio.wait({writer})
        finally:
            self._closed = True
            self._spill_now()
            self._drop_connection()
            self._spool.close()

    # ------------------------------------------------------------------ call path

    def record_decision(
        self, facts: CallFacts, decision: Decision, *, decided_at: float, latency_ms: float
    ) -> None:
        """Queue one decision. Never awaits, never blocks, never raises."""
        try:
            self._put(PendingDecision.of(facts, decision, us_from_epoch(decided_at), latency_ms))
        except Exception as exc:  # the call must go on whatever the journal's trouble
            self._record_failed(exc, facts.uuid)

    def record_outcome(self, outcome: Outcome) -> None:
        """Queue one outcome; its time is the call's end (our clock if FreeSWITCH gave none)."""
        try:
            time_us = outcome.end_timestamp_us or us_from_epoch(self._clock.time())
            self._put(PendingOutcome(time_us, outcome))
        except Exception as exc:
            self._record_failed(exc, outcome.uuid)

    def _record_failed(self, exc: Exception, uuid: str) -> None:
        self._note_error(exc)
        self._counters["records_dropped"] += 1
        log.error("journal_record_failed", error=type(exc).__name__, uuid=uuid)

    def _put(self, item: PendingDecision | PendingOutcome) -> None:
        if not self._closed and len(self._queue) < self._queue_max:
            self._queue.append(item)
            if len(self._queue) >= self._batch_max:
                self._wakeup.set()
            return
        # Queue full (PostgreSQL is slow and the writer is stuck in a COPY), or closed:
        # one page-cache write, no fsync (the writer's next batch fsyncs the file).
        entry = self._entry(item)
        try:
            written = self._spool.append_now([entry.encoded()], sync=self._closed)
        except OSError as exc:
            self._spool.resync()
            self._note_error(exc)
            written = 0
        if written:
            self._counters["records_spooled"] += 1
        else:
            self._dropped(1)

    # ------------------------------------------------------------------ queries

    def stats(self) -> dict[str, int]:
        """Counters and gauges for metrics: queue depth, spool size, records written,
        errors, and ``connected`` (1 while the writer holds a connection)."""
        out = dict(self._counters)
        out["records_written"] = self._counters["decisions_written"] + self._counters[
            "outcomes_written"
        ]
        out["queue_depth"] = len(self._queue)
        out["queue_max"] = self._queue_max
        out["spool_bytes"] = self._spool.size_bytes
        out["spool_records"] = self._spool.records
        out["spool_max_bytes"] = self._spool.max_bytes
        out["connected"] = int(self._conn is not None)
        return out

    @property
    def last_error(self) -> str | None:
        """The type name of the last error met (for logs and health pages)."""
        return self._last_error

    @property
    def spool_path(self) -> Path:
        return self._spool.path

    async def flush(self) -> bool:
        """Write everything queued and spooled now (connecting at once if down).

        Returns ``True`` when all of it is committed to PostgreSQL, ``False`` when
        it went to the spool instead.
        """
        async with self._lock:
            return await self._cycle(force=True)

    async def trace(
        self,
        *,
        number: str | None = None,
        uuid: str | None = None,
        trunk: str | None = None,
        customer: str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Journaled calls matching every given filter, newest first, with their outcome.

        ``number`` matches the caller (From or P-Asserted-Identity, normalised) or the
        callee. ``since`` is inclusive, ``until`` exclusive (datetimes with a zone, or
        epoch seconds). Records still queued or spooled are not visible yet.
        """
        numbers: list[str] = []
        if number is not None:
            numbers = [number, self._safe_normalise(number) or number]
        sql, args = build_trace_query(
            numbers=numbers,
            uuid=uuid,
            trunk=trunk,
            customer=customer,
            since=since,
            until=until,
            limit=limit,
        )
        async with self._query_connection() as conn:
            records = await conn.fetch(sql, *args, timeout=self._command_timeout_s)
        return [trace_row(r) for r in records]

    async def enforce_retention(self, days: int) -> list[str]:
        """Drop the daily partitions entirely older than ``days`` days; return their names.

        Only attached partitions named ``<journal table>_pYYYYMMDD`` are considered.
        Raises :class:`StorageError` if PostgreSQL cannot be reached.
        """
        now_us = us_from_epoch(self._clock.time())
        async with self._query_connection() as conn:
            dropped = await drop_expired_partitions(
                conn, now_us=now_us, days=days, timeout_s=self._command_timeout_s
            )
        self._forget_partitions(dropped)
        if dropped:
            log.info("journal_partitions_dropped", partitions=dropped, retention_days=days)
        return dropped

    # ------------------------------------------------------------------ writer

    async def _run(self) -> None:
        while True:
            if not self._closing:
                try:
                    async with asyncio.timeout(self._flush_interval_s):
                        await self._wakeup.wait()
                except TimeoutError:
                    pass
            self._wakeup.clear()
            closing = self._closing
            try:
                async with self._lock:
                    await self._cycle(force=closing)
                    if not closing:
                        await self._maintain()
            except Exception as exc:
                # The writer must outlive any surprise; the records involved are spooled.
                log.exception("journal_writer_error")
                self._note_error(exc)
                try:
                    await self._spill()
                except Exception:
                    log.exception("journal_spill_failed", queued=len(self._queue))
            if closing:
                return

    async def _cycle(self, *, force: bool) -> bool:
        conn = await self._connection(force=force)
        if conn is None:
            await self._spill()
            return False
        try:
            await self._drain_spool(conn)
            # A batch can still be in flight from a flush() whose caller was cancelled
            # mid-COPY (rolled back): it is topped up from the queue, never replaced.
            while self._inflight or self._queue:
                take = min(self._batch_max - len(self._inflight), len(self._queue))
                self._inflight += [self._entry(self._queue.popleft()) for _ in range(take)]
                await self._write(conn, self._inflight)
                self._inflight = []
        except Exception as exc:
            self._lost_connection(exc)
            await self._spill()
            return False
        return not self._queue and self._spool.size_bytes == 0

    async def _maintain(self) -> None:
        now = self._clock.monotonic()
        if now < self._next_maintenance_at or self._conn is None:
            return
        self._next_maintenance_at = now + self._maintenance_interval_s
        try:
            await self._ensure_days(self._conn, self._days_ahead())
            if self._retention_days is not None:
                dropped = await drop_expired_partitions(
                    self._conn,
                    now_us=us_from_epoch(self._clock.time()),
                    days=self._retention_days,
                    timeout_s=self._command_timeout_s,
                )
                self._forget_partitions(dropped)
                if dropped:
                    log.info("journal_partitions_dropped", partitions=dropped)
        except Exception as exc:
            self._lost_connection(exc)

    def _days_ahead(self) -> list[int]:
        today = day_of_us(us_from_epoch(self._clock.time()))
        return list(range(today, today + self._ahead + 1))

    # ------------------------------------------------------------------ connection

    async def _connection(self, *, force: bool) -> Any:
        if self._conn is not None:
            if not self._conn.is_closed():
                return self._conn
            self._lost_connection(None)
        if not force and self._clock.monotonic() < self._next_connect_at:
            return None
        conn = None
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=self._connect_timeout_s,
                command_timeout=self._command_timeout_s,
                server_settings={"application_name": "fs_plugin-journal", "TimeZone": "UTC"},
            )
            await apply_migrations(conn, self._migrations, timeout_s=self._command_timeout_s)
            self._known_days.clear()
            await self._ensure_days(conn, self._days_ahead())
            for table, stage, _, _ in _TABLES.values():
                # Staging tables live as long as the connection and empty at each commit.
                await conn.execute(
                    f"CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS",
                    timeout=self._command_timeout_s,
                )
        except Exception as exc:
            if conn is not None:
                conn.terminate()
            self._connect_failed(exc)
            return None
        except BaseException:
            # Cancelled half-way (close() gave up on the writer, a flush() caller was
            # cancelled): nothing else holds the connection, which would stay open until
            # the garbage collector found it.
            if conn is not None:
                conn.terminate()
            raise
        self._conn = conn
        self._backoff_s = _BACKOFF_MIN_S
        self._counters["reconnects"] += 1
        log.info("journal_connected", switch=self._switch, spool_bytes=self._spool.size_bytes)
        return conn

    def _connect_failed(self, exc: BaseException) -> None:
        self._note_error(exc)
        self._next_connect_at = self._clock.monotonic() + self._backoff_s
        log.warning(
            "journal_connect_failed",
            error=type(exc).__name__,
            retry_in_s=self._backoff_s,
            spool_bytes=self._spool.size_bytes,
        )
        self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)

    def _lost_connection(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._note_error(exc)
        if self._conn is not None:
            log.warning(
                "journal_connection_lost",
                error=type(exc).__name__ if exc is not None else "closed",
                queued=len(self._queue),
            )
        self._drop_connection()
        self._next_connect_at = self._clock.monotonic() + self._backoff_s

    def _drop_connection(self) -> None:
        if self._conn is not None:
            # terminate(), not close(): the peer may be gone and close() would wait on it.
            self._conn.terminate()
            self._conn = None

    @asynccontextmanager
    async def _query_connection(self) -> AsyncIterator[Any]:
        """A short-lived connection for queries, apart from the writer's."""
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=self._connect_timeout_s,
                command_timeout=self._command_timeout_s,
                server_settings={"application_name": "fs_plugin-journal-query", "TimeZone": "UTC"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError("journal database unreachable") from exc
        try:
            yield conn
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError("journal query failed") from exc
        finally:
            conn.terminate()

    # ------------------------------------------------------------------ writing

    def _entry(self, item: PendingDecision | PendingOutcome) -> _Entry:
        if isinstance(item, PendingDecision):
            row = decision_row(item, self._switch, self._safe_normalise)
            return _Entry(_KIND_DECISION, row)
        return _Entry(_KIND_OUTCOME, outcome_row(item, self._switch))

    def _safe_normalise(self, raw: str) -> str:
        # A normaliser bug must not cost the record: keep the raw user part instead.
        try:
            return self._normaliser(raw)
        except Exception as exc:
            self._note_error(exc)
            return user_part(raw)

    async def _ensure_days(self, conn: Any, days: Iterable[int]) -> None:
        missing = set(days) - self._known_days
        if missing:
            await ensure_partitions(conn, missing, timeout_s=self._command_timeout_s)
            self._known_days |= missing

    def _forget_partitions(self, dropped: Iterable[str]) -> None:
        for name in dropped:
            for parent in ("journal_decision", "journal_outcome"):
                day = partition_day(parent, name)
                if day is not None:
                    self._known_days.discard(day)

    async def _write(self, conn: Any, entries: list[_Entry]) -> None:
        """Commit ``entries`` (any kinds, any number); raise on a connection problem."""
        for kind in (_KIND_DECISION, _KIND_OUTCOME):
            rows = [e for e in entries if e.kind == kind]
            for start in range(0, len(rows), self._batch_max):
                await self._write_batch(conn, kind, rows[start : start + self._batch_max])

    async def _write_batch(self, conn: Any, kind: str, batch: list[_Entry]) -> None:
        for attempt in (1, 2):
            try:
                await self._copy_insert(conn, kind, batch)
                return
            except asyncpg.CheckViolationError:
                # "No partition for this row": another process dropped a day we thought
                # existed. Forget what we know and create again, once.
                self._known_days.clear()
                if attempt == 2:
                    break
            except _CONTENT_ERRORS:
                break
        await self._write_one_by_one(conn, kind, batch)

    async def _write_one_by_one(self, conn: Any, kind: str, batch: list[_Entry]) -> None:
        rejected: list[bytes] = []
        for entry in batch:
            try:
                await self._copy_insert(conn, kind, [entry])
            except _CONTENT_ERRORS as exc:
                self._note_error(exc)
                rejected.append(entry.encoded())
        if rejected:
            await self._spool.reject(rejected)
            self._counters["records_rejected"] += len(rejected)
            log.error(
                "journal_records_rejected",
                count=len(rejected),
                kind=kind,
                file=str(self._spool.rejected_path),
            )

    async def _copy_insert(self, conn: Any, kind: str, batch: list[_Entry]) -> None:
        table, stage, columns, time_column = _TABLES[kind]
        await self._ensure_days(conn, {day_of_us(int(e.row[time_column])) for e in batch})
        records = [to_copy_record(e.row, columns) for e in batch]
        cols = ", ".join(columns)
        timeout = self._command_timeout_s
        async with conn.transaction():
            await conn.copy_records_to_table(
                stage, records=records, columns=columns, timeout=timeout
            )
            status = await conn.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT DO NOTHING",
                timeout=timeout,
            )
        inserted = int(status.rsplit(" ", 1)[-1])
        self._counters["copy_batches"] += 1
        self._counters[f"{kind}s_written"] += inserted
        self._counters["duplicates_skipped"] += len(batch) - inserted

    # ------------------------------------------------------------------ spool

    async def _drain_spool(self, conn: Any) -> None:
        """Commit every spooled record, oldest first; truncate the file once all are in.

        ``_drain_offset`` remembers how far this process has committed, so a drain
        cut short resumes; a new process starts at 0 and the primary keys drop what
        was already committed.
        """
        while True:
            lines, next_offset = await self._spool.read(self._drain_offset)
            if not lines:
                if next_offset == self._drain_offset:
                    if self._spool.size_bytes and self._spool.truncate_if_drained(
                        self._drain_offset
                    ):
                        self._counters["spool_drains"] += 1
                        log.info("journal_spool_drained", switch=self._switch)
                        self._drain_offset = 0
                    return
                self._drain_offset = next_offset
                continue
            entries: list[_Entry] = []
            bad: list[bytes] = []
            for line in lines:
                entry = _parse_line(line)
                if entry is None:
                    bad.append(line)
                else:
                    entries.append(entry)
            if bad:
                await self._spool.reject(bad)
                self._counters["records_rejected"] += len(bad)
                log.error("journal_spool_lines_unreadable", count=len(bad))
            await self._write(conn, entries)
            self._drain_offset = next_offset

    async def _spill(self) -> None:
        """Move the in-flight batch and the whole queue to the spool, fsync'd per batch."""
        while self._inflight or self._queue:
            entries = self._inflight
            self._inflight = []
            room = self._batch_max - len(entries)
            take = min(room, len(self._queue))
            entries += [self._entry(self._queue.popleft()) for _ in range(take)]
            lines = [e.encoded() for e in entries]
            try:
                written = await self._spool.append(lines)
            except OSError as exc:
                self._spool.resync()
                self._note_error(exc)
                written = 0
            self._counters["records_spooled"] += written
            if written < len(lines):
                self._dropped(len(lines) - written)

    def _spill_now(self) -> None:
        """The synchronous spill of :meth:`close`: the loop is going away."""
        entries = self._inflight + [self._entry(item) for item in self._queue]
        self._inflight = []
        self._queue.clear()
        if not entries:
            return
        try:
            written = self._spool.append_now([e.encoded() for e in entries], sync=True)
        except OSError as exc:
            self._spool.resync()
            self._note_error(exc)
            written = 0
        self._counters["records_spooled"] += written
        if written < len(entries):
            self._dropped(len(entries) - written)

    def _dropped(self, count: int) -> None:
        self._counters["records_dropped"] += count
        now = self._clock.monotonic()
        last = self._last_drop_log_at
        if last is None or now - last >= _DROP_LOG_INTERVAL_S:
            self._last_drop_log_at = now
            log.error(
                "journal_spool_full",
                dropped_total=self._counters["records_dropped"],
                spool_bytes=self._spool.size_bytes,
                spool_max_bytes=self._spool.max_bytes,
                spool=str(self._spool.path),
            )

    def _note_error(self, exc: BaseException) -> None:
        self._counters["errors"] += 1
        self._last_error = type(exc).__name__

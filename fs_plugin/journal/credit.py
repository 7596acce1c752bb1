"""Credit records and joint punishment (一处失信，处处受限).

Violations are recorded by hand (the desk) or automatically by :meth:`Credit.scan`,
which reads the journal: a trunk blocked at least ``threshold`` times for one rule
(``cid.not_allowed`` by default: a trunk presenting caller IDs it was not given)
within the scanned period is a violation of its customer. A customer reaching
``blacklist_after`` violations within ``window_days`` is blacklisted automatically;
the desk may also blacklist or lift by hand. A blacklisted customer is blocked on
every trunk it holds, on every switch (rule ``credit.blacklisted``, applied through
the ledger overlay).

Records are append-only: a lift is a new record, so the history shows both. An
automatic record carries a key (rule, trunk, period), so scanning the same period
twice records nothing new.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.journal.ledger import Ledger
from fs_plugin.policy.catalogue import CID_NOT_ALLOWED

__all__ = ["Credit", "CreditRecord", "ScanResult"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class CreditRecord:
    id: int
    customer: str
    recorded_at: dt.datetime
    kind: str
    rule: str | None
    trunk: str | None
    source: str
    note: str

    @classmethod
    def of(cls, r: Any) -> CreditRecord:
        return cls(r["id"], r["customer"], r["recorded_at"], r["kind"], r["rule"], r["trunk"],
                   r["source"], r["note"])


@dataclass(frozen=True, slots=True)
class ScanResult:
    violations: tuple[CreditRecord, ...]
    blacklisted: tuple[str, ...]


class Credit:
    """The credit record of customers, in the ledger database."""

    def __init__(self, ledger: Ledger, *, clock: Clock | None = None) -> None:
        self._ledger = ledger
        self._clock = clock or SystemClock()

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.time(), dt.UTC)

    async def _insert(self, conn: Any, customer: str, kind: str, *, note: str, source: str,
                      rule: str | None = None, trunk: str | None = None,
                      dedupe: str | None = None) -> CreditRecord | None:
        rec = await conn.fetchrow(
            """
            INSERT INTO ledger_credit (customer, recorded_at, kind, rule, trunk, source, note,
                                       dedupe)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT (dedupe) DO NOTHING RETURNING *
            """,
            customer, self._now(), kind, rule, trunk, source, note, dedupe)
        if rec is None:
            return None
        log.info("credit_recorded", customer=customer, kind=kind, source=source, rule=rule,
                 trunk=trunk)
        return CreditRecord.of(rec)

    async def record_violation(self, customer: str, note: str, *, rule: str | None = None,
                               trunk: str | None = None) -> CreditRecord:
        """A violation recorded by hand."""
        async with self._ledger.connection() as conn:
            rec = await self._insert(conn, customer, "violation", note=note, source="manual",
                                     rule=rule, trunk=trunk)
        assert rec is not None  # no dedupe key: always inserted
        return rec

    async def blacklist(self, customer: str, reason: str) -> CreditRecord:
        async with self._ledger.connection() as conn:
            rec = await self._insert(conn, customer, "blacklist", note=reason, source="manual")
        assert rec is not None
        return rec

    async def lift(self, customer: str, reason: str) -> CreditRecord:
        async with self._ledger.connection() as conn:
            rec = await self._insert(conn, customer, "lift", note=reason, source="manual")
        assert rec is not None
        return rec

    async def history(self, customer: str) -> list[CreditRecord]:
        async with self._ledger.connection() as conn:
            recs = await conn.fetch(
                "SELECT * FROM ledger_credit WHERE customer = $1 ORDER BY recorded_at, id",
                customer)
        return [CreditRecord.of(r) for r in recs]

    async def blacklisted(self) -> dict[str, str]:
        """Blacklisted customer → reason (the latest blacklist-or-lift record decides)."""
        return dict((await self._ledger.state()).blacklisted)

    async def scan(
        self,
        since: dt.datetime,
        until: dt.datetime,
        *,
        rule: str = CID_NOT_ALLOWED,
        threshold: int = 20,
        blacklist_after: int = 3,
        window_days: int = 90,
    ) -> ScanResult:
        """Record a violation for each (customer, trunk) the journal shows blocked by
        ``rule`` at least ``threshold`` times in [since, until), and blacklist customers
        with ``blacklist_after`` violations in the ``window_days`` before ``until``."""
        if threshold < 1 or blacklist_after < 1:
            raise ValueError("threshold and blacklist_after must be >= 1")
        if since.tzinfo is None or until.tzinfo is None:
            raise ValueError("since and until must carry a time zone")
        # The key names the period's instants, not how they were written: the service
        # scans in UTC, the desk types +08:00, and the same period must not count twice.
        period = f"{since.astimezone(dt.UTC).isoformat()}/{until.astimezone(dt.UTC).isoformat()}"
        found: list[CreditRecord] = []
        newly: list[str] = []
        async with self._ledger.connection() as conn, conn.transaction():
            groups = await conn.fetch(
                """
                SELECT customer, trunk, count(*) AS blocks FROM journal_decision
                WHERE rule = $1 AND verdict = 'block' AND customer IS NOT NULL
                  AND decided_at >= $2 AND decided_at < $3
                GROUP BY customer, trunk HAVING count(*) >= $4
                ORDER BY customer, trunk
                """, rule, since, until, threshold)
            for g in groups:
                rec = await self._insert(
                    conn, g["customer"], "violation", source="auto", rule=rule,
                    trunk=g["trunk"], dedupe=f"auto|{rule}|{g['trunk']}|{period}",
                    note=f"trunk {g['trunk']} blocked {g['blocks']} times for {rule} "
                         f"between {since.isoformat()} and {until.isoformat()}")
                if rec is not None:
                    found.append(rec)
            customers = sorted({r.customer for r in found})
            window_start = until - dt.timedelta(days=window_days)
            for customer in customers:
                last = await conn.fetchrow(
                    "SELECT kind, recorded_at FROM ledger_credit WHERE customer = $1 AND kind "
                    "IN ('blacklist', 'lift') ORDER BY recorded_at DESC, id DESC LIMIT 1",
                    customer)
                if last is not None and last["kind"] == "blacklist":
                    continue
                # A lift wipes the slate: only violations after it count towards the next
                # blacklisting, or the first new violation would undo the lift at once.
                counted_from = window_start
                if last is not None:
                    counted_from = max(counted_from, last["recorded_at"])
                count = await conn.fetchval(
                    "SELECT count(*) FROM ledger_credit WHERE customer = $1 "
                    "AND kind = 'violation' AND recorded_at >= $2", customer, counted_from)
                if count >= blacklist_after:
                    await self._insert(
                        conn, customer, "blacklist", source="auto",
                        note=f"{count} violations in {window_days} days (automatic)")
                    newly.append(customer)
        return ScanResult(tuple(found), tuple(newly))

"""Complaints (12321 hotline, website, app): tickets from intake to answer, and labels.

Each complaint becomes a ticket that moves forward only: received → verified →
actioned → answered ("件件有处置，事事有回音"); the answer is kept with the ticket. An
answer is due ``answer_days`` after receipt (15 by default: the desk's service level,
configurable); :meth:`Complaints.overdue` lists the tickets past due.

When a number collects ``label_threshold`` complaints within ``label_window_days``,
it is labelled (``ledger_label``, source ``12321``) with the most frequent category,
and the label reaches every switch through the ledger overlay. Confidence grows with
the count (threshold → 0.5, twice the threshold → 1.0), so a policy's
``label_min_confidence`` can ask for more complaints before a label applies.

The reporter's number is masked at intake and never stored in full.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError
from fs_plugin.journal.ledger import Ledger
from fs_plugin.numbering import classify, user_part
from fs_plugin.policy.catalogue import LabelCategory

__all__ = [
    "CHANNELS",
    "STATUSES",
    "ComplaintIn",
    "Complaints",
    "Ticket",
    "mask_reporter",
]

log = structlog.get_logger(__name__)

STATUSES: Final = ("received", "verified", "actioned", "answered")
CHANNELS: Final = ("12321", "website", "app", "phone", "other")
_STAMP: Final = {"verified": "verified_at", "actioned": "actioned_at", "answered": "answered_at"}
_CSV_COLUMNS: Final = ("received_at", "reporter", "reported_number", "category", "channel",
                       "text", "ref")


def mask_reporter(number: str) -> str:
    """Keep the first 3 and last 4 digits of a reporter's number (138****1234): enough
    to tell two reporters apart on a ticket, not enough to call them."""
    digits = user_part(number).strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) <= 7:
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


@dataclass(frozen=True, slots=True)
class ComplaintIn:
    """A complaint as received. ``reporter`` may be given in full; it is masked."""

    reported_number: str
    category: LabelCategory
    channel: str = "12321"
    text: str = ""
    reporter: str = ""
    received_at: dt.datetime | None = None
    #: The hotline's own ticket number; a second intake with it is ignored.
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    received_at: dt.datetime
    reporter: str
    reported_number: str
    reported_key: str
    category: str
    channel: str
    text: str
    status: str
    answer: str
    due_at: dt.datetime
    answered_at: dt.datetime | None
    ref: str | None

    @classmethod
    def of(cls, r: Any) -> Ticket:
        return cls(r["id"], r["received_at"], r["reporter"], r["reported_raw"],
                   r["reported_key"], r["category"], r["channel"], r["body"], r["status"],
                   r["answer"], r["due_at"], r["answered_at"], r["external_ref"])


class Complaints:
    """Complaint tickets in the ledger database."""

    def __init__(self, ledger: Ledger, *, clock: Clock | None = None, answer_days: int = 15,
                 label_threshold: int = 3, label_window_days: int = 30) -> None:
        if answer_days < 1 or label_threshold < 1 or label_window_days < 1:
            raise ValueError("answer_days, label_threshold, label_window_days must be >= 1")
        self._ledger = ledger
        self._clock = clock or SystemClock()
        self.answer_days = answer_days
        self.label_threshold = label_threshold
        self.label_window_days = label_window_days

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.time(), dt.UTC)

    async def intake(self, c: ComplaintIn) -> Ticket | None:
        """Open a ticket (``None`` if ``ref`` was seen already) and label the number
        when it has collected enough complaints."""
        if c.channel not in CHANNELS:
            raise ValueError("channel must be one of " + ", ".join(CHANNELS))
        n = classify(user_part(c.reported_number))
        if n.key is None:
            raise ValueError(f"reported number {c.reported_number!r} is not a valid number")
        received = c.received_at or self._now()
        if received.tzinfo is None:
            raise ValueError("received_at must carry a time zone")
        due = received + dt.timedelta(days=self.answer_days)
        async with self._ledger.connection() as conn, conn.transaction():
            rec = await conn.fetchrow(
                """
                INSERT INTO complaint (received_at, reporter, reported_raw, reported_key,
                                       category, channel, body, due_at, external_ref)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                ON CONFLICT (external_ref) DO NOTHING
                RETURNING *
                """,
                received, mask_reporter(c.reporter) if c.reporter else "", c.reported_number,
                n.key, c.category.value, c.channel, c.text, due, c.ref,
            )
            if rec is None:
                return None
            await self._maybe_label(conn, n.key, received)
        ticket = Ticket.of(rec)
        log.info("complaint_received", ticket=ticket.id, number=n.key,
                 category=ticket.category, channel=ticket.channel)
        return ticket

    async def _maybe_label(self, conn: Any, key: str, at: dt.datetime) -> None:
        since = at - dt.timedelta(days=self.label_window_days)
        cats = await conn.fetch(
            "SELECT category FROM complaint WHERE reported_key = $1 "
            "AND received_at > $2 AND received_at <= $3", key, since, at)
        count = len(cats)
        if count < self.label_threshold:
            return
        # Most frequent category; ties go to the alphabetically first, so the label does
        # not flip between equal categories from one complaint to the next.
        tally = Counter(r["category"] for r in cats)
        category = min(tally, key=lambda k: (-tally[k], k))
        confidence = min(1.0, count / (2 * self.label_threshold))
        await conn.execute(
            """
            INSERT INTO ledger_label (key, number, category, source, confidence, complaints,
                                      labelled_at)
            VALUES ($1, $2, $3, '12321', $4, $5, $6)
            ON CONFLICT (key) DO UPDATE SET category = EXCLUDED.category,
                confidence = EXCLUDED.confidence, complaints = EXCLUDED.complaints,
                labelled_at = EXCLUDED.labelled_at
            WHERE ledger_label.source = '12321'
            """,
            key, key, category, confidence, count, at,
        )
        log.info("complaint_label", number=key, category=category, complaints=count)

    async def advance(self, ticket_id: int, status: str, *, answer: str | None = None
                      ) -> Ticket:
        """Move a ticket forward (never back); ``answered`` needs the answer's text."""
        if status not in STATUSES:
            raise ValueError("status must be one of " + ", ".join(STATUSES))
        if status == "answered" and not answer:
            raise ValueError("an answered ticket needs its answer")
        now = self._now()
        async with self._ledger.connection() as conn, conn.transaction():
            current = await conn.fetchrow(
                "SELECT status FROM complaint WHERE id = $1 FOR UPDATE", ticket_id)
            if current is None:
                raise KeyError(ticket_id)
            if STATUSES.index(status) <= STATUSES.index(current["status"]):
                raise ValueError(f"ticket {ticket_id} is {current['status']}; it moves "
                                 "forward only")
            stamp = _STAMP[status]
            rec = await conn.fetchrow(
                f"UPDATE complaint SET status = $2, {stamp} = $3, "
                "answer = COALESCE($4, answer) WHERE id = $1 RETURNING *",
                ticket_id, status, now, answer)
        log.info("complaint_advanced", ticket=ticket_id, status=status)
        return Ticket.of(rec)

    async def get(self, ticket_id: int) -> Ticket | None:
        async with self._ledger.connection() as conn:
            rec = await conn.fetchrow("SELECT * FROM complaint WHERE id = $1", ticket_id)
        return Ticket.of(rec) if rec is not None else None

    async def tickets(self, *, status: str | None = None, number: str | None = None,
                   limit: int = 1000) -> list[Ticket]:
        key = classify(user_part(number)).key if number is not None else None
        async with self._ledger.connection() as conn:
            recs = await conn.fetch(
                "SELECT * FROM complaint WHERE ($1::text IS NULL OR status = $1) "
                "AND ($2::text IS NULL OR reported_key = $2) ORDER BY received_at DESC, id "
                "LIMIT $3", status, key, limit)
        return [Ticket.of(r) for r in recs]

    async def overdue(self) -> list[Ticket]:
        """Tickets not answered by their due time, oldest due first."""
        async with self._ledger.connection() as conn:
            recs = await conn.fetch(
                "SELECT * FROM complaint WHERE status <> 'answered' AND due_at < $1 "
                "ORDER BY due_at, id", self._now())
        return [Ticket.of(r) for r in recs]

    async def import_csv(self, path: Path) -> tuple[int, int]:
        """Intake every row of a CSV file (header: received_at, reporter, reported_number,
        category, channel, text, ref); returns (added, already known). Rows are checked
        first, so a bad row (named by line) adds nothing."""
        items: list[ComplaintIn] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"reported_number", "category"} - set(reader.fieldnames or ())
            if missing:
                raise ConfigError(f"missing column {sorted(missing)[0]!r}", file=str(path),
                                  line=1)
            for row in reader:
                items.append(_complaint_of(row, str(path), reader.line_num))
        added = 0
        for item in items:
            if await self.intake(item) is not None:
                added += 1
        return added, len(items) - added


def _complaint_of(row: dict[str, str], file: str, line: int) -> ComplaintIn:
    unknown = sorted(k for k in row if k is not None and k not in _CSV_COLUMNS)
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r}", file=file, line=line, key=unknown[0])
    key = ""
    try:
        key = "category"
        category = LabelCategory((row.get("category") or "").strip())
        key = "channel"
        channel = (row.get("channel") or "12321").strip()
        if channel not in CHANNELS:
            raise ValueError(channel)
        key = "received_at"
        when = (row.get("received_at") or "").strip()
        received = dt.datetime.fromisoformat(when) if when else None
        if received is not None and received.tzinfo is None:
            raise ValueError("needs a time zone")
        key = "reported_number"
        number = (row.get("reported_number") or "").strip()
        if classify(user_part(number)).key is None:
            raise ValueError(number)
    except ValueError as exc:
        raise ConfigError(f"bad {key}: {exc}", file=file, line=line, key=key) from None
    return ComplaintIn(number, category, channel, (row.get("text") or "").strip(),
                       (row.get("reporter") or "").strip(), received,
                       (row.get("ref") or "").strip() or None)

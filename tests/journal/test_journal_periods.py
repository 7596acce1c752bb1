"""Period boundaries of the quarterly report, complaint due dates and credit scans,
against real PostgreSQL: local (Asia/Shanghai) quarters and weeks, half-open periods."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import asyncpg
import pytest

from fs_plugin.clock import ManualClock
from fs_plugin.journal.complaints import ComplaintIn, Complaints
from fs_plugin.journal.credit import Credit
from fs_plugin.journal.ledger import Ledger
from fs_plugin.journal.report import build_report
from fs_plugin.policy.catalogue import LabelCategory

if TYPE_CHECKING:  # the fixture's type, from this directory's conftest.py
    from conftest import Db

SH = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
async def ledger(db: Db) -> AsyncIterator[Ledger]:
    led = await Ledger.open(db.dsn)
    yield led
    await led.close()


async def _decisions(db: Db, *times: dt.datetime, verdict: str = "block",
                     trunk: str = "ent-1", customer: str = "acme",
                     rule: str = "cid.not_allowed") -> None:
    conn: asyncpg.Connection = await db.connect()
    try:
        for day in {t.astimezone(dt.UTC).date() for t in times}:
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS journal_decision_p{day:%Y%m%d} PARTITION OF "
                f"journal_decision FOR VALUES FROM ('{day}') TO "
                f"('{day + dt.timedelta(days=1)}')")
        await conn.executemany(
            "INSERT INTO journal_decision (decided_at, switch, uuid, trunk, customer, verdict,"
            " rule, from_norm, callee) VALUES ($1, 'sw', $2, $3, $4, $5, $6, $7, $8)",
            [(t, f"{trunk}-{t.timestamp()}-{i}", trunk, customer, verdict, rule,
              "13900001111", "02088881234") for i, t in enumerate(times)])
    finally:
        await conn.close()


async def test_quarters_end_at_local_midnight_not_utc_midnight(db: Db, ledger: Ledger) -> None:
    last_of_q1 = dt.datetime(2026, 3, 31, 23, 30, tzinfo=SH)  # 15:30Z
    first_of_q2 = dt.datetime(2026, 4, 1, 0, 30, tzinfo=SH)  # 2026-03-31T16:30Z, a UTC Q1 day
    await _decisions(db, last_of_q1, first_of_q2)
    desk = Complaints(ledger, clock=ManualClock(first_of_q2.timestamp()), label_threshold=99)
    for when in (last_of_q1, first_of_q2):
        await desk.intake(ComplaintIn("13700000001", LabelCategory.HARASSMENT,
                                      received_at=when.astimezone(dt.UTC)))
    now = dt.datetime(2026, 7, 15, tzinfo=dt.UTC)
    q1 = await build_report(ledger, "2026Q1", now=now)
    q2 = await build_report(ledger, "2026Q2", now=now)
    assert (q1.totals["screened"], q2.totals["screened"]) == (1, 1)
    assert (q1.complaints["received"], q2.complaints["received"]) == (1, 1)
    # Both calls fall in the local week of Monday 2026-03-30, one in each report.
    assert q1.weekly[-1] == ("2026-03-30", 1, 1)
    assert q2.weekly[0] == ("2026-03-30", 1, 1)
    assert sum(s for _, s, _ in q1.weekly) == sum(s for _, s, _ in q2.weekly) == 1


async def test_weeks_run_across_the_new_year_without_a_gap(db: Db, ledger: Ledger) -> None:
    new_year_eve = dt.datetime(2026, 12, 31, 23, 59, tzinfo=SH)
    new_year = dt.datetime(2027, 1, 1, 0, 1, tzinfo=SH)
    await _decisions(db, new_year_eve, new_year, verdict="pass")
    now = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    q4 = await build_report(ledger, "2026Q4", now=now)
    q1 = await build_report(ledger, "2027Q1", now=now)
    assert q4.weekly[0][0] == "2026-09-28" and q4.weekly[-1] == ("2026-12-28", 1, 0)
    assert q1.weekly[0] == ("2026-12-28", 1, 0) and q1.weekly[-1][0] == "2027-03-29"
    weeks = [dt.date.fromisoformat(w) for w, _, _ in q4.weekly + q1.weekly[1:]]
    assert all(b - a == dt.timedelta(weeks=1) for a, b in itertools.pairwise(weeks))


async def test_a_quarter_without_data_reports_zeros_and_every_week(ledger: Ledger) -> None:
    report = await build_report(ledger, "2025Q3", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert report.totals == {"screened": 0, "blocked": 0, "warned": 0, "passed": 0}
    assert set(report.complaints.values()) == {0} and report.blocks_by_rule == ()
    assert len(report.weekly) == 14 and {(s, b) for _, s, b in report.weekly} == {(0, 0)}
    future = await build_report(ledger, "2030Q1", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert future.totals["screened"] == 0 and len(future.weekly) == 1


async def test_an_answer_is_due_fifteen_days_to_the_second_after_a_late_receipt(
        ledger: Ledger) -> None:
    received = dt.datetime(2026, 3, 31, 23, 50, tzinfo=SH)
    clock = ManualClock(received.timestamp())
    desk = Complaints(ledger, clock=clock, label_threshold=99)
    ticket = await desk.intake(ComplaintIn("13700000001", LabelCategory.HARASSMENT,
                                           received_at=received))
    assert ticket is not None
    assert ticket.due_at == dt.datetime(2026, 4, 15, 23, 50, tzinfo=SH)
    clock.set(ticket.due_at.timestamp())
    assert await desk.overdue() == []  # due at that instant: not yet late
    clock.advance(1)
    assert [t.id for t in await desk.overdue()] == [ticket.id]


async def test_scan_periods_are_half_open(db: Db, ledger: Ledger) -> None:
    midnight = dt.datetime(2026, 11, 11, tzinfo=SH)
    before = [midnight - dt.timedelta(seconds=1 + i) for i in range(20)]
    await _decisions(db, *before, midnight)
    credit = Credit(ledger, clock=ManualClock(midnight.timestamp() + 86400))
    day = dt.timedelta(days=1)
    first = await credit.scan(midnight - day, midnight, threshold=20)
    second = await credit.scan(midnight, midnight + day, threshold=20)
    assert len(first.violations) == 1 and second.violations == ()
    third = await credit.scan(midnight - day, midnight + dt.timedelta(seconds=1),
                              threshold=21)
    assert len(third.violations) == 1


async def test_the_same_period_in_another_zone_is_not_scanned_twice(
        db: Db, ledger: Ledger) -> None:
    since = dt.datetime(2026, 11, 11, tzinfo=SH)
    until = since + dt.timedelta(days=1)
    await _decisions(db, *(since + dt.timedelta(minutes=i) for i in range(20)))
    credit = Credit(ledger, clock=ManualClock(until.timestamp() + 60))
    first = await credit.scan(since, until, threshold=20, blacklist_after=2)
    assert len(first.violations) == 1
    # The service scans in UTC; the desk's CLI takes +08:00. The period is the same.
    again = await credit.scan(since.astimezone(dt.UTC), until.astimezone(dt.UTC),
                              threshold=20, blacklist_after=2)
    assert again.violations == () and again.blacklisted == ()
    assert [r.kind for r in await credit.history("acme")] == ["violation"]
    with pytest.raises(ValueError, match="time zone"):
        await credit.scan(since.replace(tzinfo=None), until, threshold=20)

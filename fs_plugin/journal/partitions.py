"""Daily partitions of the journal tables: naming, creation ahead, retention.

A partition holds one UTC day, ``[00:00, 24:00)`` of ``decided_at`` / ``ended_at``,
and is named ``<table>_pYYYYMMDD``. Bounds are written with an explicit ``+00`` so
they do not depend on the session's ``TimeZone``. Creation and retention both run
under one advisory lock: switches sharing a database would otherwise race on
``CREATE TABLE ... PARTITION OF`` for the same day.

Retention only ever drops tables that are (a) attached as partitions of a journal
table and (b) named by the pattern above: nothing else is touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

__all__ = [
    "DAY_US",
    "PARENT_TABLES",
    "PARTITION_LOCK_KEY",
    "day_of_us",
    "drop_expired_partitions",
    "ensure_partitions",
    "partition_day",
    "partition_name",
]

DAY_US: Final = 86_400_000_000
#: The partitioned journal tables, each with its partition-key column.
PARENT_TABLES: Final = {"journal_decision": "decided_at", "journal_outcome": "ended_at"}
#: Advisory lock id for partition DDL ("fsp:part").
PARTITION_LOCK_KEY: Final = 0x6673703A70617274

_EPOCH_DAY: Final = date(1970, 1, 1)
_SUFFIX: Final = re.compile(r"^_p(\d{8})$")


def day_of_us(us: int) -> int:
    """Days since 1970-01-01 (UTC) of a time in epoch microseconds."""
    return us // DAY_US


def _date(day: int) -> date:
    return _EPOCH_DAY + timedelta(days=day)


def partition_name(parent: str, day: int) -> str:
    return f"{parent}_p{_date(day):%Y%m%d}"


def partition_day(parent: str, name: str) -> int | None:
    """The day a partition name stands for, or ``None`` if it is not one of ours."""
    if not name.startswith(parent):
        return None
    match = _SUFFIX.match(name[len(parent) :])
    if match is None:
        return None
    try:
        parsed = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None
    return (parsed - _EPOCH_DAY).days


def _bound(day: int) -> str:
    return f"{_date(day).isoformat()} 00:00:00+00"


async def _children(conn: Any, parent: str, timeout_s: float) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass
        """,
        parent,
        timeout=timeout_s,
    )
    return [str(r["relname"]) for r in rows]


async def ensure_partitions(conn: Any, days: Iterable[int], *, timeout_s: float) -> list[str]:
    """Create the missing daily partitions of every journal table for ``days``.

    Returns the names created. Safe to run from many processes at once.
    """
    wanted = sorted(set(days))
    created: list[str] = []
    if not wanted:
        return created
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY, timeout=timeout_s
        )
        for parent in PARENT_TABLES:
            existing = set(await _children(conn, parent, timeout_s))
            for day in wanted:
                name = partition_name(parent, day)
                if name in existing:
                    continue
                # Names and bounds are built from our own table names and integers only.
                await conn.execute(
                    f'CREATE TABLE "{name}" PARTITION OF "{parent}" '
                    f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + 1)}')",
                    timeout=timeout_s,
                )
                created.append(name)
    return created


async def drop_expired_partitions(
    conn: Any, *, now_us: int, days: int, timeout_s: float
) -> list[str]:
    """Drop every journal partition whose whole day ended more than ``days`` days ago.

    A partition for day D holds ``[D, D+1)``; it goes when ``D+1 <= now - days``, so
    no row younger than the retention limit is ever dropped. Returns dropped names.
    """
    if days < 1:
        raise ValueError("retention must be at least one day")
    cutoff_us = now_us - days * DAY_US
    dropped: list[str] = []
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY, timeout=timeout_s
        )
        for parent in PARENT_TABLES:
            for name in sorted(await _children(conn, parent, timeout_s)):
                day = partition_day(parent, name)
                if day is None or (day + 1) * DAY_US > cutoff_us:
                    continue
                await conn.execute(f'DROP TABLE "{name}"', timeout=timeout_s)
                dropped.append(name)
    return dropped

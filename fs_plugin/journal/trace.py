"""Call tracing (通话溯源): find journaled calls and how they ended; export them as CSV.

The query is built from fixed SQL fragments and numbered parameters only. A number
is matched on either side of the call (From, P-Asserted-Identity, callee) in the
normalised form, which is indexed; a time range prunes daily partitions. Each
decision is joined with the first outcome of the same call ended within two days
(one hour of skew allowed), which keeps the outcome look-up to a few partitions.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Final

from fs_plugin.journal.rows import DECISION_COLUMNS

__all__ = ["MAX_TRACE_LIMIT", "TRACE_COLUMNS", "build_trace_query", "trace_row", "write_csv"]

#: Largest answer one query may return: a regulator's export, not an unbounded dump.
MAX_TRACE_LIMIT: Final = 100_000

#: A traced call shows the decision exactly as the journal wrote it.
_DECISION_FIELDS: Final = DECISION_COLUMNS
_OUTCOME_FIELDS: Final = (
    "ended_at",
    "hangup_cause",
    "disposition",
    "answered",
    "ring_time_s",
    "duration_s",
    "billsec",
)
#: Keys of every dict :meth:`Journal.trace` returns, and the CSV header, in order.
TRACE_COLUMNS: Final = _DECISION_FIELDS + _OUTCOME_FIELDS


def _as_datetime(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("trace times must carry a time zone")
        return value
    return datetime.fromtimestamp(value, tz=UTC)


def build_trace_query(
    *,
    numbers: Iterable[str] = (),
    uuid: str | None = None,
    trunk: str | None = None,
    customer: str | None = None,
    since: datetime | float | None = None,
    until: datetime | float | None = None,
    limit: int = 1000,
) -> tuple[str, list[object]]:
    """SQL and arguments for a trace; ``since`` is inclusive, ``until`` exclusive."""
    if not 1 <= limit <= MAX_TRACE_LIMIT:
        raise ValueError(f"limit must be within 1..{MAX_TRACE_LIMIT}")
    where: list[str] = []
    args: list[object] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    wanted = sorted(set(numbers))
    if wanted:
        p = arg(wanted)
        where.append(f"(d.from_norm = ANY({p}) OR d.pai_norm = ANY({p}) OR d.callee = ANY({p}))")
    if uuid is not None:
        where.append(f"d.uuid = {arg(uuid)}")
    if trunk is not None:
        where.append(f"d.trunk = {arg(trunk)}")
    if customer is not None:
        where.append(f"d.customer = {arg(customer)}")
    if since is not None:
        where.append(f"d.decided_at >= {arg(_as_datetime(since))}")
    if until is not None:
        where.append(f"d.decided_at < {arg(_as_datetime(until))}")
    decision_cols = ", ".join(f"d.{c}" for c in _DECISION_FIELDS)
    outcome_cols = ", ".join(f"o.{c}" for c in _OUTCOME_FIELDS)
    sql = f"""
        SELECT {decision_cols}, {outcome_cols}
        FROM journal_decision d
        LEFT JOIN LATERAL (
            SELECT {", ".join(_OUTCOME_FIELDS)}
            FROM journal_outcome
            WHERE uuid = d.uuid AND switch = d.switch
              AND ended_at >= d.decided_at - interval '1 hour'
              AND ended_at < d.decided_at + interval '2 days'
            ORDER BY ended_at
            LIMIT 1
        ) o ON true
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY d.decided_at DESC, d.uuid
        LIMIT {arg(limit)}
    """
    return sql, args


def trace_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """A database record → the plain dict :meth:`Journal.trace` returns."""
    row = {name: record[name] for name in TRACE_COLUMNS}
    if isinstance(row["trail"], str):
        row["trail"] = json.loads(row["trail"])
    if row["shadow_hits"] is not None:
        row["shadow_hits"] = list(row["shadow_hits"])
    return row


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Write trace rows as CSV (header = :data:`TRACE_COLUMNS`); return the rows written.

    Times are ISO 8601 with offset; the trail and shadow hits are JSON in one cell.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRACE_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in TRACE_COLUMNS])
        count += 1
    return count

"""The quarterly report of the campaign (MISSION item 16): HTML with inline SVG charts,
and the same figures as CSV.

Figures for one quarter (in the desk's time zone, Asia/Shanghai by default): calls
screened, blocked and warned; blocks by rule, trunk, customer and industry (the
ledger's industry, else ``unknown``); complaints received and answered (on time or
late); the top offending caller IDs and customers; and the weekly trend. The HTML
is one self-contained file (no script, no CDN): it opens anywhere, and prints.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from fs_plugin.journal.ledger import Ledger

__all__ = ["QuarterReport", "build_report", "parse_quarter", "write_csv", "write_html"]

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
#: Rows per ranking: a report page, not an export (trace exports every call).
TOP_N: Final = 10


def parse_quarter(text: str, timezone: str = "Asia/Shanghai") -> tuple[dt.datetime, dt.datetime]:
    """``2026Q4`` → [2026-10-01, 2027-01-01) as zone-aware datetimes."""
    m = _QUARTER.match(text.strip().upper())
    if m is None:
        raise ValueError("a quarter is written YYYYQn, e.g. 2026Q4")
    year, q = int(m.group(1)), int(m.group(2))
    tz = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime(year, 3 * q - 2, 1, tzinfo=tz)
    end = dt.datetime(year + 1, 1, 1, tzinfo=tz) if q == 4 else dt.datetime(
        year, 3 * q + 1, 1, tzinfo=tz)
    return start, end


Ranking = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class QuarterReport:
    quarter: str
    start: dt.datetime
    end: dt.datetime
    totals: dict[str, int]
    blocks_by_rule: Ranking
    blocks_by_trunk: Ranking
    blocks_by_customer: Ranking
    blocks_by_industry: Ranking
    complaints: dict[str, int]
    complaints_by_category: Ranking
    top_callers: Ranking
    top_violators: Ranking
    #: (week start date, screened, blocked)
    weekly: tuple[tuple[str, int, int], ...] = field(default=())


async def _ranking(conn: Any, sql: str, *args: object) -> Ranking:
    return tuple((str(r[0]) if r[0] is not None else "(none)", int(r[1]))
                 for r in await conn.fetch(sql, *args))


async def build_report(ledger: Ledger, quarter: str, *, timezone: str = "Asia/Shanghai",
                       now: dt.datetime | None = None) -> QuarterReport:
    """The figures of one quarter. A quarter still running is reported up to ``now``
    (default: the wall clock): a ticket is overdue only once its due time has passed."""
    start, end = parse_quarter(quarter, timezone)
    as_of = min(end, now or dt.datetime.now(dt.UTC))
    blocks = "FROM journal_decision WHERE decided_at >= $1 AND decided_at < $2 " \
             "AND verdict = 'block'"
    async with ledger.connection() as conn:
        t = await conn.fetchrow(
            "SELECT count(*) AS screened, "
            "count(*) FILTER (WHERE verdict = 'block') AS blocked, "
            "count(*) FILTER (WHERE verdict = 'warn') AS warned, "
            "count(*) FILTER (WHERE verdict = 'pass') AS passed "
            "FROM journal_decision WHERE decided_at >= $1 AND decided_at < $2", start, end)
        by_rule = await _ranking(conn, f"SELECT rule, count(*) {blocks} GROUP BY 1 "
                                       "ORDER BY 2 DESC, 1", start, end)
        by_trunk = await _ranking(conn, f"SELECT trunk, count(*) {blocks} GROUP BY 1 "
                                        f"ORDER BY 2 DESC, 1 LIMIT {TOP_N}", start, end)
        by_customer = await _ranking(conn, f"SELECT customer, count(*) {blocks} GROUP BY 1 "
                                           f"ORDER BY 2 DESC, 1 LIMIT {TOP_N}", start, end)
        by_industry = await _ranking(
            conn,
            "SELECT COALESCE(c.industry, 'unknown'), count(*) FROM journal_decision d "
            "LEFT JOIN ledger_customer c ON c.id = d.customer "
            "WHERE d.decided_at >= $1 AND d.decided_at < $2 AND d.verdict = 'block' "
            "GROUP BY 1 ORDER BY 2 DESC, 1", start, end)
        callers = await _ranking(
            conn, f"SELECT COALESCE(pai_norm, from_norm), count(*) {blocks} GROUP BY 1 "
                  f"ORDER BY 2 DESC, 1 LIMIT {TOP_N}", start, end)
        c = await conn.fetchrow(
            "SELECT count(*) AS received, "
            "count(*) FILTER (WHERE answered_at < $3) AS answered, "
            "count(*) FILTER (WHERE answered_at < $3 AND answered_at <= due_at) "
            "AS answered_on_time, "
            "count(*) FILTER (WHERE answered_at < $3 AND answered_at > due_at) "
            "AS answered_late, "
            "count(*) FILTER (WHERE (answered_at IS NULL OR answered_at >= $3) "
            "AND due_at < $3) AS overdue "
            "FROM complaint WHERE received_at >= $1 AND received_at < $2", start, end, as_of)
        by_category = await _ranking(
            conn, "SELECT category, count(*) FROM complaint WHERE received_at >= $1 "
                  "AND received_at < $2 GROUP BY 1 ORDER BY 2 DESC, 1", start, end)
        violators = await _ranking(
            conn, "SELECT customer, count(*) FROM ledger_credit WHERE kind = 'violation' "
                  f"AND recorded_at >= $1 AND recorded_at < $2 GROUP BY 1 ORDER BY 2 DESC, 1 "
                  f"LIMIT {TOP_N}", start, end)
        # Every week (Monday start) from the quarter's first to the one holding
        # ``as_of``, quiet weeks included: an evenly spaced axis must not skip any.
        weeks = await conn.fetch(
            """
            WITH w AS (
                SELECT generate_series(date_trunc('week', $1 AT TIME ZONE $3),
                                       ($4 AT TIME ZONE $3) - interval '1 microsecond',
                                       interval '1 week')::date AS week),
            d AS (
                SELECT date_trunc('week', decided_at AT TIME ZONE $3)::date AS week,
                       count(*) AS screened,
                       count(*) FILTER (WHERE verdict = 'block') AS blocked
                FROM journal_decision WHERE decided_at >= $1 AND decided_at < $2
                GROUP BY 1)
            SELECT w.week, COALESCE(d.screened, 0) AS screened,
                   COALESCE(d.blocked, 0) AS blocked
            FROM w LEFT JOIN d USING (week) ORDER BY 1
            """, start, end, timezone, max(as_of, start + dt.timedelta(microseconds=1)))
    return QuarterReport(
        quarter=quarter.upper(), start=start, end=end,
        totals={k: int(t[k]) for k in ("screened", "blocked", "warned", "passed")},
        blocks_by_rule=by_rule, blocks_by_trunk=by_trunk, blocks_by_customer=by_customer,
        blocks_by_industry=by_industry,
        complaints={k: int(c[k]) for k in ("received", "answered", "answered_on_time",
                                           "answered_late", "overdue")},
        complaints_by_category=by_category, top_callers=callers, top_violators=violators,
        weekly=tuple((r["week"].isoformat(), int(r["screened"]), int(r["blocked"]))
                     for r in weeks),
    )


def write_csv(report: QuarterReport, out: IO[str]) -> int:
    """Every figure as one row ``section,key,value`` (plus ``weekly`` rows with two values)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("section", "key", "value", "value2"))
    n = 0

    def row(*cells: object) -> None:
        nonlocal n
        w.writerow(cells)
        n += 1

    row("quarter", report.quarter, report.start.isoformat(), report.end.isoformat())
    for k, v in report.totals.items():
        row("totals", k, v, "")
    for k, v in report.complaints.items():
        row("complaints", k, v, "")
    sections: Sequence[tuple[str, Ranking]] = (
        ("blocks_by_rule", report.blocks_by_rule),
        ("blocks_by_trunk", report.blocks_by_trunk),
        ("blocks_by_customer", report.blocks_by_customer),
        ("blocks_by_industry", report.blocks_by_industry),
        ("complaints_by_category", report.complaints_by_category),
        ("top_callers", report.top_callers),
        ("top_violators", report.top_violators),
    )
    for name, ranking in sections:
        for k, v in ranking:
            row(name, k, v, "")
    for week, screened, blocked in report.weekly:
        row("weekly", week, screened, blocked)
    return n


_PALETTE = ("#c0392b", "#2471a3", "#1e8449", "#b9770e", "#7d3c98", "#148f77")


def _bars(title: str, ranking: Ranking, color: str) -> str:
    """A horizontal bar chart as inline SVG."""
    e = html.escape
    if not ranking:
        return f'<section><h2>{e(title)}</h2><p class="none">none in this quarter</p></section>'
    top = max(v for _, v in ranking) or 1
    row_h, label_w, bar_w = 26, 230, 420
    height = row_h * len(ranking) + 10
    parts = [f'<svg role="img" aria-label="{e(title)}" width="{label_w + bar_w + 80}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg">']
    for i, (key, value) in enumerate(ranking):
        y = 5 + i * row_h
        w = max(1, round(bar_w * value / top))
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">{e(key[:34])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" '
            f'fill="{color}"/><text x="{label_w + w + 6}" y="{y + 17}">{value:,}</text>')
    parts.append("</svg>")
    return f"<section><h2>{e(title)}</h2>{''.join(parts)}</section>"


def _trend(weekly: tuple[tuple[str, int, int], ...]) -> str:
    """Screened and blocked per week as two polylines with a legend."""
    title = "Weekly trend: screened and blocked"
    if not weekly:
        return f'<section><h2>{title}</h2><p class="none">no calls in this quarter</p></section>'
    w, h, left, bottom, top_pad = 760, 260, 60, 40, 20
    top = max(s for _, s, _ in weekly) or 1
    n = len(weekly)

    def x(i: int) -> float:
        return left + (w - left - 20) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: int) -> float:
        return h - bottom - (h - bottom - top_pad) * v / top

    parts = [f'<svg role="img" aria-label="{title}" width="{w}" height="{h}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" '
             'stroke="#888"/>',
             f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{h - bottom}" stroke="#888"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{top:,}</text>',
             f'<text x="{left - 6}" y="{h - bottom}" text-anchor="end">0</text>']
    series = (([s for _, s, _ in weekly], "#2471a3", "screened"),
              ([b for _, _, b in weekly], "#c0392b", "blocked"))
    for k, (values, color, name) in enumerate(series):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                     'stroke-width="2.5"/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{color}"/>')
        ly = top_pad + 18 * k
        parts.append(f'<rect x="{left + 12}" y="{ly}" width="12" height="12" fill="{color}"/>'
                     f'<text x="{left + 30}" y="{ly + 11}">{name}</text>')
    step = max(1, n // 7)
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 18}" text-anchor="middle">'
                     f'{weekly[i][0][5:]}</text>')
    parts.append("</svg>")
    return f"<section><h2>{title}</h2>{''.join(parts)}</section>"


def write_html(report: QuarterReport, out: IO[str]) -> None:
    e = html.escape
    t, c = report.totals, report.complaints
    tiles = [("calls screened", t["screened"]), ("blocked", t["blocked"]),
             ("warned", t["warned"]), ("complaints received", c["received"]),
             ("complaints answered", c["answered"]), ("answered on time", c["answered_on_time"]),
             ("answered late", c["answered_late"]),
             ("overdue (unanswered past due)", c["overdue"])]
    tile_html = "".join(f'<div class="tile"><b>{v:,}</b><span>{e(k)}</span></div>'
                        for k, v in tiles)
    charts = [
        _trend(report.weekly),
        _bars("Blocks by rule", report.blocks_by_rule, _PALETTE[0]),
        _bars("Blocks by industry", report.blocks_by_industry, _PALETTE[4]),
        _bars(f"Blocks by trunk (top {TOP_N})", report.blocks_by_trunk, _PALETTE[1]),
        _bars(f"Blocks by customer (top {TOP_N})", report.blocks_by_customer, _PALETTE[2]),
        _bars("Complaints by category", report.complaints_by_category, _PALETTE[3]),
        _bars(f"Top offending caller IDs (blocks, top {TOP_N})", report.top_callers,
              _PALETTE[0]),
        _bars(f"Top offending customers (violations, top {TOP_N})", report.top_violators,
              _PALETTE[5]),
    ]
    period = f"{report.start:%Y-%m-%d} – {(report.end - dt.timedelta(days=1)):%Y-%m-%d}"
    out.write(f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>Nuisance-call screening report {e(report.quarter)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 4px; }} .period {{ color: #666; margin-top: 0; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }}
.tile {{ border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 120px; }}
.tile b {{ display: block; font-size: 24px; }} .tile span {{ color: #666; font-size: 13px; }}
section {{ margin: 18px 0; }} h2 {{ font-size: 17px; margin: 8px 0; }}
svg text {{ font-size: 12px; fill: #333; }} .none {{ color: #888; }}
</style></head><body>
<h1>骚扰电话综合整治 · 季度报告 / Nuisance-call quarterly report {e(report.quarter)}</h1>
<p class="period">{e(period)} ({e(str(report.start.tzinfo))})</p>
<div class="tiles">{tile_html}</div>
{"".join(charts)}
</body></html>
""")

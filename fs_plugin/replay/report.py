"""Replay reports: a terminal summary, one CSV row per call, an HTML page with SVG charts.

:class:`Summary` aggregates :class:`~fs_plugin.replay.evaluate.CallRecord` values as
they stream by (memory grows with rules, trunks, distinct blocked callers and the
seconds the traces span — never with the number of calls); :class:`CsvSink` writes
each record as it comes. The HTML is one self-contained file: charts are inline SVG
drawn here, so it opens offline with no script, CDN or build step.
"""

from __future__ import annotations

import csv
import html
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fs_plugin.screening.model import Verdict

if TYPE_CHECKING:
    from fs_plugin.replay.evaluate import CallRecord

__all__ = [
    "CSV_COLUMNS",
    "CsvSink",
    "FileReport",
    "Summary",
    "render_html",
    "render_text",
    "write_html",
]

CSV_COLUMNS = (
    "time", "epoch", "call_id", "from", "pai", "callee", "trunk", "verdict", "rule",
    "cause", "sip_status", "ring_time_s", "answered", "final_status", "shadow", "where",
)

#: Distinct blocked callers counted for the "top blocked" table. A flood of random
#: spoofed caller IDs would otherwise grow the counter with every call; past the bound
#: new numbers are no longer counted (the table is about the repeat offenders).
MAX_TRACKED_CALLERS = 200_000

_VERDICTS = (Verdict.PASS, Verdict.WARN, Verdict.BLOCK)
_COLOURS = {Verdict.PASS: "#4caf50", Verdict.WARN: "#ff9800", Verdict.BLOCK: "#e53935"}
#: Bars of the timeline chart (the traces' span is cut into at most this many buckets).
_TIMELINE_BARS = 60


@dataclass(slots=True)
class FileReport:
    """How one trace file went: read, evaluated, or named and skipped."""

    path: str
    format: str = ""
    frames: int = 0
    messages: int = 0
    calls: int = 0
    skip_counts: Counter[str] = field(default_factory=Counter)
    #: The first few skips with their location ("file#frame": reason detail).
    skip_examples: list[str] = field(default_factory=list)
    #: Why the whole file could not be read (None when it was).
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class Summary:
    calls: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    #: (rule, verdict) of the decisions: the rule that set each verdict.
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)
    shadow: Counter[str] = field(default_factory=Counter)
    trunks: dict[str, Counter[str]] = field(default_factory=dict)
    blocked_callers: Counter[str] = field(default_factory=Counter)
    #: Per whole second of trace time: calls by verdict.
    seconds: dict[int, Counter[str]] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: From the evaluators: pattern flags raised (wangiri/bombing thresholds crossed),
    #: events run out of time order (a capture whose clock goes back), batches the
    #: counter store refused.
    flags: int = 0
    late_events: int = 0
    store_errors: int = 0

    def add(self, record: CallRecord) -> None:
        verdict = record.verdict.value
        self.calls += 1
        self.verdicts[verdict] += 1
        self.rules[(record.rule or "-", verdict)] += 1
        for rule in record.shadow:
            self.shadow[rule] += 1
        trunk = record.trunk or "(no trunk)"
        per_trunk = self.trunks.get(trunk)
        if per_trunk is None:
            per_trunk = self.trunks[trunk] = Counter()
        per_trunk[verdict] += 1
        if record.verdict is Verdict.BLOCK and (
            record.from_user in self.blocked_callers
            or len(self.blocked_callers) < MAX_TRACKED_CALLERS
        ):
            self.blocked_callers[record.from_user or "(empty)"] += 1
        second = int(record.time)
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = Counter()
        bucket[verdict] += 1

    def timeline(self, bars: int = _TIMELINE_BARS) -> list[tuple[float, Counter[str]]]:
        """(bucket start, verdict counts) over the traces' span, at most ``bars`` buckets.

        Seconds with no call make no bucket, so traces years apart (or a capture whose
        clock jumps) give a few sparse bars, not a million empty ones.
        """
        if not self.seconds:
            return []
        first, last = min(self.seconds), max(self.seconds)
        width = max(1, -(-(last - first + 1) // bars))
        out: dict[int, Counter[str]] = {}
        for second, counts in self.seconds.items():
            start = first + (second - first) // width * width
            out.setdefault(start, Counter()).update(counts)
        return [(float(k), out[k]) for k in sorted(out)]


class CsvSink:
    """Writes one row per evaluated call (``CSV_COLUMNS``), as the records come."""

    def __init__(self, handle: IO[str]) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(CSV_COLUMNS)

    def add(self, r: CallRecord) -> None:
        self._writer.writerow((
            _iso(r.time), f"{r.time:.6f}", r.call_id, r.from_user, r.pai or "", r.callee,
            r.trunk or "", r.verdict.value, r.rule or "", r.cause or "",
            r.sip_status if r.sip_status is not None else "",
            f"{r.ring_time_s:.3f}" if r.ring_time_s is not None else "",
            "yes" if r.answered else "no",
            r.final_status if r.final_status is not None else "",
            " ".join(r.shadow), r.where,
        ))


def _iso(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return ""


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def _table(head: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> list[str]:
    cells = [tuple(str(c) for c in head)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = []
    for n, row in enumerate(cells):
        # Counts right-aligned; the first column is always a name (or a caller number).
        parts = [c.rjust(w) if i and n and c[:1].isdigit() else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def render_text(summary: Summary, *, top: int = 10) -> str:
    """The terminal report: files, verdicts, rules, trunks, top blocked callers."""
    out: list[str] = []
    out.append("Traces")
    file_rows = []
    for f in summary.files:
        if f.error is not None:
            file_rows.append((f.path, "-", "-", "-", f"SKIPPED: {f.error}"))
            continue
        skips = ", ".join(f"{k}×{v}" for k, v in sorted(f.skip_counts.items())) or "-"
        file_rows.append((f.path, f.format, str(f.messages), str(f.calls), skips))
    out += _table(("file", "format", "messages", "calls", "skipped"), file_rows)
    total = summary.calls
    rate = total / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    out.append("")
    out.append(f"{total} calls evaluated in {summary.elapsed_s:.2f} s ({rate:,.0f} calls/s); "
               f"pattern flags raised: {summary.flags}")
    if summary.late_events or summary.store_errors:
        out.append(f"events out of time order: {summary.late_events}; counter store "
                   f"refusals: {summary.store_errors}")
    out.append("")
    out.append("Verdicts")
    out += _table(("verdict", "calls", "share"),
                  ((v.value, summary.verdicts[v.value], _pct(summary.verdicts[v.value], total))
                   for v in _VERDICTS))
    out.append("")
    out.append("Rules (the rule that set each verdict)")
    rule_rows = sorted(summary.rules.items(), key=lambda kv: (-kv[1], kv[0]))
    out += _table(("rule", "verdict", "calls", "share"),
                  ((rule, verdict, n, _pct(n, total)) for (rule, verdict), n in rule_rows))
    if summary.shadow:
        out.append("")
        out.append("Shadow hits (would have fired)")
        out += _table(("rule", "calls"), summary.shadow.most_common())
    out.append("")
    out.append("Trunks")
    trunk_rows = sorted(summary.trunks.items(), key=lambda kv: -sum(kv[1].values()))
    out += _table(("trunk", "calls", "pass", "warn", "block"),
                  ((t, sum(c.values()), c["pass"], c["warn"], c["block"])
                   for t, c in trunk_rows))
    out.append("")
    out.append(f"Top {top} blocked callers")
    out += _table(("caller", "blocked"), summary.blocked_callers.most_common(top))
    return "\n".join(out) + "\n"


# -- HTML ---------------------------------------------------------------------------


def _svg_hbars(items: list[tuple[str, list[tuple[int, str]]]], *, width: int = 640) -> str:
    """Horizontal stacked bars: (label, [(value, colour), …]) per row."""
    if not items:
        return "<p>No data.</p>"
    label_w, row_h, pad = 230, 22, 4
    biggest = max(sum(v for v, _ in parts) for _, parts in items) or 1
    scale = (width - label_w - 60) / biggest
    height = len(items) * row_h + pad * 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" font-family="sans-serif" font-size="12">']
    for i, (label, parts) in enumerate(items):
        y = pad + i * row_h
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
                   f'{html.escape(label[:34])}</text>')
        x = float(label_w)
        for value, colour in parts:
            w = value * scale
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" '
                           f'height="{row_h - 6}" fill="{colour}"/>')
            x += w
        total = sum(v for v, _ in parts)
        out.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{total}</text>')
    out.append("</svg>")
    return "".join(out)


def _svg_timeline(buckets: list[tuple[float, Counter[str]]], *, width: int = 900) -> str:
    """Stacked columns of calls per time bucket, coloured by verdict."""
    if not buckets:
        return "<p>No data.</p>"
    height, left, bottom, top = 260, 50, 40, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    biggest = max(sum(c.values()) for _, c in buckets) or 1
    slot = plot_w / len(buckets)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" font-family="sans-serif" font-size="11">',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
           'stroke="#555"/>',
           f'<text x="{left - 4}" y="{top + 10}" text-anchor="end">{biggest}</text>',
           f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, (start, counts) in enumerate(buckets):
        x = left + i * slot
        y = float(top + plot_h)
        for verdict in _VERDICTS:
            n = counts[verdict.value]
            if not n:
                continue
            h = n / biggest * plot_h
            y -= h
            out.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                       f'height="{h:.1f}" fill="{_COLOURS[verdict]}">'
                       f'<title>{_iso(start)} {verdict.value}: {n}</title></rect>')
    for i in (0, len(buckets) - 1):
        anchor = "start" if i == 0 else "end"
        x = left + (i * slot if i == 0 else (i + 1) * slot)
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="{anchor}">'
                   f'{html.escape(_iso(buckets[i][0]))}</text>')
    out.append("</svg>")
    return "".join(out)


def _html_table(head: tuple[str, ...], rows: Iterable[tuple[object, ...]]) -> str:
    out = ["<table><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


_STYLE = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}
th{background:#f2f2f2} h2{margin-top:28px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px}
"""


def render_html(summary: Summary, *, title: str = "fs-plugin replay", top: int = 20) -> str:
    """A self-contained HTML report (inline CSS and SVG, nothing fetched)."""
    total = summary.calls
    legend = "".join(f'<span style="background:{_COLOURS[v]}"></span>{v.value}'
                     for v in _VERDICTS)
    rule_totals: Counter[str] = Counter()
    rule_verdict: dict[str, str] = {}
    for (rule, verdict), n in summary.rules.items():
        rule_totals[rule] += n
        rule_verdict[rule] = verdict
    rule_bars = [(rule if rule != "-" else "(no rule: pass)",
                  [(n, _COLOURS[Verdict(rule_verdict[rule])])])
                 for rule, n in rule_totals.most_common(25)]
    trunk_bars = [(trunk, [(c[v.value], _COLOURS[v]) for v in _VERDICTS])
                  for trunk, c in sorted(summary.trunks.items(),
                                         key=lambda kv: -sum(kv[1].values()))[:25]]
    files = []
    for f in summary.files:
        skips = ", ".join(f"{k}×{v}" for k, v in sorted(f.skip_counts.items()))
        files.append((f.path, f.format or "-", f.messages, f.calls,
                      f"SKIPPED: {f.error}" if f.error else (skips or "-")))
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{total} calls evaluated in {summary.elapsed_s:.2f} s.</p>",
        _html_table(("verdict", "calls", "share"),
                    ((v.value, summary.verdicts[v.value], _pct(summary.verdicts[v.value], total))
                     for v in _VERDICTS)),
        f'<p class="legend">{legend}</p>',
        "<h2>Calls over trace time</h2>", _svg_timeline(summary.timeline()),
        "<h2>Decisions by rule</h2>", _svg_hbars(rule_bars),
        "<h2>Verdicts by trunk</h2>", _svg_hbars(trunk_bars),
    ]
    if summary.shadow:
        parts += ["<h2>Shadow hits</h2>",
                  _html_table(("rule", "calls"), summary.shadow.most_common())]
    parts += [
        f"<h2>Top {top} blocked callers</h2>",
        _html_table(("caller", "blocked"), summary.blocked_callers.most_common(top)),
        "<h2>Traces</h2>",
        _html_table(("file", "format", "messages", "calls", "skipped"), files),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(path: Path, summary: Summary, *, title: str = "fs-plugin replay") -> None:
    path.write_text(render_html(summary, title=title), encoding="utf-8")

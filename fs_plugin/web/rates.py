"""Per-minute tallies of decisions for the NOC page's rates and charts.

One bucket per minute, by verdict (a day of them: 1440 small dicts), plus, for the
last hour only, counts by trunk and by rule so the page can show who is being
blocked *now*. Older buckets are dropped as minutes pass, so memory is bounded by
the window and the policy's trunk and rule ids.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fs_plugin.transport.outbound import DecisionRecord

__all__ = ["RateBook"]

_DAY_MIN = 1440
_DETAIL_MIN = 60
_VERDICTS = ("pass", "warn", "block")


@dataclass
class _Bucket:
    verdicts: Counter[str] = field(default_factory=Counter)
    #: (trunk, verdict) and (rule, verdict); kept for the last hour only.
    trunks: Counter[tuple[str, str]] | None = field(default_factory=Counter)
    rules: Counter[tuple[str, str]] | None = field(default_factory=Counter)
    shadow: Counter[str] | None = field(default_factory=Counter)


class RateBook:
    def __init__(self) -> None:
        self._buckets: dict[int, _Bucket] = {}
        self._newest = 0

    def add(self, record: DecisionRecord) -> None:
        minute = int(record.decided_at // 60)
        bucket = self._buckets.get(minute)
        if bucket is None:
            bucket = self._buckets[minute] = _Bucket()
            if minute > self._newest:
                self._newest = minute
                self._prune(minute)
        d = record.decision
        verdict = d.verdict.value
        bucket.verdicts[verdict] += 1
        if bucket.trunks is not None and bucket.rules is not None and bucket.shadow is not None:
            bucket.trunks[(d.trunk or "unknown", verdict)] += 1
            if d.rule:
                bucket.rules[(d.rule, verdict)] += 1
            for hit in d.shadow_hits:
                bucket.shadow[hit.rule] += 1
                bucket.verdicts["shadow"] += 1

    def _prune(self, minute: int) -> None:
        for m in [m for m in self._buckets if m <= minute - _DAY_MIN]:
            del self._buckets[m]
        for m, b in self._buckets.items():
            if m <= minute - _DETAIL_MIN and b.trunks is not None:
                b.trunks = b.rules = b.shadow = None

    def rates(self, now: float, window_s: int) -> dict[str, Any]:
        """Counts and calls-per-minute by trunk and by rule over the last ``window_s``."""
        first = int((now - window_s) // 60) + 1
        last = int(now // 60)
        trunks: dict[str, Counter[str]] = {}
        rules: dict[str, Counter[str]] = {}
        shadow: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for minute in range(first, last + 1):
            b = self._buckets.get(minute)
            if b is None:
                continue
            totals.update(b.verdicts)
            for (trunk, verdict), n in (b.trunks or {}).items():
                trunks.setdefault(trunk, Counter())[verdict] += n
            for (rule, verdict), n in (b.rules or {}).items():
                rules.setdefault(rule, Counter())[verdict] += n
            shadow.update(b.shadow or {})
        minutes = max(1.0, window_s / 60)

        def row(c: Counter[str]) -> dict[str, Any]:
            total = sum(c[v] for v in _VERDICTS)
            return {**{v: c[v] for v in _VERDICTS}, "total": total,
                    "per_min": round(total / minutes, 2),
                    "block_share": round(c["block"] / total, 3) if total else 0.0}

        return {
            "window_s": window_s,
            "totals": row(totals),
            "by_trunk": {t: row(c) for t, c in sorted(trunks.items())},
            "by_rule": {r: row(c) for r, c in sorted(rules.items())},
            "shadow": dict(sorted(shadow.items())),
        }

    def series(self, now: float, span: str) -> dict[str, Any]:
        """Points for the charts: an hour by minute, or a day by 15 minutes."""
        step, points = (1, 60) if span == "hour" else (15, 96)
        last = int(now // 60)
        start = last - step * points + 1
        out = []
        for i in range(points):
            c: Counter[str] = Counter()
            for minute in range(start + i * step, start + (i + 1) * step):
                b = self._buckets.get(minute)
                if b is not None:
                    c.update(b.verdicts)
            out.append({"t": (start + i * step) * 60, **{v: c[v] for v in _VERDICTS},
                        "shadow": c["shadow"]})
        return {"span": span, "step_s": step * 60, "points": out}

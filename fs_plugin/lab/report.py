"""Printing lab results: a table an engineer reads at a glance, or JSON lines."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Sequence

from fs_plugin.lab.switch import CallResult

__all__ = ["print_results", "results_table"]


def _width(text: str) -> int:
    # CJK labels take two terminal cells.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def results_table(results: Sequence[CallResult]) -> str:
    head = ("#", "call", "from", "to", "trunk", "verdict", "SIP", "rule", "label / reason")
    rows = [head]
    for i, r in enumerate(results, 1):
        detail = r.label or r.reason or (f"fallback: {r.fallback}" if r.fallback else "")
        rows.append((
            str(i), r.call.name, r.call.from_user, r.call.to, r.call.trunk or "-", r.verdict,
            str(r.sip_status), r.rule or "-", detail[:60],
        ))
    widths = [max(_width(row[c]) for row in rows) for c in range(len(head))]
    lines = ["  ".join(_pad(cell, widths[c]) for c, cell in enumerate(row)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_results(
    results: Sequence[CallResult], *, as_json: bool = False, outcomes: int | None = None,
    policy: str | None = None,
) -> int:
    """Print the results; return the exit status (1 when an expectation was not met)."""
    failures = [(i, r) for i, r in enumerate(results, 1) if r.expectation_errors]
    if as_json:
        for r in results:
            print(json.dumps({
                "call": r.call.name, "from": r.call.from_user, "to": r.call.to,
                "trunk": r.call.trunk, "verdict": r.verdict, "sip_status": r.sip_status,
                "cause": r.cause, "rule": r.rule, "reason": r.reason, "label": r.label,
                "fallback": r.fallback, "post_dial_delay_ms": round(r.post_dial_delay_ms, 3),
                "expectation_errors": r.expectation_errors,
            }, ensure_ascii=False))
        return 1 if failures else 0
    print(results_table(results))
    verdicts = Counter(r.verdict for r in results)
    pdd = sorted(r.post_dial_delay_ms for r in results)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(verdicts.items()))
    print()
    print(f"{len(results)} calls — {summary}")
    decision = sorted(r.decision_ms for r in results if r.decision_ms is not None)
    if decision:
        print(f"decision latency (channel data → verdict on the wire): median "
              f"{decision[len(decision) // 2]:.2f} ms, max {decision[-1]:.2f} ms")
    if pdd:
        print(f"whole socket exchange per call (connect to close, {len(pdd)} calls at once "
              f"in one process with the lab switch): median {pdd[len(pdd) // 2]:.1f} ms")
    if outcomes is not None:
        print(f"outcomes received on the event socket: {outcomes}")
    if policy:
        print(f"policy version: {policy}")
    for i, r in failures:
        print(f"MISMATCH call #{i} ({r.call.name}): {'; '.join(r.expectation_errors)}")
    return 1 if failures else 0

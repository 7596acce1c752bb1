"""``fs-plugin policy diff OLD NEW``: what a policy change would do to real calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from fs_plugin.screening.model import CallFacts

__all__ = ["register"]


def _zoned_time(text: str) -> datetime:
    """argparse type of --since/--until: a bad one is a usage error, not a traceback."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} carries no time zone (+08:00, Z)")
    return parsed


def register(sub: Any) -> None:
    policy = sub.add_parser("policy", help="policy life cycle: diff two policies over real calls")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    diff = psub.add_parser(
        "diff", help="replay journaled calls (or a SIP trace) through OLD and NEW and report "
                     "how many would change verdict, on which trunks, by which rules")
    diff.add_argument("old", type=Path, help="policy directory or file in force")
    diff.add_argument("new", type=Path, help="candidate policy directory or file")
    diff.add_argument("--trace", type=Path, default=None,
                      help="pcap, pcapng or text SIP trace to replay")
    diff.add_argument("--trunk", default=None,
                      help="trunk id for calls of the trace (else matched by source address)")
    diff.add_argument("--journal", default=None, metavar="DSN",
                      help="PostgreSQL DSN of the journal to replay from (instead of --trace)")
    diff.add_argument("--since", default=None, type=_zoned_time,
                      help="journal: ISO time with zone (default: the last 24 hours)")
    diff.add_argument("--until", default=None, type=_zoned_time,
                      help="journal: ISO time with zone")
    diff.add_argument("--limit", type=int, default=100_000, help="journal: most calls")
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=_cmd_diff)


def _trace_calls(path: Path, trunk: str | None) -> Iterator[tuple[CallFacts, float]]:
    from fs_plugin.replay import read_trace

    with read_trace(path) as result:
        for call in result:
            yield call.to_facts(trunk_hint=trunk), call.invite_time


def _row_facts(row: dict[str, Any]) -> tuple[CallFacts, float]:
    at = row.get("decided_at")
    when = at.timestamp() if isinstance(at, datetime) else float(at or 0.0)
    facts = CallFacts(
        uuid=str(row.get("uuid") or ""), from_user=str(row.get("from_raw") or ""),
        destination=str(row.get("callee") or ""), pai=row.get("pai_raw"),
        diversion=row.get("diversion_raw"), caller_id_name=row.get("caller_name"),
        trunk_hint=row.get("trunk"), network_ip=row.get("network_ip"),
        call_id=row.get("sip_call_id"), switch=row.get("switch"),
    )
    return facts, when


async def _journal_calls(args: argparse.Namespace) -> list[tuple[CallFacts, float]]:
    import time

    from fs_plugin.journal import Journal

    since = args.since.timestamp() if args.since else time.time() - 86400
    until = args.until.timestamp() if args.until else None
    with tempfile.TemporaryDirectory(prefix="fsp-diff-") as state:
        journal = await Journal.open(args.journal, state_dir=Path(state), switch="policy-diff")
        try:
            rows = await journal.trace(since=since, until=until, limit=args.limit)
        finally:
            await journal.close()
    return [_row_facts(r) for r in rows]


async def _diff(args: argparse.Namespace) -> int:
    from fs_plugin.policy import load_policy
    from fs_plugin.web.diff import diff_policies

    old, new = load_policy(args.old), load_policy(args.new)
    if args.trace is not None:
        try:
            calls = list(_trace_calls(args.trace, args.trunk))
        except OSError as exc:
            print(f"error: cannot read trace {args.trace}: {exc.strerror}", file=sys.stderr)
            return 1
    elif args.journal is not None:
        calls = await _journal_calls(args)
    else:
        print("error: give --trace FILE or --journal DSN", file=sys.stderr)
        return 2
    report = await diff_policies(old, new, calls)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(report.text())
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from fs_plugin.logs import configure_logging

    # The report goes to stdout (often piped as JSON); logs stay on stderr.
    configure_logging(json=False, level="warning")
    return asyncio.run(_diff(args))

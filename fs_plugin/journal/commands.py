"""The regulator's desk on the command line: ``fs-plugin trace | ledger | complaints | report``.

Every command takes ``--db`` (a PostgreSQL DSN, or ``embedded`` for the server under
``--state-dir``, the same one ``fs-plugin run --journal embedded`` uses; default
``$FSP_JOURNAL_DSN`` or ``embedded``). Handlers return the exit status: 0 done,
1 bad input or database trouble (message on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fs_plugin.errors import ConfigError, StorageError

__all__ = ["register"]

Handler = Callable[[argparse.Namespace, Any], Awaitable[int]]


def _db_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=os.environ.get("FSP_JOURNAL_DSN", "embedded"),
                   help="PostgreSQL DSN, or 'embedded' (default: $FSP_JOURNAL_DSN or embedded)")
    p.add_argument("--state-dir", type=Path, default=Path("state"),
                   help="state directory of the embedded server")


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone: {text!r} (e.g. +08:00)")
    return value


def register(sub: Any) -> None:
    tr = sub.add_parser("trace", help="trace journaled calls (通话溯源); table or CSV")
    _db_args(tr)
    tr.add_argument("--number", help="a number on either side of the call (any common form)")
    tr.add_argument("--uuid")
    tr.add_argument("--trunk")
    tr.add_argument("--customer")
    tr.add_argument("--since", type=_time, help="ISO time with zone, inclusive")
    tr.add_argument("--until", type=_time, help="ISO time with zone, exclusive")
    tr.add_argument("--limit", type=int, default=1000)
    tr.add_argument("--csv", metavar="FILE", help="write CSV to FILE ('-' for stdout)")
    tr.set_defaults(handler=_run(_cmd_trace))

    led = sub.add_parser("ledger", help="the ledger (台账): import, export, query, credit")
    lsub = led.add_subparsers(dest="ledger_command", required=True)
    imp = lsub.add_parser("import", help="import a YAML ledger file or a CSV of one table")
    imp.add_argument("file", type=Path)
    imp.add_argument("--kind", choices=("customers", "trunks", "numbers", "contracts"),
                     help="the table of a CSV file")
    imp.add_argument("--replace", action="store_true",
                     help="delete the rows the file does not have")
    imp.set_defaults(handler=_run(_cmd_import))
    exp = lsub.add_parser("export", help="export the ledger as YAML, or one table as CSV")
    exp.add_argument("--kind", choices=("customers", "trunks", "numbers", "contracts"))
    exp.add_argument("-o", "--out", default="-", help="file ('-' for stdout)")
    exp.set_defaults(handler=_run(_cmd_export))
    show = lsub.add_parser("show", help="one customer with trunks, numbers, contract, credit")
    show.add_argument("customer")
    show.set_defaults(handler=_run(_cmd_show))
    num = lsub.add_parser("number", help="who holds a business number, for what")
    num.add_argument("number")
    num.set_defaults(handler=_run(_cmd_number))
    cr = lsub.add_parser("credit", help="credit records and joint punishment")
    cr.add_argument("action", choices=("violation", "blacklist", "lift", "history", "scan"))
    cr.add_argument("customer", nargs="?")
    cr.add_argument("--note", default="")
    cr.add_argument("--rule", default="cid.not_allowed", help="scan: the rule counted")
    cr.add_argument("--since", type=_time, help="scan: period start (default: 24 h ago)")
    cr.add_argument("--until", type=_time, help="scan: period end (default: now)")
    cr.add_argument("--threshold", type=int, default=20,
                    help="scan: blocks of one trunk that make a violation")
    cr.add_argument("--blacklist-after", type=int, default=3,
                    help="scan: violations in 90 days that blacklist the customer")
    cr.set_defaults(handler=_run(_cmd_credit))
    for p in (imp, exp, show, num, cr):
        _db_args(p)

    co = sub.add_parser("complaints", help="complaints (12321): intake, tickets, answers")
    csub = co.add_subparsers(dest="complaints_command", required=True)
    add = csub.add_parser("add", help="take one complaint")
    add.add_argument("number", help="the reported number")
    add.add_argument("--category", required=True)
    add.add_argument("--channel", default="12321")
    add.add_argument("--text", default="")
    add.add_argument("--reporter", default="", help="masked on intake")
    add.add_argument("--ref", default=None, help="the hotline's ticket number")
    add.set_defaults(handler=_run(_cmd_c_add))
    cimp = csub.add_parser("import", help="take every complaint of a CSV file")
    cimp.add_argument("file", type=Path)
    cimp.set_defaults(handler=_run(_cmd_c_import))
    lst = csub.add_parser("list", help="tickets, newest first")
    lst.add_argument("--status", choices=("received", "verified", "actioned", "answered"))
    lst.add_argument("--number")
    lst.set_defaults(handler=_run(_cmd_c_list))
    adv = csub.add_parser("advance", help="move a ticket forward (answered needs --answer)")
    adv.add_argument("ticket", type=int)
    adv.add_argument("status", choices=("verified", "actioned", "answered"))
    adv.add_argument("--answer")
    adv.set_defaults(handler=_run(_cmd_c_advance))
    od = csub.add_parser("overdue", help="tickets past their answer date")
    od.set_defaults(handler=_run(_cmd_c_overdue))
    for p in (add, cimp, lst, adv, od):
        _db_args(p)
        p.add_argument("--answer-days", type=int, default=15)
        p.add_argument("--label-threshold", type=int, default=3)

    rep = sub.add_parser("report", help="quarterly report: HTML with charts, and CSV")
    _db_args(rep)
    rep.add_argument("--quarter", required=True, help="e.g. 2026Q4")
    rep.add_argument("--out", type=Path, default=Path("."), help="directory for the files")
    rep.add_argument("--timezone", default="Asia/Shanghai")
    rep.add_argument("--as-of", type=_time, default=None,
                     help="report a running quarter up to this time (default: now)")
    rep.set_defaults(handler=_run(_cmd_report))


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from fs_plugin.logs import configure_logging

        # Warnings and worse, on stderr: stdout carries the answer (a CSV may go there).
        configure_logging(json=False, level="warning", mask=False)
        return asyncio.run(_with_ledger(handler, args))

    return run


async def _with_ledger(handler: Handler, args: argparse.Namespace) -> int:
    from fs_plugin.journal.ledger import Ledger

    try:
        dsn = None if args.db == "embedded" else args.db
        ledger = await Ledger.open(dsn, state_dir=args.state_dir)
        try:
            return await handler(args, ledger)
        finally:
            await ledger.close()
    except ConfigError as exc:
        print(f"error: {exc.location_text()}", file=sys.stderr)
    except KeyError as exc:
        print(f"error: not found: {exc.args[0] if exc.args else ''}", file=sys.stderr)
    except (StorageError, ValueError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        print(f"error: {exc}{cause}", file=sys.stderr)
    return 1


def _out(path: str) -> Any:
    return sys.stdout if path == "-" else open(path, "w", encoding="utf-8", newline="")


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


async def _cmd_trace(args: argparse.Namespace, ledger: Any) -> int:
    from fs_plugin.journal.trace import build_trace_query, trace_row, write_csv
    from fs_plugin.numbering import classify
    from fs_plugin.numbering import user_part as bare

    if not (args.number or args.uuid or args.trunk or args.customer or args.since):
        raise ValueError("give at least one of --number, --uuid, --trunk, --customer, --since")
    numbers: list[str] = []
    if args.number:
        # The journal keeps numbers as the switch normalised them; ask for every form
        # the same number can take (as written, bare user part, national, E.164).
        n = classify(bare(args.number))
        numbers = [f for f in (args.number, bare(args.number), n.national, n.e164,
                               n.e164[1:] if n.e164 else None) if f]
    sql, params = build_trace_query(numbers=numbers, uuid=args.uuid, trunk=args.trunk,
                                    customer=args.customer, since=args.since,
                                    until=args.until, limit=args.limit)
    async with ledger.connection() as conn:
        rows = [trace_row(r) for r in await conn.fetch(sql, *params)]
    if args.csv:
        out = _out(args.csv)
        try:
            count = write_csv(rows, out)
        finally:
            if out is not sys.stdout:
                out.close()
        print(f"{count} calls", file=sys.stderr)
        return 0
    for r in rows:
        outcome = r["hangup_cause"] or "-"
        print(f"{r['decided_at']:%Y-%m-%d %H:%M:%S%z}  {r['switch']:<8} {r['trunk'] or '-':<10} "
              f"{r['from_norm'] or '-':>14} → {r['callee'] or '-':<14} {r['verdict']:<5} "
              f"{r['rule'] or '-':<24} {outcome}  {r['uuid']}")
    print(f"{len(rows)} calls", file=sys.stderr)
    return 0


async def _cmd_import(args: argparse.Namespace, ledger: Any) -> int:
    if args.file.suffix.lower() in (".yaml", ".yml"):
        counts = await ledger.import_yaml(args.file, replace=args.replace)
    else:
        if args.kind is None:
            raise ValueError("a CSV file needs --kind")
        counts = {args.kind: await ledger.import_csv(args.kind, args.file,
                                                     replace=args.replace)}
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


async def _cmd_export(args: argparse.Namespace, ledger: Any) -> int:
    out = _out(args.out)
    try:
        if args.kind is None:
            await ledger.export_yaml(out)
        else:
            await ledger.export_csv(args.kind, out)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


async def _cmd_show(args: argparse.Namespace, ledger: Any) -> int:
    found = await ledger.customer(args.customer)
    if found is None:
        print(f"no customer {args.customer!r} in the ledger", file=sys.stderr)
        return 1
    _print_json(found)
    return 0


async def _cmd_number(args: argparse.Namespace, ledger: Any) -> int:
    _print_json(await ledger.number_owner(args.number))
    return 0


async def _cmd_credit(args: argparse.Namespace, ledger: Any) -> int:
    from dataclasses import asdict

    from fs_plugin.journal.credit import Credit

    credit = Credit(ledger)
    if args.action == "scan":
        until = args.until or dt.datetime.now(dt.UTC)
        since = args.since or until - dt.timedelta(days=1)
        result = await credit.scan(since, until, rule=args.rule, threshold=args.threshold,
                                   blacklist_after=args.blacklist_after)
        _print_json({"violations": [asdict(v) for v in result.violations],
                     "blacklisted": list(result.blacklisted)})
        return 0
    if not args.customer:
        raise ValueError(f"credit {args.action} needs a customer")
    if args.action == "history":
        _print_json([asdict(r) for r in await credit.history(args.customer)])
        return 0
    if not args.note:
        raise ValueError(f"credit {args.action} needs --note (the reason, kept on record)")
    if args.action == "violation":
        rec = await credit.record_violation(args.customer, args.note)
    elif args.action == "blacklist":
        rec = await credit.blacklist(args.customer, args.note)
    else:
        rec = await credit.lift(args.customer, args.note)
    _print_json(asdict(rec))
    return 0


def _desk(args: argparse.Namespace, ledger: Any) -> Any:
    from fs_plugin.journal.complaints import Complaints

    return Complaints(ledger, answer_days=args.answer_days,
                      label_threshold=args.label_threshold)


async def _cmd_c_add(args: argparse.Namespace, ledger: Any) -> int:
    from dataclasses import asdict

    from fs_plugin.journal.complaints import ComplaintIn
    from fs_plugin.policy.catalogue import LabelCategory

    ticket = await _desk(args, ledger).intake(ComplaintIn(
        args.number, LabelCategory(args.category), args.channel, args.text, args.reporter,
        ref=args.ref))
    _print_json(asdict(ticket) if ticket is not None else {"duplicate": args.ref})
    return 0


async def _cmd_c_import(args: argparse.Namespace, ledger: Any) -> int:
    added, known = await _desk(args, ledger).import_csv(args.file)
    print(f"added: {added}, already known: {known}")
    return 0


def _ticket_line(t: Any) -> str:
    return (f"#{t.id:<6} {t.received_at:%Y-%m-%d %H:%M} {t.reported_key:<14} {t.category:<14} "
            f"{t.channel:<8} {t.status:<9} due {t.due_at:%Y-%m-%d}  {t.answer}")


async def _cmd_c_list(args: argparse.Namespace, ledger: Any) -> int:
    for t in await _desk(args, ledger).tickets(status=args.status, number=args.number):
        print(_ticket_line(t))
    return 0


async def _cmd_c_advance(args: argparse.Namespace, ledger: Any) -> int:
    print(_ticket_line(await _desk(args, ledger).advance(args.ticket, args.status,
                                                         answer=args.answer)))
    return 0


async def _cmd_c_overdue(args: argparse.Namespace, ledger: Any) -> int:
    tickets = await _desk(args, ledger).overdue()
    for t in tickets:
        print(_ticket_line(t))
    print(f"{len(tickets)} overdue", file=sys.stderr)
    return 0


async def _cmd_report(args: argparse.Namespace, ledger: Any) -> int:
    from fs_plugin.journal.report import build_report, write_csv, write_html

    report = await build_report(ledger, args.quarter, timezone=args.timezone, now=args.as_of)
    args.out.mkdir(parents=True, exist_ok=True)
    html_path = args.out / f"report-{report.quarter}.html"
    csv_path = args.out / f"report-{report.quarter}.csv"
    with html_path.open("w", encoding="utf-8") as f:
        write_html(report, f)
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        write_csv(report, f)
    print(f"{html_path}\n{csv_path}")
    return 0

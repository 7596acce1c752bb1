"""``fs-plugin trace | ledger | complaints | report`` through the argument parser."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

import asyncpg
import pytest

from fs_plugin.journal import TRACE_COLUMNS, commands


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    commands.register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.handler(args))


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for day in range(7):
            at = dt.datetime(2026, 10, 5, 2, tzinfo=dt.UTC) + dt.timedelta(days=11 * day)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS journal_decision_p{at:%Y%m%d} PARTITION OF "
                f"journal_decision FOR VALUES FROM ('{at.date()}') TO "
                f"('{at.date() + dt.timedelta(days=1)}')")
            rows = []
            for i in range(10 + 5 * day):
                blocked = i % 3 == 0
                rows.append((at + dt.timedelta(seconds=i), f"c-{day}-{i}",
                             "ent-1" if i % 2 else "ent-2", "acme" if i % 2 else "bravo",
                             "block" if blocked else "pass",
                             ("cid.not_allowed" if i % 2 else "contract.hours") if blocked
                             else None, f"1390000{i % 4:04d}", "02088881234"))
            await conn.executemany(
                "INSERT INTO journal_decision (decided_at, switch, uuid, trunk, customer, "
                "verdict, rule, from_norm, callee) VALUES ($1,'sw-a',$2,$3,$4,$5,$6,$7,$8)", rows)
    finally:
        await conn.close()


def test_desk_commands_end_to_end(dsn: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--db", dsn]
    ledger_yaml = tmp_path / "l.yaml"
    ledger_yaml.write_text(
        "customers:\n  - {id: acme, name: Acme, industry: real_estate}\n"
        "  - {id: bravo, name: Bravo, industry: finance}\n"
        "numbers:\n  - {resource: '95566', customer: bravo, business_name: 客服}\n",
        encoding="utf-8")
    assert run(["ledger", "import", str(ledger_yaml), *db]) == 0
    assert run(["ledger", "export", "--kind", "customers", "-o", str(tmp_path / "c.csv"),
                *db]) == 0
    assert (tmp_path / "c.csv").read_text(encoding="utf-8").count("\n") == 3
    assert run(["ledger", "number", "95566", *db]) == 0
    assert '"business_name": "客服"' in capsys.readouterr().out
    asyncio.run(_seed(dsn))

    out_csv = tmp_path / "trace.csv"
    assert run(["trace", "--number", "+8613900000001", "--csv", str(out_csv), *db]) == 0
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8"))))
    assert rows and {r["from_norm"] for r in rows} == {"13900000001"}
    assert run(["trace", "--trunk", "ent-2", "--since", "2026-10-01T00:00:00+08:00", *db]) == 0
    text = capsys.readouterr().out
    assert "ent-2" in text and "ent-1" not in text
    assert run(["trace", *db]) == 1  # no filter: refused

    complaints = tmp_path / "c.csv"
    complaints.write_text("received_at,reporter,reported_number,category,ref\n"
                          "2026-11-02T09:00:00+08:00,13812345678,13900000001,harassment,R1\n",
                          encoding="utf-8")
    assert run(["complaints", "import", str(complaints), *db]) == 0
    assert run(["complaints", "list", *db]) == 0
    assert "13900000001" in capsys.readouterr().out
    assert run(["ledger", "credit", "blacklist", "acme", "--note", "audit", *db]) == 0

    assert run(["report", "--quarter", "2026Q4", "--out", str(tmp_path),
                "--as-of", "2027-01-01T00:00:00+08:00", *db]) == 0
    html = (tmp_path / "report-2026Q4.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 6 and "<script" not in html and "http" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    figures = list(csv.reader(io.StringIO(
        (tmp_path / "report-2026Q4.csv").read_text(encoding="utf-8"))))
    as_dict = {(r[0], r[1]): r[2] for r in figures[1:]}
    total = sum(10 + 5 * d for d in range(7))
    assert as_dict[("totals", "screened")] == str(total)
    blocked = sum(len(range(0, 10 + 5 * d, 3)) for d in range(7))
    assert as_dict[("totals", "blocked")] == str(blocked)
    assert ("blocks_by_industry", "real_estate") in as_dict
    assert as_dict[("complaints", "received")] == "1"
    assert as_dict[("complaints", "overdue")] == "1"  # due 11-17, unanswered at the end
    assert run(["complaints", "advance", "1", "answered", "--answer", "已处理", *db]) == 0
    assert "answered" in capsys.readouterr().out
    weekly = [r for r in figures if r[0] == "weekly"]
    # 2026-10-01 is a Thursday: weeks from Monday 09-28 to Monday 12-28, quiet ones too.
    assert [r[1] for r in weekly][::13] == ["2026-09-28", "2026-12-28"] and len(weekly) == 14
    assert sum(int(r[2]) for r in weekly) == total
    assert sum(int(r[3]) for r in weekly) == blocked


def test_embedded_database_under_the_state_dir(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fs_plugin.journal.embedded import start_embedded_blocking

    state = tmp_path / "state"
    db = ["--db", "embedded", "--state-dir", str(state)]
    src = tmp_path / "l.yaml"
    src.write_text("customers:\n  - {id: e1, name: Embedded, licence_until: 2027-01-01}\n",
                   encoding="utf-8")
    try:
        assert run(["ledger", "import", str(src), *db]) == 0
        capsys.readouterr()
        assert run(["ledger", "export", "--kind", "customers", *db]) == 0
        assert "e1,Embedded,,,,2027-01-01" in capsys.readouterr().out
        assert run(["ledger", "show", "nobody", *db]) == 1
    finally:
        server = start_embedded_blocking(state / "pg").server
        server.cleanup_mode = "delete"
        server.cleanup()


def test_bad_input_is_an_error_message_not_a_traceback(
    dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,status\nx,X,asleep\n", encoding="utf-8")
    assert run(["ledger", "import", str(bad), "--kind", "customers", "--db", dsn]) == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err and ":2" in err and "status" in err
    assert run(["ledger", "import", str(bad), "--db", dsn]) == 1  # CSV without --kind
    assert run(["report", "--quarter", "2026Q5", "--db", dsn, "--out", str(tmp_path)]) == 1
    assert run(["complaints", "advance", "999", "verified", "--db", dsn]) == 1


def test_csv_on_stdout_is_only_csv_even_on_a_fresh_database(
    dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first command on a fresh database migrates it, which logs: never on stdout.
    assert run(["trace", "--since", "2026-10-01T00:00:00+08:00", "--csv", "-", "--db", dsn]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [",".join(TRACE_COLUMNS)]

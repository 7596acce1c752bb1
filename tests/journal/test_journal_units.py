"""Pure parts of the journal: row shapes, partition names, spool file, trace SQL, CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fs_plugin.journal.partitions import DAY_US, day_of_us, partition_day, partition_name
from fs_plugin.journal.rows import (
    DECISION_COLUMNS,
    PendingDecision,
    datetime_from_us,
    decision_row,
    to_copy_record,
    us_from_epoch,
    user_part,
)
from fs_plugin.journal.spool import Spool
from fs_plugin.journal.trace import TRACE_COLUMNS, build_trace_query, write_csv
from fs_plugin.screening.model import CallFacts, Decision, Mode, RuleResult, Verdict


@pytest.mark.parametrize(
    ("raw", "user"),
    [
        ("13900001111", "13900001111"),
        ("<sip:+8613900001111@10.0.0.1;user=phone>", "+8613900001111"),
        ("sip:02088881234@gw", "02088881234"),
        ("<tel:4008123123>;reason=unconditional", "4008123123"),
        ("SIP:955880@x", "955880"),
    ],
)
def test_user_part(raw: str, user: str) -> None:
    assert user_part(raw) == user


def test_times_are_exact_microseconds() -> None:
    us = us_from_epoch(1_795_000_123.456789)
    assert us == 1_795_000_123_456_789
    assert datetime_from_us(us) == datetime(2026, 11, 18, 11, 8, 43, 456789, tzinfo=UTC)


def test_partition_names_round_trip() -> None:
    day = day_of_us(us_from_epoch(1_795_000_000.0))
    name = partition_name("journal_decision", day)
    assert name == "journal_decision_p20261118"
    assert partition_day("journal_decision", name) == day
    assert partition_day("journal_outcome", name) is None
    assert partition_day("journal_decision", "journal_decision_p2026111") is None
    assert partition_day("journal_decision", "journal_decision_p20261341") is None
    assert partition_day("journal_decision", "journal_decision_old") is None
    assert day_of_us(DAY_US - 1) == 0 and day_of_us(DAY_US) == 1


def test_decision_row_carries_raw_and_normalised_and_clips() -> None:
    facts = CallFacts(
        uuid="u-1",
        from_user="x" * 1000,
        destination="02088881234",
        pai="<sip:13900001111@gw>",
        caller_id_name="张三\x00\udcff",
    )
    trail = (
        RuleResult("cid.not_allowed", True, Verdict.BLOCK, Mode.ENFORCE, "outside", "UNWANTED"),
        RuleResult("pattern.wangiri", True, Verdict.WARN, Mode.SHADOW, "ring once"),
        RuleResult("rate.caller", False, Verdict.PASS, Mode.ENFORCE),
    )
    decision = Decision(Verdict.BLOCK, "cid.not_allowed", "outside", trail=trail)
    row = decision_row(PendingDecision.of(facts, decision, 5, 1.25), "sw", user_part)
    assert row["pai_raw"] == "<sip:13900001111@gw>"
    assert row["pai_norm"] == "13900001111"
    assert len(row["from_raw"]) == 256
    assert row["caller_name"] == "张三\ufffd?"  # NUL and a lone surrogate replaced
    row["caller_name"].encode("utf-8")
    assert row["shadow_hits"] == ["pattern.wangiri"]
    assert [t["rule"] for t in row["trail"]] == [r.rule for r in trail]
    record = to_copy_record(row, DECISION_COLUMNS)
    assert len(record) == len(DECISION_COLUMNS)
    assert record[0] == datetime_from_us(5)
    assert json.loads(str(record[DECISION_COLUMNS.index("trail")]))[1]["mode"] == "shadow"


async def test_spool_bound_refuses_past_max_and_repairs_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"k":"decision"}\n{"torn')
    spool = await Spool.open(path, max_bytes=100)
    try:
        assert path.read_bytes().endswith(b'{"torn\n')
        assert spool.records == 2
        lines, offset = await spool.read(0)
        assert lines == [b'{"k":"decision"}', b'{"torn'] and offset == spool.size_bytes
        room = 100 - spool.size_bytes
        written = await spool.append([b"a" * (room - 1) + b"\n", b"b\n"])
        assert written == 1 and spool.size_bytes == 100
        assert spool.append_now([b"c\n"]) == 0
        assert not spool.truncate_if_drained(offset)
        assert spool.truncate_if_drained(path.stat().st_size)
        assert path.stat().st_size == 0 and spool.size_bytes == 0
    finally:
        spool.close()


def test_trace_query_is_parameterised() -> None:
    sql, args = build_trace_query(
        numbers=["139", "+86139"], uuid="u'; DROP TABLE x", since=0.0, limit=10
    )
    assert "DROP" not in sql
    assert args[0] == ["+86139", "139"] and args[1] == "u'; DROP TABLE x"
    assert args[-1] == 10
    with pytest.raises(ValueError):
        build_trace_query(limit=0)
    with pytest.raises(ValueError):
        build_trace_query(since=datetime(2026, 1, 1))  # no zone: ambiguous


def test_write_csv() -> None:
    row = dict.fromkeys(TRACE_COLUMNS)
    row.update(
        decided_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        uuid="u1",
        trail=[{"rule": "a"}],
        shadow_hits=["a"],
        answered=False,
        caller_name='Acme, "Ltd"',
    )
    out = io.StringIO()
    assert write_csv([row], out) == 1
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0]["decided_at"] == "2026-01-02T03:04:05+00:00"
    assert parsed[0]["trail"] == '[{"rule":"a"}]'
    assert parsed[0]["answered"] == "false"
    assert parsed[0]["caller_name"] == 'Acme, "Ltd"'
    assert parsed[0]["ended_at"] == ""

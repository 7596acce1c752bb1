"""Ledger, complaints and credit against real PostgreSQL (external and embedded)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fs_plugin.clock import ManualClock
from fs_plugin.errors import ConfigError
from fs_plugin.journal.complaints import ComplaintIn, Complaints, mask_reporter
from fs_plugin.journal.credit import Credit
from fs_plugin.journal.ledger import (
    CHANNEL,
    KINDS,
    RECONNECTED,
    Ledger,
    LedgerFeed,
    parse_row,
    parse_term,
    read_csv_rows,
)
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.policy.models import Caps, CustomerStatus, TargetClass, Targets, Weekday, Window
from fs_plugin.policy.overlay import LedgerState

LEDGER_YAML = """
customers:
  - id: acme
    name: 广州艾克美营销有限公司
    credit_code: 91440101MA5ABCDE1X
    licence: B2-20230001
    licence_from: 2023-01-01
    licence_until: 2026-12-31
    industry: real_estate
    business_type: marketing
    contact_name: 张三
    contact_phone: "02088880001"
  - id: bravo
    name: Bravo Call Centre
    licence_until: 2025-06-30
    status: active
trunks:
  - {id: ent-1, customer: acme, location: 广州天河机房, purpose: 房产营销外呼,
     sources: "203.0.113.10/32"}
numbers:
  - {resource: "4008123000-4008123999", customer: acme, business_name: 艾克美热线,
     purpose: 售后回访}
  - {resource: "95566", customer: bravo}
contracts:
  - customer: acme
    reference: HT-2026-001
    caps: {caller: {per_day: 50}, trunk_cps: 5}
    hours: {windows: ["09:00-18:00"], weekdays: [mon, tue, wed, thu, fri]}
    targets: "{classes: [mobile, fixed], regions: ['020']}"
    valid_from: 2026-01-01
    valid_until: 2026-12-31
"""


async def test_yaml_import_export_round_trip(ledger: Ledger, tmp_path: Path) -> None:
    src = tmp_path / "ledger.yaml"
    src.write_text(LEDGER_YAML, encoding="utf-8")
    counts = await ledger.import_yaml(src)
    assert counts == {"customers": 2, "contracts": 1, "trunks": 1, "numbers": 2}
    out = io.StringIO()
    await ledger.export_yaml(out)
    again = tmp_path / "again.yaml"
    again.write_text(out.getvalue(), encoding="utf-8")
    before = {k: await ledger.rows(k) for k in KINDS}
    await ledger.import_yaml(again, replace=True)
    assert {k: await ledger.rows(k) for k in KINDS} == before
    acme = await ledger.customer("acme")
    assert acme is not None
    assert acme["credit_code"] == "91440101MA5ABCDE1X"
    assert acme["licence_until"] == dt.date(2026, 12, 31)
    assert [t["location"] for t in acme["trunks"]] == ["广州天河机房"]
    owners = await ledger.number_owner("+864008123456")
    assert [(o["resource"], o["customer_name"], o["kind"]) for o in owners] == [
        ("4008123000-4008123999", "广州艾克美营销有限公司", "400")]
    assert await ledger.number_owner("4008124000") == []


async def test_contract_terms_and_numbers_reach_the_ledger_state(ledger: Ledger,
                                                                 tmp_path: Path) -> None:
    src = tmp_path / "ledger.yaml"
    src.write_text(LEDGER_YAML, encoding="utf-8")
    await ledger.import_yaml(src)
    row = (await ledger.rows("contracts"))[0]
    # A nested mapping is kept as one flow line, the form a CSV cell takes.
    assert row["caps"] == "{caller: {per_day: 50}, trunk_cps: 5}"
    state = await ledger.state()
    contract = state.contracts["acme"]
    assert contract.reference == "HT-2026-001"
    assert contract.caps == Caps(caller=Window(per_day=50), trunk_cps=5)
    assert contract.hours is not None and contract.hours.windows == ("09:00-18:00",)
    assert contract.hours.weekdays == tuple(Weekday)[:5]
    assert contract.targets == Targets(classes=(TargetClass.MOBILE, TargetClass.FIXED),
                                       regions=("020",))
    assert (contract.valid_from, contract.valid_until) == (dt.date(2026, 1, 1),
                                                           dt.date(2026, 12, 31))
    assert state.numbers == {"acme": ("4008123000-4008123999",), "bravo": ("95566",)}


async def test_a_term_written_around_the_import_is_left_out_not_fatal(
    ledger: Ledger, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await ledger.upsert("customers", [parse_row(KINDS["customers"], {"id": "c", "name": "C"})])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO ledger_contract (customer, caps, targets) VALUES "
            "('c', '{trunk_cps: lots}', '{classes: [mobile]}')")
    finally:
        await conn.close()
    contract = (await ledger.state()).contracts["c"]
    assert contract.caps is None and contract.targets == Targets(classes=(TargetClass.MOBILE,))
    assert "ledger_contract_term_unreadable" in capsys.readouterr().out


async def test_csv_import_and_export(ledger: Ledger, tmp_path: Path) -> None:
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(
        "id,name,licence_until,industry\nc1,One,2027-01-31,finance\nc2,Two,,other\n",
        encoding="utf-8")
    assert await ledger.import_csv("customers", csv_path) == 2
    out = io.StringIO()
    assert await ledger.export_csv("customers", out) == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("id,name,credit_code,licence,licence_from,licence_until")
    assert lines[1].startswith("c1,One,,,,2027-01-31,finance,other")


def test_bad_rows_are_named_by_file_line_and_column() -> None:
    table = KINDS["customers"]
    bad = io.StringIO("id,name,licence_until\nok,Fine,2026-01-01\nx,Bad,31/12/2026\n")
    with pytest.raises(ConfigError) as err:
        read_csv_rows(table, bad, file="c.csv")
    assert (err.value.file, err.value.line, err.value.key) == ("c.csv", 3, "licence_until")
    with pytest.raises(ConfigError) as err:
        read_csv_rows(table, io.StringIO("id,name,credit_code\nx,X,123\n"))
    assert err.value.key == "credit_code"
    with pytest.raises(ConfigError) as err:
        read_csv_rows(table, io.StringIO("id,nmae\nx,X\n"))
    assert err.value.key == "nmae"
    with pytest.raises(ConfigError) as err:
        read_csv_rows(KINDS["numbers"], io.StringIO("resource,customer\n4008123999-4008123000,a\n"))
    assert err.value.key == "resource"


@pytest.mark.parametrize(("column", "cell", "says"), [
    ("caps", "{caller: {per_dya: 5}}", "unknown key 'per_dya' (did you mean 'per_day'?)"),
    ("caps", "{trunk_cps: -1}", "a cap cannot be negative"),
    ("caps", "per caller 50/day", "expected a mapping"),
    ("hours", "{windows: [25:00-26:00]}", "hours run from 00:00 to 24:00"),
    ("hours", "{holidays: cn.csv}", "the ledger names no calendar file"),
    ("targets", "{classes: [pagers]}", "'pagers' is not one of mobile"),
    ("targets", "{regions: [020", "not a YAML mapping"),
])
def test_contract_terms_are_checked_like_the_policys(column: str, cell: str, says: str) -> None:
    text = io.StringIO()
    csv.writer(text).writerows([["customer", column], ["acme", cell]])
    with pytest.raises(ConfigError) as err:
        read_csv_rows(KINDS["contracts"], io.StringIO(text.getvalue()), file="k.csv")
    assert (err.value.file, err.value.line, err.value.key) == ("k.csv", 2, column)
    assert says in err.value.message
    assert parse_term("caps", "{caller: {per_minute: 2}}") == Caps(caller=Window(per_minute=2))


async def test_bad_yaml_changes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    src = tmp_path / "bad.yaml"
    src.write_text("customers:\n  - {id: a, name: A}\n  - {id: b, name: B, status: asleep}\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        await ledger.import_yaml(src)
    assert err.value.line == 3 and err.value.key == "status"
    assert await ledger.rows("customers") == []


async def test_state_carries_expiry_blacklist_and_labels(ledger: Ledger, tmp_path: Path) -> None:
    src = tmp_path / "ledger.yaml"
    src.write_text(LEDGER_YAML, encoding="utf-8")
    await ledger.import_yaml(src)
    credit = Credit(ledger)
    await credit.blacklist("bravo", "fraud ring")
    await credit.blacklist("acme", "first")
    await credit.lift("acme", "appeal granted")
    state = await ledger.state()
    assert state.customers["bravo"].licence_until == dt.date(2025, 6, 30)
    assert state.customers["acme"].status is CustomerStatus.ACTIVE
    assert dict(state.blacklisted) == {"bravo": "fraud ring"}
    kinds = [r.kind for r in await credit.history("acme")]
    assert kinds == ["blacklist", "lift"]


async def test_a_write_on_one_connection_reaches_a_listener_on_another(
    ledger: Ledger, dsn: str
) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await ledger.listen(got.put_nowait)
    assert listener.connected
    other = await asyncpg.connect(dsn)
    try:
        await other.execute("INSERT INTO ledger_customer (id, name) VALUES ('z', 'Z')")
        assert await asyncio.wait_for(got.get(), 10) == "ledger_customer"
        # One transaction touching many rows of one table: one notification.
        async with other.transaction():
            await other.execute("UPDATE ledger_customer SET note = 'a'")
            await other.execute("UPDATE ledger_customer SET note = 'b'")
        assert await asyncio.wait_for(got.get(), 10) == "ledger_customer"
        await other.execute(f"NOTIFY {CHANNEL}, 'probe'")
        assert await asyncio.wait_for(got.get(), 10) == "probe"
    finally:
        await other.close()
    await Credit(ledger).blacklist("z", "x")  # through the API too
    assert await asyncio.wait_for(got.get(), 10) == "ledger_credit"
    await ledger.close()
    assert not listener.connected


def test_reporter_is_masked() -> None:
    assert mask_reporter("13812345678") == "138****5678"
    assert mask_reporter("sip:02088881234@x") == "020****1234"
    assert mask_reporter("1234") == "****"


async def test_complaints_flow_labels_and_overdue(ledger: Ledger) -> None:
    clock = ManualClock(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())
    desk = Complaints(ledger, clock=clock, answer_days=15, label_threshold=3)
    first = await desk.intake(ComplaintIn("13700007777", LabelCategory.HARASSMENT,
                                          reporter="13812345678", text="每天打三次"))
    assert first is not None and first.status == "received"
    assert first.reporter == "138****5678"
    assert first.due_at == first.received_at + dt.timedelta(days=15)
    assert not (await ledger.state()).labels
    await desk.intake(ComplaintIn("+8613700007777", LabelCategory.FRAUD, channel="app"))
    third = await desk.intake(ComplaintIn("137 0000 7777", LabelCategory.HARASSMENT,
                                          ref="12321-0001"))
    assert third is not None
    assert await desk.intake(ComplaintIn("13700007777", LabelCategory.HARASSMENT,
                                         ref="12321-0001")) is None  # same ticket again
    labels = (await ledger.state()).labels
    assert [(x.number, x.category, x.confidence) for x in labels] == [
        ("13700007777", LabelCategory.HARASSMENT, 0.5)]
    await desk.advance(first.id, "verified")
    with pytest.raises(ValueError):
        await desk.advance(first.id, "received")
    with pytest.raises(ValueError):
        await desk.advance(first.id, "answered")  # no answer text
    done = await desk.advance(first.id, "answered", answer="已关停该号码")
    assert done.status == "answered" and done.answer == "已关停该号码"
    clock.advance(16 * 86400)
    overdue = await desk.overdue()
    assert sorted(t.id for t in overdue) == sorted(
        t.id for t in await desk.tickets() if t.id != first.id)
    assert len(await desk.tickets(number="13700007777")) == 3


async def test_complaints_csv_import_is_idempotent(ledger: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "received_at,reporter,reported_number,category,channel,text,ref\n"
        "2026-11-02T10:00:00+08:00,13912345678,02088887777,telemarketing,12321,推销,R1\n"
        "2026-11-03T10:00:00+08:00,,02088887777,telemarketing,website,,R2\n",
        encoding="utf-8")
    desk = Complaints(ledger)
    assert await desk.import_csv(path) == (2, 0)
    assert await desk.import_csv(path) == (0, 2)
    bad = tmp_path / "bad.csv"
    bad.write_text("reported_number,category\n02088887777,nuisance\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        await desk.import_csv(bad)
    assert (err.value.line, err.value.key) == (2, "category")


async def _journal_blocks(dsn: str, n: int, *, trunk: str, customer: str,
                          at: dt.datetime, rule: str = "cid.not_allowed") -> None:
    conn = await asyncpg.connect(dsn)
    try:
        day = at.strftime("%Y%m%d")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS journal_decision_p{day} PARTITION OF journal_decision "
            f"FOR VALUES FROM ('{at.date()}') TO ('{at.date() + dt.timedelta(days=1)}')")
        await conn.executemany(
            "INSERT INTO journal_decision (decided_at, switch, uuid, trunk, customer, verdict,"
            " rule, from_norm, callee) VALUES ($1, 'sw', $2, $3, $4, 'block', $5, $6, $7)",
            [(at + dt.timedelta(seconds=i), f"{trunk}-{rule}-{i}", trunk, customer, rule,
              "13900001111", "02088881234") for i in range(n)])
    finally:
        await conn.close()


async def test_scan_records_violations_once_and_blacklists(ledger: Ledger, dsn: str) -> None:
    day = dt.datetime(2026, 11, 10, 3, tzinfo=dt.UTC)
    await _journal_blocks(dsn, 25, trunk="ent-1", customer="acme", at=day)
    await _journal_blocks(dsn, 5, trunk="ent-2", customer="acme", at=day)  # below threshold
    await _journal_blocks(dsn, 30, trunk="ent-9", customer="acme", at=day, rule="contract.hours")
    clock = ManualClock(day.timestamp() + 86400)
    credit = Credit(ledger, clock=clock)
    since, until = day.replace(hour=0), day.replace(hour=0) + dt.timedelta(days=1)
    result = await credit.scan(since, until, threshold=20, blacklist_after=2)
    assert [(v.customer, v.trunk, v.source) for v in result.violations] == [
        ("acme", "ent-1", "auto")]
    assert result.blacklisted == ()
    again = await credit.scan(since, until, threshold=20, blacklist_after=2)
    assert again.violations == ()
    await credit.record_violation("acme", "caller ID rewriting found in audit")
    third = await credit.scan(since, until, threshold=20, blacklist_after=2)
    assert third.violations == ()  # nothing new in the journal: no auto record
    await _journal_blocks(dsn, 21, trunk="ent-3", customer="acme",
                          at=day + dt.timedelta(days=1))
    fourth = await credit.scan(until, until + dt.timedelta(days=1), threshold=20,
                               blacklist_after=2)
    assert fourth.blacklisted == ("acme",)
    assert "acme" in (await ledger.state()).blacklisted
    clock.advance(86400)
    await credit.lift("acme", "rectified")
    clock.advance(86400)
    await _journal_blocks(dsn, 22, trunk="ent-4", customer="acme",
                          at=day + dt.timedelta(days=3))
    later = day.replace(hour=0) + dt.timedelta(days=3)
    fifth = await credit.scan(later, later + dt.timedelta(days=1), threshold=20,
                              blacklist_after=2)
    assert len(fifth.violations) == 1 and fifth.blacklisted == ()  # one since the lift
    assert "acme" not in (await ledger.state()).blacklisted


async def _end_listen_session(other: asyncpg.Connection) -> None:
    """End the listener's session from the server side (a restart, an admin's kill)."""
    killed = await other.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'fs_plugin-ledger-listen' AND datname = current_database()")
    assert killed == 1


async def test_listener_reconnects_and_says_so(ledger: Ledger, dsn: str) -> None:
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await ledger.listen(got.put_nowait, reconnect_min_s=0.01)
    other = await asyncpg.connect(dsn)
    try:
        await _end_listen_session(other)
        assert await asyncio.wait_for(got.get(), 10) == RECONNECTED
        assert listener.connected
        await other.execute("INSERT INTO ledger_customer (id) VALUES ('after')")
        assert await asyncio.wait_for(got.get(), 10) == "ledger_customer"
    finally:
        await other.close()


async def test_listener_keeps_reconnecting_when_the_connection_dies_before_listen(
    ledger: Ledger, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server restarting can end a reconnect's session between the connect and the
    # LISTEN; the listener must treat that like a failed connect and try again, not stop
    # (the switches would then never hear of a blacklisting until restarted).
    got: asyncio.Queue[str] = asyncio.Queue()
    listener = await ledger.listen(got.put_nowait, reconnect_min_s=0.01)
    other = await asyncpg.connect(dsn)
    connect = ledger.connect
    lost_before_listen: list[int] = []

    async def connect_then_lose(*, application: str = "fs_plugin-ledger") -> Any:
        conn = await connect(application=application)
        if application == "fs_plugin-ledger-listen" and not lost_before_listen:
            lost_before_listen.append(conn.get_server_pid())
            await other.fetchval("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            async with asyncio.timeout(10):
                while not conn.is_closed():
                    await asyncio.sleep(0.01)
        return conn

    monkeypatch.setattr(ledger, "connect", connect_then_lose)
    try:
        await _end_listen_session(other)
        assert await asyncio.wait_for(got.get(), 10) == RECONNECTED
        assert len(lost_before_listen) == 1 and listener.connected
        await other.execute("INSERT INTO ledger_customer (id) VALUES ('after')")
        assert await asyncio.wait_for(got.get(), 10) == "ledger_customer"
    finally:
        await other.close()


async def test_feed_delivers_each_change_of_state(ledger: Ledger) -> None:
    states: asyncio.Queue[LedgerState] = asyncio.Queue()
    feed = LedgerFeed(ledger, states.put_nowait)
    first = await feed.start()
    assert first == await states.get() and not first.blacklisted
    try:
        await Credit(ledger).blacklist("acme", "fraud")
        state = await asyncio.wait_for(states.get(), 10)
        assert dict(state.blacklisted) == {"acme": "fraud"}
        await Credit(ledger).lift("acme", "appeal")
        state = await asyncio.wait_for(states.get(), 10)
        assert not state.blacklisted
    finally:
        await feed.close()


async def test_report_counts_answers_on_time_late_and_overdue(ledger: Ledger) -> None:
    from fs_plugin.journal.report import build_report, parse_quarter

    start, end = parse_quarter("2026Q4")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-10-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")
    clock = ManualClock(dt.datetime(2026, 10, 10, tzinfo=dt.UTC).timestamp())
    desk = Complaints(ledger, clock=clock, answer_days=15, label_threshold=99)
    on_time, late, open_ = [
        await desk.intake(ComplaintIn(f"1370000000{i}", LabelCategory.HARASSMENT))
        for i in range(3)]
    assert on_time is not None and late is not None and open_ is not None
    clock.advance(5 * 86400)
    await desk.advance(on_time.id, "answered", answer="ok")
    clock.advance(20 * 86400)
    await desk.advance(late.id, "answered", answer="late")
    mid = await build_report(ledger, "2026Q4", now=dt.datetime(2026, 10, 20, tzinfo=dt.UTC))
    assert mid.complaints == {"received": 3, "answered": 1, "answered_on_time": 1,
                              "answered_late": 0, "overdue": 0}
    final = await build_report(ledger, "2026Q4", now=dt.datetime(2027, 3, 1, tzinfo=dt.UTC))
    assert final.complaints == {"received": 3, "answered": 2, "answered_on_time": 1,
                                "answered_late": 1, "overdue": 1}
    assert final.totals["screened"] == 0 and len(final.weekly) == 14
    assert len(mid.weekly) == 4  # weeks of 09-28 .. 10-19: a running quarter stops at now

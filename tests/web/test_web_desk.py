"""The desks against a real ledger in a real PostgreSQL: complaint tickets from intake to
answer, credit set by hand reaching the running switch, and the ledger's answers about
customers and numbers."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from web_support import Env

from fs_plugin.journal.ledger import KINDS, parse_row
from fs_plugin.lab.calls import LabCall
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.web.auth import Role
from fs_plugin.web.desk import (
    InputError,
    parse_advance,
    parse_complaint,
    parse_credit,
    parse_ticket_id,
)

E, R, A, N = Role.EDITOR, Role.REGULATOR, Role.ADMIN, Role.NOC
ACME_CALL = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")  # passes
NOW = 1_790_000_000.0


def _complaint(**kw: Any) -> dict[str, Any]:
    return {"reported_number": "13500005555", "category": "fraud", **kw}


# -- parsing (no server) ------------------------------------------------------------


def test_parse_complaint_accepts_a_full_complaint() -> None:
    c = parse_complaint(_complaint(channel="app", text=" rang at night ", reporter="13812345678",
                                   received_at="2026-09-01T10:00:00+08:00", ref="H-9"), NOW)
    assert (c.reported_number, c.category, c.channel, c.text, c.ref) == (
        "13500005555", LabelCategory.FRAUD, "app", "rang at night", "H-9")
    assert c.received_at == dt.datetime(2026, 9, 1, 2, tzinfo=dt.UTC)
    assert parse_complaint(_complaint(), NOW).channel == "12321"


@pytest.mark.parametrize(("body", "field"), [
    ({"category": "fraud"}, "reported_number"),
    (_complaint(reported_number="12"), "reported_number"),
    (_complaint(reported_number=13500005555), "reported_number"),
    (_complaint(category="spam"), "category"),
    (_complaint(channel="fax"), "channel"),
    (_complaint(reporter="alice"), "reporter"),
    (_complaint(received_at="2026-09-01T10:00:00"), "received_at"),
    (_complaint(received_at="yesterday"), "received_at"),
    (_complaint(received_at="2030-01-01T00:00:00+00:00"), "received_at"),
    (_complaint(ref="../x"), "ref"),
    (_complaint(text="x" * 4001), "text"),
    (_complaint(reportd_number="1"), "reportd_number"),
])
def test_parse_complaint_names_the_bad_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_complaint(body, NOW)
    assert field in info.value.reason


def test_parse_advance_credit_and_ids() -> None:
    assert parse_advance({"status": "verified"}) == ("verified", None)
    assert parse_advance({"status": "answered", "answer": "stopped"}) == ("answered", "stopped")
    for bad in ({"status": "received"}, {"status": "closed"}, {"status": "answered"},
                {"status": "answered", "answer": "  "}, {"status": "verified", "anwser": "x"}):
        with pytest.raises(InputError):
            parse_advance(bad)
    assert parse_credit({"action": "lift", "reason": "rectified"}) == ("lift", "rectified")
    for bad in ({"action": "lift"}, {"action": "ban", "reason": "x"},
                {"action": "lift", "reason": "x" * 501}):
        with pytest.raises(InputError):
            parse_credit(bad)
    assert parse_ticket_id("42") == 42
    for raw in ("0", "-1", "abc", "1" * 19):
        with pytest.raises(InputError):
            parse_ticket_id(raw)


# -- complaints -----------------------------------------------------------------------


async def test_complaint_from_intake_to_answer(jenv: Env) -> None:
    status, body = await jenv.call("POST", "/api/complaints", E, json=_complaint(
        reporter="13812345678", text="fake bank", ref="H-1", channel="website"))
    assert status == 201, body
    ticket = body["ticket"]
    assert (ticket["status"], ticket["reporter"], ticket["reported_number"]) == (
        "received", "138****5678", "13500005555")
    assert (ticket["category"], ticket["channel"], ticket["text"]) == (
        "fraud", "website", "fake bank")
    assert ticket["overdue"] is False and ticket["answer"] == ""
    assert "13812345678" not in str(body)
    tid = ticket["id"]

    # The hotline sends the same ticket again: the ticket it opened, nothing new.
    status, again = await jenv.call("POST", "/api/complaints", E, json=_complaint(ref="H-1"))
    assert (status, again["created"], again["ticket"]["id"]) == (200, False, tid)
    status, body = await jenv.call("POST", "/api/complaints", E,
                                   json=_complaint(reported_number="13600006666", ref="H-1"))
    assert status == 409, body

    status, body = await jenv.call("GET", "/api/complaints?number=13500005555", R)
    assert status == 200 and [t["id"] for t in body["tickets"]] == [tid]
    status, body = await jenv.call("GET", "/api/complaints?status=answered", R)
    assert (status, body["tickets"]) == (200, [])

    for step in ("verified", "actioned"):
        status, body = await jenv.call("POST", f"/api/complaints/{tid}", E,
                                       json={"status": step})
        assert (status, body["ticket"]["status"]) == (200, step)
    status, body = await jenv.call("POST", f"/api/complaints/{tid}", E,
                                   json={"status": "verified"})
    assert status == 400 and "forward" in body["reason"]
    status, body = await jenv.call("POST", f"/api/complaints/{tid}", E,
                                   json={"status": "answered", "answer": "number suspended"})
    assert status == 200, body
    assert (body["ticket"]["status"], body["ticket"]["answer"]) == (
        "answered", "number suspended")
    assert body["ticket"]["answered_at"] is not None
    status, body = await jenv.call("GET", "/api/complaints?status=answered", R)
    assert [t["id"] for t in body["tickets"]] == [tid]

    status, body = await jenv.call("POST", "/api/complaints/999999", E,
                                   json={"status": "verified"})
    assert status == 404, body
    # The NOC sees numbers masked: complaint tickets are not its business.
    status, _ = await jenv.call("GET", "/api/complaints", N)
    assert status == 403


async def test_overdue_answers_are_listed(jenv: Env) -> None:
    now = dt.datetime.fromtimestamp(jenv.web.clock.time(), dt.UTC)
    late, fresh = [
        (await jenv.call("POST", "/api/complaints", E, json=_complaint(
            received_at=(now - dt.timedelta(days=days)).isoformat())))[1]["ticket"]
        for days in (20, 2)
    ]
    assert late["overdue"] is True and fresh["overdue"] is False
    status, body = await jenv.call("GET", "/api/complaints/overdue", R)
    assert status == 200 and [t["id"] for t in body["tickets"]] == [late["id"]]
    assert body["tickets"][0]["overdue"] is True
    # Answered late is still answered: off the list.
    status, _ = await jenv.call("POST", f"/api/complaints/{late['id']}", E,
                                json={"status": "answered", "answer": "blocked"})
    assert status == 200
    _, body = await jenv.call("GET", "/api/complaints/overdue", E)
    assert body["tickets"] == []


# -- credit by hand -------------------------------------------------------------------


async def _after_change(env: Env, old: str) -> tuple[str, str]:
    async with asyncio.timeout(10):  # the NOTIFY travels to the controller's feed
        while env.rig.service.policy.version == old:
            await asyncio.sleep(0.02)
    result = await env.rig.switch.place(ACME_CALL)
    return result.verdict, result.rule or ""


async def test_blacklist_by_hand_blocks_the_customers_trunks(jenv: Env) -> None:
    assert (await jenv.rig.switch.place(ACME_CALL)).verdict == "pass"
    status, body = await jenv.call("POST", "/api/credit/acme", A, json={
        "action": "lift", "reason": "nothing to lift"})
    assert status == 409, body

    version = jenv.rig.service.policy.version
    status, body = await jenv.call("POST", "/api/credit/acme", A, json={
        "action": "blacklist", "reason": "caller-ID spoofing"})
    assert status == 200, body
    assert (body["record"]["kind"], body["record"]["source"], body["blacklisted"]) == (
        "blacklist", "manual", True)
    assert await _after_change(jenv, version) == ("block", "credit.blacklisted")

    status, body = await jenv.call("GET", "/api/ledger/customers/acme", R)
    assert status == 200, body
    assert body["ledger"]["blacklisted"] == "caller-ID spoofing"
    assert [c["kind"] for c in body["ledger"]["credit"]] == ["blacklist"]

    version = jenv.rig.service.policy.version
    status, _ = await jenv.call("POST", "/api/credit/acme", A, json={
        "action": "lift", "reason": "rectified"})
    assert status == 200
    assert await _after_change(jenv, version) == ("pass", "")

    status, _ = await jenv.call("POST", "/api/credit/nobody", A, json={
        "action": "blacklist", "reason": "x"})
    assert status == 404
    status, _ = await jenv.call("POST", "/api/credit/acme", E, json={
        "action": "lift", "reason": "x"})
    assert status == 403


# -- the ledger's answers -------------------------------------------------------------


async def test_customer_and_number_from_the_ledger(jenv: Env) -> None:
    ledger = jenv.rig.service.ledger
    assert ledger is not None
    await ledger.import_rows({
        "customers": [parse_row(KINDS["customers"], {
            "id": "zeta", "name": "Zeta Bank", "licence": "B2-2020-001",
            "licence_from": "2020-01-01", "licence_until": "2021-01-01",
            "contact_name": "Li Lei", "contact_phone": "01088886666", "industry": "finance"})],
        "trunks": [parse_row(KINDS["trunks"], {"id": "zeta-1", "customer": "zeta",
                                               "location": "Beijing IDC"})],
        "numbers": [parse_row(KINDS["numbers"], {"resource": "95588", "customer": "zeta",
                                                 "business_name": "Zeta service line"})],
    })
    status, body = await jenv.call("GET", "/api/ledger/customers/zeta", R)
    assert status == 200, body
    desk = body["ledger"]
    assert desk["contact"] == {"name": "Li Lei", "phone": "01088886666"}
    assert desk["licence"] == {"number": "B2-2020-001", "from": "2020-01-01",
                               "until": "2021-01-01", "valid": False}
    assert [t["id"] for t in desk["trunks"]] == ["zeta-1"]
    assert [n["resource"] for n in desk["numbers"]] == ["95588"]
    assert desk["credit"] == [] and desk["blacklisted"] is None

    status, body = await jenv.call("GET", "/api/ledger/numbers?number=95588", R)
    assert status == 200, body
    [owner] = body["owners"]
    assert (owner["customer"], owner["customer_name"], owner["business_name"]) == (
        "zeta", "Zeta Bank", "Zeta service line")
    status, body = await jenv.call("GET", "/api/ledger/numbers?number=95599", R)
    assert (status, body["owners"]) == (200, [])

    # A customer only in the YAML policy: the policy's view, and its (empty) record.
    status, body = await jenv.call("GET", "/api/ledger/customers/acme", R)
    assert status == 200 and body["trunks"] and body["ledger"]["record"] is None
    status, _ = await jenv.call("GET", "/api/ledger/customers/nobody", R)
    assert status == 404


async def test_without_a_ledger_the_snapshot_answers(env: Env) -> None:
    status, body = await env.call("GET", "/api/ledger/customers/acme", R)
    assert status == 200 and body["ledger"] is None and body["trunks"]
    status, body = await env.call("GET", "/api/ledger/numbers?number=02066660042", R)
    assert status == 200 and body["owners"] is None
    assert [c["id"] for c in body["customers"]] == ["zhixin-callcentre"]
    status, body = await env.call("GET", "/api/complaints/overdue", R)
    assert (status, body["error"]) == (503, "no_ledger")

"""Every API route: no credentials → 401, wrong role → 403, bad input → 400, good → 200."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from web_support import TOKENS, Env

from fs_plugin.lab.calls import LabCall
from fs_plugin.web.app import ROUTES
from fs_plugin.web.auth import Role

N, E, R, A = Role.NOC, Role.EDITOR, Role.REGULATOR, Role.ADMIN
BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
RULES_OFF = "rules:\n  cid.not_allowed: {mode: shadow}\n"
COMPLAINT = {"reported_number": "13500005555", "category": "telemarketing",
             "reporter": "13812345678", "text": "calls every day", "ref": "T-1"}


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # as declared in ROUTES
    good: str
    role: Role
    wrong: Role | None
    bad: str | None  # a path with bad input; None when the route takes none
    good_kw: dict[str, Any] = field(default_factory=dict)
    bad_kw: dict[str, Any] = field(default_factory=dict)
    #: The good request's status here, without a journal (ledger) database; routes that
    #: need one answer 503 and are run again with it by ``test_ledger_routes_with_a_ledger``.
    expected: int = 200
    #: The good request's status with a ledger database (``jenv``).
    with_ledger: int | None = None


CASES = [
    Case("GET", "/api/openapi.json", "/api/openapi.json", R, None, None),
    Case("GET", "/api/whoami", "/api/whoami", N, None, None),
    Case("DELETE", "/api/session", "/api/session", N, None, None),
    Case("GET", "/api/health", "/api/health", N, R, None),
    Case("GET", "/api/decisions", "/api/decisions?verdict=block&limit=5", N, R,
         "/api/decisions?verdict=maybe"),
    Case("GET", "/api/decisions/{uuid}", "/api/decisions/{uuid}", N, R,
         "/api/decisions/%24bad%20uuid"),
    Case("GET", "/api/stream", "/api/stream?verdict=block&backlog=5", N, R,
         "/api/stream?number=abc"),
    Case("GET", "/api/rates", "/api/rates?window=600", N, R, "/api/rates?window=5"),
    Case("GET", "/api/series", "/api/series?span=day", N, R, "/api/series?span=week"),
    Case("GET", "/api/counters", "/api/counters?pattern=*&limit=10", N, R,
         "/api/counters?limit=0"),
    Case("POST", "/api/counters/reset", "/api/counters/reset", A, E, "/api/counters/reset",
         {"json": {"pattern": "rate:*"}}, {"json": {"pattern": "rm -rf /"}}),
    Case("GET", "/api/labels", "/api/labels?number=13900001113", N, R, "/api/labels"),
    Case("GET", "/api/lists", "/api/lists?number=13900001113", E, R,
         "/api/lists?number=x1"),
    Case("GET", "/api/policy", "/api/policy", E, R, None),
    Case("GET", "/api/policy/files/{name:.+}", "/api/policy/files/rules.yaml", E, N,
         "/api/policy/files/..%2Fsecret.yaml"),
    Case("PUT", "/api/policy/files/{name:.+}", "/api/policy/files/rules.yaml", E, N,
         "/api/policy/files/rules.yaml",
         {"data": RULES_OFF.encode()}, {"data": b"rules:\n  no.such.rule: {mode: off}\n"}),
    Case("POST", "/api/policy/reload", "/api/policy/reload", E, N,
         "/api/policy/reload?check_only=perhaps"),
    Case("POST", "/api/policy/diff", "/api/policy/diff", E, R, "/api/policy/diff",
         {"json": {"files": {"rules.yaml": RULES_OFF}}}, {"json": {"files": []}}),
    Case("GET", "/api/ledger/customers", "/api/ledger/customers?status=active", R, N,
         "/api/ledger/customers?status=bankrupt"),
    Case("GET", "/api/ledger/customers/{id}", "/api/ledger/customers/acme", R, E,
         "/api/ledger/customers/%20acme%3B"),
    Case("GET", "/api/ledger/numbers", "/api/ledger/numbers?number=02088880001", R, N,
         "/api/ledger/numbers?number=abc"),
    # The journal is not attached here: a good query answers 503 (see test below).
    Case("GET", "/api/trace", "/api/trace?number=13900001113", R, N, "/api/trace",
         expected=503),
    # The desks' routes: in the order of test_ledger_routes_with_a_ledger (intake opens
    # ticket 1, which the next cases read and advance).
    Case("POST", "/api/complaints", "/api/complaints", E, R, "/api/complaints",
         {"json": COMPLAINT}, {"json": {**COMPLAINT, "category": "spam"}},
         expected=503, with_ledger=201),
    Case("GET", "/api/complaints", "/api/complaints?status=received&number=13500005555", R, N,
         "/api/complaints?status=closed", expected=503, with_ledger=200),
    Case("GET", "/api/complaints/overdue", "/api/complaints/overdue", E, N, None,
         expected=503, with_ledger=200),
    Case("POST", "/api/complaints/{id}", "/api/complaints/1", E, R, "/api/complaints/1",
         {"json": {"status": "verified"}}, {"json": {"status": "answered"}},
         expected=503, with_ledger=200),
    Case("POST", "/api/credit/{customer}", "/api/credit/acme", A, E, "/api/credit/acme",
         {"json": {"action": "blacklist", "reason": "spoofing"}},
         {"json": {"action": "ban", "reason": "spoofing"}}, expected=503, with_ledger=200),
    Case("GET", "/metrics", "/metrics", N, None, None),
]


def test_every_route_has_a_case() -> None:
    declared = {(r.method, r.path) for r in ROUTES if r.roles is not None}
    covered = {(c.method, c.route) for c in CASES}
    assert declared == covered


async def _good_path(env: Env, case: Case) -> str:
    if "{uuid}" in case.good:
        result = await env.rig.switch.place(BLOCKED)
        return case.good.replace("{uuid}", result.uuid)
    return case.good


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.route}")
async def test_route(env: Env, case: Case) -> None:
    path = await _good_path(env, case)
    # No credentials, then an unknown token: 401.
    status, body = await env.call(case.method, path, None, **case.good_kw)
    assert status == 401, body
    status, _ = await env.call(case.method, path, None, headers={"Authorization": "Bearer nope"},
                               **case.good_kw)
    assert status == 401
    if case.wrong is not None:
        status, body = await env.call(case.method, path, case.wrong, **case.good_kw)
        assert status == 403, body
        assert body["error"] == "forbidden"
    if case.bad is not None:
        status, body = await env.call(case.method, case.bad, case.role, **case.bad_kw)
        assert status == 400, body
        assert body["reason"]
    if case.route == "/api/stream":
        async with env.http.get(env.base + path, headers={
                "Authorization": f"Bearer {TOKENS[case.role]}"}) as resp:
            assert resp.status == 200
            assert resp.content_type == "text/event-stream"
        return
    status, body = await env.call(case.method, path, case.role, **case.good_kw)
    assert status == case.expected, body
    if status == 503:
        assert body["reason"]


async def test_ledger_routes_with_a_ledger(jenv: Env) -> None:
    """The routes that answered 503 above, with the journal's database as the ledger."""
    cases = [c for c in CASES if c.with_ledger is not None]
    assert cases
    for case in cases:
        status, body = await jenv.call(case.method, case.good, case.role, **case.good_kw)
        assert status == case.with_ledger, (case.route, body)
        if case.wrong is not None:
            status, _ = await jenv.call(case.method, case.good, case.wrong, **case.good_kw)
            assert status == 403, case.route
        if case.bad is not None:
            status, body = await jenv.call(case.method, case.bad, case.role, **case.bad_kw)
            assert status == 400 and body["reason"], (case.route, body)


async def test_admin_may_use_every_route(env: Env) -> None:
    status, body = await env.call("GET", "/api/ledger/customers", Role.ADMIN)
    assert status == 200 and body["customers"]
    status, _ = await env.call("GET", "/api/policy/files/rules.yaml", Role.ADMIN)
    assert status == 200


async def test_session_cookie_login(env: Env) -> None:
    status, body = await env.call("POST", "/api/session", None, json={"token": "wrong"})
    assert status == 401
    status, body = await env.call("POST", "/api/session", None, json={"tokn": "x"})
    assert status == 400
    status, body = await env.call("POST", "/api/session", None,
                                  json={"token": TOKENS[Role.NOC]})
    assert (status, body["role"]) == (200, "noc")
    # The cookie jar now carries the session: no header needed, and the role still applies.
    status, body = await env.call("GET", "/api/whoami", None)
    assert (status, body["name"]) == (200, "noc-user")
    status, _ = await env.call("POST", "/api/policy/reload", None)
    assert status == 403
    status, _ = await env.call("DELETE", "/api/session", None)
    assert status == 200
    status, _ = await env.call("GET", "/api/whoami", None)
    assert status == 401


async def test_openapi_lists_every_route_with_roles(env: Env) -> None:
    status, doc = await env.call("GET", "/api/openapi.json", Role.NOC)
    assert status == 200
    assert doc["paths"]["/api/policy/files/{name}"]["put"]["x-roles"] == ["admin", "editor"]
    assert doc["paths"]["/api/trace"]["get"]["x-roles"] == ["admin", "regulator"]
    assert len([op for p in doc["paths"].values() for op in p]) == len(ROUTES)


async def test_numbers_are_masked_for_the_noc(env: Env) -> None:
    result = await env.rig.switch.place(BLOCKED)
    status, body = await env.call("GET", "/api/decisions", Role.NOC)
    assert status == 200
    event = body["decisions"][0]
    assert event["uuid"] == result.uuid
    assert (event["caller"], event["callee"]) == ("021****0123", "139****1113")
    assert "02155550123" not in str(body)
    status, counters = await env.call("GET", "/api/counters", Role.NOC)
    assert counters["keys"] and "13900001113" not in str(counters)
    status, detail = await env.call("GET", f"/api/decisions/{result.uuid}", Role.NOC)
    assert status == 200
    fired = [r for r in detail["trail"] if r["fired"]]
    assert fired[0]["rule"] == "cid.not_allowed"
    assert "02155550123" not in str(detail)
    status, _ = await env.call("GET", "/api/decisions/unknown-uuid", Role.NOC)
    assert status == 404


async def test_counters_reset_really_deletes(env: Env) -> None:
    await env.rig.switch.place(BLOCKED)
    _, before = await env.call("GET", "/api/counters", Role.NOC)
    assert before["keys"]
    status, body = await env.call("POST", "/api/counters/reset", Role.ADMIN,
                                  json={"pattern": "*"})
    assert status == 200 and body["deleted"] == len(before["keys"])
    _, after = await env.call("GET", "/api/counters", Role.NOC)
    assert after["keys"] == {}

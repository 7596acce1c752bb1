"""Bad requests found by probing the API: each gets 400 (or 401) with a reason, not 500."""

from __future__ import annotations

import asyncio

from web_support import Env

from fs_plugin.web.auth import Role


async def _raw(env: Env, request: bytes) -> bytes:
    """One request as bytes on the wire (a client library would not send these)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.web.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tokens_that_are_not_unicode_text_are_unknown_tokens(env: Env) -> None:
    # A lone surrogate escape in the login body, and header bytes that are not UTF-8:
    # hashing them used to raise (500) before any token was compared.
    status, body = await env.call("POST", "/api/session", None, data=b'{"token": "\\ud800"}',
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and body["error"] == "bad_request"
    answer = await _raw(env, b"GET /api/whoami HTTP/1.1\r\nHost: x\r\n"
                             b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 ")


async def test_json_bodies_the_parser_cannot_take_are_bad_requests(env: Env) -> None:
    cases = [
        ({}, b"[" * 100_000, "nested too deeply"),
        ({"Content-Type": "application/json; charset=no-such-charset"}, b'{"pattern": "x"}',
         "unknown charset"),
        ({}, b'{"pattern": "rate:\\udfff"}', "lone surrogate"),
    ]
    for headers, data, reason in cases:
        status, body = await env.call("POST", "/api/counters/reset", Role.ADMIN, data=data,
                                      headers=headers)
        assert status == 400, (data[:40], body)
        assert reason in body["reason"]
    # The diff writes its files to disk: a lone surrogate cannot be encoded there.
    status, body = await env.call("POST", "/api/policy/diff", Role.EDITOR,
                                  data=b'{"files": {"rules.yaml": "rules: {}\\ud800"}}')
    assert status == 400 and "lone surrogate" in body["reason"]


async def test_trace_times_out_of_range_are_bad_requests(jenv: Env) -> None:
    for since in ("nan", "inf", "-1e300", "1e18", "0001-01-01T00:00:00%2B14:00"):
        status, body = await jenv.call("GET", f"/api/trace?since={since}", Role.REGULATOR)
        assert status == 400, (since, body)
        assert body["reason"] == "since is out of range"
    status, body = await jenv.call("GET", "/api/trace?since=2026-01-01T00:00:00%2B08:00",
                                   Role.REGULATOR)
    assert status == 200 and body["rows"] == []


async def test_complaint_text_postgresql_cannot_store_is_a_bad_request(jenv: Env) -> None:
    # Answered 503 "storage unavailable" before: the desk would look for an outage.
    base = {"reported_number": "13900001111", "category": "fraud"}
    for extra, reason in (({"text": "a\x00b"}, "text must not contain NUL"),
                          ({"received_at": "0001-01-01T00:00:00+14:00"}, "before 1970")):
        status, body = await jenv.call("POST", "/api/complaints", Role.EDITOR,
                                       json={**base, **extra})
        assert status == 400, (extra, body)
        assert reason in body["reason"]
    status, body = await jenv.call("POST", "/api/credit/acme", Role.ADMIN,
                                   json={"action": "blacklist", "reason": "x\x00"})
    assert status == 400 and "NUL" in body["reason"]


async def test_csv_edit_with_an_overlong_field_is_refused_with_its_line(env: Env) -> None:
    before = env.rig.service.policy.version
    path = env.policy_dir / "data" / "dnc-national.csv"
    on_disk = path.read_bytes()
    content = b"number,date\n13900001111,2026-01-01\n" + b"9" * 200_000 + b",2026-01-01\n"
    status, body = await env.call("PUT", "/api/policy/files/data/dnc-national.csv",
                                  Role.EDITOR, data=content)
    assert status == 400, body
    assert body["error"] == "policy_invalid" and body["line"] == 3
    assert env.rig.service.policy.version == before
    assert path.read_bytes() == on_disk

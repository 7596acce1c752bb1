"""One NOC page for several switches: the live stream shared through a real Redis stream.

Two controllers (each a ``Service`` with its own lab switch and web server) point at
the same Redis; a call screened on one appears on the other's SSE stream, tagged with
the first one's switch name.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from web_servers import RedisProcess
from web_support import (
    TOKENS,
    Env,
    SseReader,
    close_env,
    make_env,
    make_rig,
    token_store,
    until,
)

from fs_plugin.lab.calls import LabCall
from fs_plugin.web.app import WebServer, WebSettings
from fs_plugin.web.auth import Role
from fs_plugin.web.bus import RedisStreamBus

BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
PASSED = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")
NOC = {"Authorization": f"Bearer {TOKENS[Role.NOC]}"}

@contextlib.asynccontextmanager
async def two_switches(policy: Path, url: str, stream: str,
                       **settings: Any) -> AsyncIterator[tuple[Env, Env]]:
    """Switches ``sw-a`` and ``sw-b``, each with its controller and web server, one bus."""
    envs: list[Env] = []
    try:
        for name in ("sw-a", "sw-b"):
            envs.append(await make_env(
                policy, service={"switch_name": name}, bus_redis_url=url, bus_stream=stream,
                **settings))
        yield envs[0], envs[1]
    finally:
        for e in envs:
            await close_env(e)


@pytest.fixture
async def shared_stream(redis_base_url: str, stream_name: str) -> AsyncIterator[str]:
    yield stream_name
    client = aioredis.from_url(redis_base_url)
    try:
        await client.delete(stream_name)
    finally:
        await client.aclose()


def _bus(env: Env) -> RedisStreamBus:
    assert isinstance(env.web.bus, RedisStreamBus)
    return env.web.bus


async def test_call_on_one_switch_appears_on_the_others_stream(
    policy_copy: Path, redis_base_url: str, shared_stream: str
) -> None:
    async with two_switches(policy_copy, redis_base_url, shared_stream) as (a, b):
        async with b.http.get(b.base + "/api/stream?backlog=0", headers=NOC) as resp:
            stream = SseReader(resp)
            status = await stream.next("status")
            assert status["switch"] == "sw-b"
            assert status["bus"]["kind"] == "redis" and status["bus"]["up"] is True
            on_a = await a.rig.switch.place(BLOCKED)
            event = await stream.decision(on_a.uuid)
            on_b = await b.rig.switch.place(PASSED)
            own = await stream.decision(on_b.uuid)
        assert (event["switch"], event["host"]) == ("sw-a", "fsp-lab")
        assert (event["verdict"], event["rule"], event["trunk"]) == (
            "block", "cid.not_allowed", "ent-1")
        assert event["caller"] == "021****0123"  # masked before it left switch A
        assert (own["switch"], own["verdict"]) == ("sw-b", "pass")
        # A's page gets B's call too, but neither gets its own call back from Redis.
        await until(lambda: _bus(a).stats["remote"] == 1, "B's call on A's bus")
        assert _bus(b).stats["remote"] == 1
        # The remote call is in B's list; only the first one can be filtered there by
        # the visible digits of its masked number.
        status_code, body = await b.call("GET", "/api/decisions?number=0123", Role.NOC)
        assert status_code == 200
        assert [d["uuid"] for d in body["decisions"]] == [on_a.uuid]


async def test_stream_is_trimmed_to_maxlen(
    policy_copy: Path, redis_base_url: str, shared_stream: str
) -> None:
    calls = [LabCall(from_user="02088881234", to=f"1390001{i:04d}", trunk="ent-1")
             for i in range(200)]
    env = await make_env(policy_copy, bus_redis_url=redis_base_url, bus_stream=shared_stream,
                         bus_maxlen=20)
    try:
        await env.rig.switch.place_all(calls, concurrency=50)
        await until(lambda: _bus(env).stats["written"] == 200, "all 200 events in the stream")
        client = aioredis.from_url(redis_base_url)
        try:
            length = await client.xlen(shared_stream)
        finally:
            await client.aclose()
    finally:
        await close_env(env)
    # MAXLEN ~ 20: Redis trims whole nodes only, so a few more stay; never fewer.
    assert 20 <= length <= 120
    assert length < 200


async def test_redis_outage_keeps_local_stream_and_bus_resumes(
    policy_copy: Path, own_redis: RedisProcess, stream_name: str
) -> None:
    async with two_switches(policy_copy, own_redis.url, stream_name,
                            bus_retry_s=0.05) as (a, b):
        async with a.http.get(a.base + "/api/stream?backlog=0", headers=NOC) as resp_a, \
                b.http.get(b.base + "/api/stream?backlog=0", headers=NOC) as resp_b:
            page_a, page_b = SseReader(resp_a), SseReader(resp_b)
            before = await a.rig.switch.place(PASSED)
            assert (await page_b.decision(before.uuid))["switch"] == "sw-a"

            own_redis.stop()
            during = await a.rig.switch.place(BLOCKED)
            local = await page_a.decision(during.uuid)  # A's page is not blinded
            assert (local["switch"], local["verdict"]) == ("sw-a", "block")
            await until(lambda: _bus(a).up is False, "A's bus to notice the outage")
            on_b = await b.rig.switch.place(PASSED)
            assert (await page_b.decision(on_b.uuid))["switch"] == "sw-b"
            status = await page_a.next("status")
            assert status["bus"]["up"] is False
            assert a.rig.service.outbound.stats["fallbacks"] == 0  # calls never waited

            own_redis.start()
            # The call screened during the outage was kept and reaches B now ...
            late = await page_b.decision(during.uuid)
            assert (late["switch"], late["verdict"]) == ("sw-a", "block")
            # ... and new calls flow again.
            after = await a.rig.switch.place(BLOCKED)
            assert (await page_b.decision(after.uuid))["switch"] == "sw-a"
            await until(lambda: _bus(a).up is True and _bus(a).outbox == 0, "A's bus up")
        assert _bus(a).stats["write_errors"] >= 1



async def test_web_server_that_cannot_bind_leaves_no_bus_running(
    policy_copy: Path, redis_base_url: str, shared_stream: str
) -> None:
    rig = await make_rig(policy_copy)
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = WebServer(rig.service, WebSettings(
            port=taken.getsockname()[1], tokens=token_store(), watch_policy=False,
            bus_redis_url=redis_base_url, bus_stream=shared_stream))
        with pytest.raises(OSError):
            await server.start()
        # The caller of start_web gets no server to stop: nothing of it may run on ...
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("fsp-noc")] == []
        # ... nor be fed the decisions of a page it never served.
        call = await rig.switch.place(PASSED)
        assert call.uuid in {r.facts.uuid for r in rig.records}
        assert server.bus.stats["published"] == 0
    finally:
        taken.close()
        await rig.service.stop()
        await rig.switch.stop()

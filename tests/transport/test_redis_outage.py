"""Redis stopped during a load of calls: calls keep flowing per each trunk's on_error,
inside the decision deadline; when Redis returns the controller uses it again, with no
restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from fsp_rig import Rig, make_rig
from redis_servers import RedisProcess, free_port

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult

POLICY = Path(__file__).parent / "caps_policy"
DEADLINE_S = 0.25


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _load(rig: Rig, trunk: str, n: int) -> list[CallResult]:
    calls = [LabCall(from_user="02088881234", to=f"1390000{i:04d}", trunk=trunk)
             for i in range(n)]
    return await rig.switch.place_all(calls, concurrency=10)


async def test_calls_flow_through_a_redis_outage(redis_server: RedisProcess) -> None:
    rig = await make_rig(POLICY, deadline_s=DEADLINE_S,
                         counters_url=f"redis://127.0.0.1:{redis_server.port}/0")
    try:
        before = await _load(rig, "t-open", 20)
        assert {r.verdict for r in before} == {"pass"}
        assert rig.service.stats["counter_errors"] == 0

        # Redis dies in the middle of a load of calls.
        load = asyncio.create_task(_load(rig, "t-open", 200))
        await asyncio.sleep(0.05)
        redis_server.stop()
        during = await load
        assert all(r.fallback is None for r in during)  # the controller answered each
        assert {r.verdict for r in during} == {"pass"}  # on_error: pass
        assert max(r.decision_ms or 0 for r in during) < DEADLINE_S * 1e3
        strict = await _load(rig, "t-open-strict", 5)   # on_error: block
        assert {(r.verdict, r.rule, r.sip_status) for r in strict} == {
            ("block", "system.counters_unavailable", 503)}
        assert max(r.decision_ms or 0 for r in strict) < DEADLINE_S * 1e3
        assert rig.service.stats["counter_errors"] >= 5

        # Redis returns: the same controller uses it again (no restart).
        redis_server.start()
        errors = rig.service.stats["counter_errors"]
        async with asyncio.timeout(10):
            while True:
                (probe,) = await _load(rig, "t-open-strict", 1)
                if probe.verdict == "pass":
                    break
                await asyncio.sleep(0.1)
        caller = [LabCall(from_user="02088887000", to=f"1390001{i:04d}", trunk="t-caller")
                  for i in range(4)]
        results = [await rig.switch.place(c) for c in caller]
        assert [(r.verdict, r.rule) for r in results] == [
            ("pass", None), ("pass", None), ("pass", None), ("block", "rate.caller")]
        assert rig.service.stats["counter_errors"] <= errors + 10
    finally:
        await rig.service.stop()
        await rig.switch.stop()

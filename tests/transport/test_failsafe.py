"""When the controller is down, slow, wedged or overloaded, the trunk's fail-safe decides."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from fsp_rig import make_rig
from structlog.testing import capture_logs

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.screening.model import CallFacts, Decision

SPOOFED = dict(from_user="02155550123", to="13900001113", trunk="ent-1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("on_error", "sip"), [("pass", 200), ("block", 603)])
async def test_controller_down_fails_over_at_once(on_error: str, sip: int) -> None:
    switch = LabSwitch("127.0.0.1", _free_port(), socket_timeout_s=3.0)
    result = await switch.place(LabCall(**SPOOFED, on_error=on_error))  # type: ignore[arg-type]
    assert result.fallback == "refused"
    assert (result.verdict, result.sip_status) == ("fallback", sip)
    assert result.post_dial_delay_ms < 1000


@pytest.mark.parametrize(("on_error", "sip"), [("pass", 200), ("block", 603)])
async def test_wedged_controller_costs_the_socket_timeout(on_error: str, sip: int) -> None:
    # A server that accepts and never answers: what FreeSWITCH can do nothing about
    # but wait (~25 s on a real switch; shortened here).
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        switch = LabSwitch("127.0.0.1", port, socket_timeout_s=0.3)
        result = await switch.place(LabCall(**SPOOFED, on_error=on_error))  # type: ignore[arg-type]
    finally:
        server.close()
        await server.wait_closed()
    assert result.fallback == "socket_error"
    assert (result.verdict, result.sip_status) == ("fallback", sip)
    assert result.post_dial_delay_ms >= 300


@pytest.mark.parametrize(("trunk", "sip"), [("ent-1", 200), ("ent-2", 603)])
async def test_decision_over_deadline_applies_trunk_on_error(
    policy_dir: Path, trunk: str, sip: int
) -> None:
    rig = await make_rig(policy_dir, inbound=False, deadline_s=0.05)

    async def too_slow(facts: CallFacts) -> Decision:
        await asyncio.sleep(1.0)
        raise AssertionError("unreachable")

    rig.service.outbound._decide = too_slow
    try:
        with capture_logs() as logs:
            result = await rig.switch.place(LabCall(**{**SPOOFED, "trunk": trunk}))  # type: ignore[arg-type]
    finally:
        await rig.service.stop()
    assert result.verdict == "fallback"
    assert result.sip_status == sip
    assert result.rule == "system.fallback"
    assert any(e["event"] == "decision_deadline" for e in logs)


async def test_decision_error_applies_on_error_and_is_logged(policy_dir: Path) -> None:
    rig = await make_rig(policy_dir, inbound=False)

    async def broken(facts: CallFacts) -> Decision:
        raise RuntimeError("bug")

    rig.service.outbound._decide = broken
    try:
        with capture_logs() as logs:
            result = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
    finally:
        await rig.service.stop()
    assert (result.verdict, result.sip_status) == ("fallback", 200)
    assert any(e["event"] == "decision_failed" for e in logs)


async def test_overloaded_controller_stops_accepting_then_recovers(policy_dir: Path) -> None:
    rig = await make_rig(policy_dir, inbound=False, max_lag_s=0.05, hard_lag_s=0.15,
                         recover_after_s=0.3)
    try:
        ok = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
        assert ok.verdict == "block" and ok.fallback is None
        # A real stall of the event loop (e.g. a GC pause or a blocking bug): 200 ms.
        with capture_logs() as logs:
            time.sleep(0.2)  # noqa: ASYNC251 - the stall under test
            await asyncio.sleep(0.05)  # let the probe see the lag
            assert not rig.service.outbound.accepting
            started = time.perf_counter()
            refused = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
            elapsed = time.perf_counter() - started
        assert refused.fallback == "refused"
        assert refused.verdict == "fallback"
        assert elapsed < 0.5  # refused at once, not held
        assert any(e["event"] == "controller_overloaded" for e in logs)
        # Healthy again for recover_after_s → listening again on the same port.
        async with asyncio.timeout(3):
            while not rig.service.outbound.accepting:
                await asyncio.sleep(0.02)
        again = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
        assert again.verdict == "block" and again.fallback is None
    finally:
        await rig.service.stop()


async def test_too_many_calls_in_flight_also_pauses(policy_dir: Path) -> None:
    rig = await make_rig(policy_dir, inbound=False, max_inflight=0, recover_after_s=60)
    sentinel = object()  # stands for a call in flight
    try:
        monitor = rig.service.outbound.health
        rig.service.outbound._active.add(sentinel)  # type: ignore[arg-type]
        monitor.observe(0.0, now=0.0)
        assert not rig.service.outbound.accepting
        result = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
        assert result.fallback == "refused"
    finally:
        rig.service.outbound._active.discard(sentinel)  # type: ignore[arg-type]
        await rig.service.stop()


async def test_stop_while_resuming_leaves_nothing_listening(policy_dir: Path) -> None:
    # The health monitor resumes by binding in a task; a stop() that comes before that
    # task has run must not be followed by a listening socket nobody will close.
    rig = await make_rig(policy_dir, inbound=False, recover_after_s=60)
    outbound = rig.service.outbound
    port = outbound.bound_port
    assert port is not None
    outbound._set_accepting(False)
    assert not outbound.accepting
    outbound._set_accepting(True)  # resumption scheduled, not yet bound
    outbound._set_accepting(True)  # a second signal does not bind twice
    await rig.service.stop()
    await asyncio.sleep(0.05)  # any task left over would have bound by now
    assert not outbound.accepting
    with pytest.raises(ConnectionRefusedError):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()


async def test_one_resumption_binds_once(policy_dir: Path) -> None:
    rig = await make_rig(policy_dir, inbound=False, recover_after_s=60)
    outbound = rig.service.outbound
    try:
        outbound._set_accepting(False)
        with capture_logs() as logs:
            outbound._set_accepting(True)
            outbound._set_accepting(True)
            async with asyncio.timeout(3):
                while not outbound.accepting:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        assert [e["event"] for e in logs].count("outbound_listening") == 1
        assert not any(e["event"] == "outbound_task_failed" for e in logs)
        result = await rig.switch.place(LabCall(**SPOOFED))  # type: ignore[arg-type]
        assert result.verdict == "block" and result.fallback is None
    finally:
        await rig.service.stop()

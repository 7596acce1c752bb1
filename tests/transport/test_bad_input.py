"""Garbage, half frames and hang-ups on the outbound socket hurt only their own connection."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from fsp_rig import Rig
from structlog.testing import capture_logs

from fs_plugin import esl
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult
from fs_plugin.screening.model import Decision

GOOD = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")


async def _connect(rig: Rig) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    assert await reader.readexactly(9) == b"connect\n\n"
    return reader, writer


async def test_garbage_closes_only_that_connection(rig: Rig) -> None:
    with capture_logs() as logs:
        reader, writer = await _connect(rig)
        writer.write(b"this is not\x00 an ESL frame\n\n")
        await writer.drain()
        # The controller closes the connection (EOF) without sending a decision.
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
        good = await rig.switch.place(GOOD)
    assert good.verdict == "pass" and good.fallback is None
    errors = [e for e in logs if e["event"] == "outbound_protocol_error"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"


async def test_half_frame_then_eof_is_logged_not_raised(rig: Rig) -> None:
    with capture_logs() as logs:
        _reader, writer = await _connect(rig)
        writer.write(b"Event-Name: CHANNEL_DATA\nUnique-ID: abc")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.1)
        good = await rig.switch.place(GOOD)
    assert good.verdict == "pass"
    assert any(e["event"] == "outbound_protocol_error" for e in logs)


async def test_oversized_header_block_is_refused(rig: Rig) -> None:
    with capture_logs() as logs:
        reader, writer = await _connect(rig)
        line = b"variable_x: " + b"A" * 4096 + b"\n"
        try:
            for _ in range(2048):  # 8 MiB with no blank line
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass  # the controller closed on us: that is the point
        try:
            rest = await asyncio.wait_for(reader.read(), 5.0)
        except ConnectionResetError:
            rest = b""  # closed with our unread bytes pending: the kernel sends RST
        assert rest == b""
        writer.close()
    assert any(e["event"] == "outbound_protocol_error" for e in logs)


async def test_switch_hangs_up_mid_decision(rig: Rig) -> None:
    gate = asyncio.Event()
    real = rig.service.outbound._decide

    async def slowish(facts):  # type: ignore[no-untyped-def]
        gate.set()
        await asyncio.sleep(0.05)
        return await real(facts)

    rig.service.outbound._decide = slowish
    from fs_plugin import esl
    from fs_plugin.lab.sofia import ChannelIdentity, channel_data_headers

    headers = channel_data_headers(GOOD, ChannelIdentity.new(1, 1), 1, "127.0.0.1:0")
    with capture_logs() as logs:
        _reader, writer = await _connect(rig)
        writer.write(esl.encode_channel_data(headers))
        await writer.drain()
        await asyncio.wait_for(gate.wait(), 2.0)
        writer.transport.abort()  # RST: the caller hung up, FreeSWITCH drops the socket
        await asyncio.sleep(0.2)
    # No exception reached the loop (the autouse fixture checks) and nothing was an error.
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    assert rig.service.outbound.inflight() == 0


async def test_peer_outside_acl_is_refused(rig: Rig) -> None:
    rig.service.outbound._allow = ()
    with capture_logs() as logs:
        reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
        assert await asyncio.wait_for(reader.read(), 2.0) == b""
        writer.close()
    assert any(e["event"] == "outbound_peer_refused" for e in logs)


async def _answered_and_released(
    rig: Rig, call: LabCall
) -> tuple[CallResult, list[MutableMapping[str, Any]]]:
    """Place ``call``; the switch must be answered (never taken for gone) and the
    connection released. The result and the log lines."""
    with capture_logs() as logs:
        async with asyncio.timeout(10):  # hang detection only
            result = await rig.switch.place(call)
    assert not any(e["event"] == "call_gone_before_decision" for e in logs)
    async with asyncio.timeout(5):
        while rig.service.outbound.inflight():
            await asyncio.sleep(0.01)
    return result, logs


async def test_nul_in_caller_id_still_gets_its_verdict(rig: Rig) -> None:
    # A caller's From user "%00…": FreeSWITCH leaves an upper-case %XX as it is, so the
    # channel data decodes to a NUL, which the malformed-caller reason then quotes. A
    # NUL cannot go on a sendmsg line; the verdict must still reach the switch, not
    # leave the channel waiting for a write that never comes.
    call = LabCall(from_user="0208888\x001234", to="13900001111", trunk="ent-1")
    result, _logs = await _answered_and_released(rig, call)
    assert result.fallback is None
    assert (result.verdict, result.rule) == ("block", "cid.malformed")
    assert "\ufffd" in (result.reason or "")
    assert rig.service.outbound.stats["calls"] == 1


async def test_a_decision_the_wire_cannot_carry_is_not_taken_for_a_gone_peer(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Should a value ever reach the codec that no header line can carry, the switch must
    # still be answered (here with exit: the dialplan's fail-safe decides) and the error
    # counted, not the call taken for hung up and its channel left waiting.
    import fs_plugin.transport.outbound as outbound_module

    real = outbound_module.decision_commands

    def with_a_nul(decision: Decision) -> list[esl.SendMsg]:
        return [*real(decision), esl.execute("set", "fsp_debug=a\x00b")]

    monkeypatch.setattr(outbound_module, "decision_commands", with_a_nul)
    call = LabCall(from_user="02155550123", to="13900001111", trunk="ent-1")
    result, logs = await _answered_and_released(rig, call)
    assert result.fallback is not None  # no verdict reached it: the dialplan decided
    assert any(e["event"] == "decision_unencodable" and e["log_level"] == "error" for e in logs)
    assert rig.service.outbound.stats["errors"] == 1


async def test_channel_data_announcing_a_huge_body_is_refused_at_once(rig: Rig) -> None:
    # The connect reply never has a body; one announcing megabytes is refused when its
    # header arrives, not buffered until the channel-data timeout.
    with capture_logs() as logs:
        reader, writer = await _connect(rig)
        writer.write(b"Content-Type: command/reply\nUnique-ID: x\nContent-Length: 8000000\n\n"
                     + b"A" * 65536)
        await writer.drain()
        try:
            async with asyncio.timeout(10):  # hang detection only
                rest = await reader.read()
        except ConnectionResetError:
            rest = b""  # closed with our unread bytes pending: the kernel sends RST
        writer.close()
    assert rest == b""
    assert any(e["event"] == "outbound_protocol_error" and "frame_too_large" in e["error"]
               for e in logs)
    assert not any(e["event"] == "outbound_peer_timeout" for e in logs)
    assert rig.service.outbound.inflight() == 0


async def test_unusable_channel_data_still_releases_the_connection(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the channel data cannot become facts the controller says only `exit`; a peer
    # that then keeps the socket open must not hold the slot for ever.
    import dataclasses

    import fs_plugin.transport.outbound as outbound_mod
    from fs_plugin import esl
    from fs_plugin.lab.sofia import ChannelIdentity, channel_data_headers

    def broken(headers: object) -> object:
        raise ValueError("unusable")

    monkeypatch.setattr(outbound_mod, "facts_from_channel_data", broken)
    outbound = rig.service.outbound
    outbound.settings = dataclasses.replace(outbound.settings, close_timeout_s=0.2)
    headers = channel_data_headers(GOOD, ChannelIdentity.new(1, 1), 1, "127.0.0.1:0")
    with capture_logs() as logs:
        reader, writer = await _connect(rig)
        writer.write(esl.encode_channel_data(headers))
        await writer.drain()
        async with asyncio.timeout(10):  # hang detection only
            assert await reader.read() == b"exit\n\n"
        writer.close()
    assert any(e["event"] == "outbound_bad_channel_data" for e in logs)
    assert outbound.inflight() == 0
    assert outbound.stats["errors"] == 1

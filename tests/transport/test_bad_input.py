"""Garbage, half frames and hang-ups on the outbound socket hurt only their own connection."""

from __future__ import annotations

import asyncio

from fsp_rig import Rig
from structlog.testing import capture_logs

from fs_plugin.lab.calls import LabCall

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

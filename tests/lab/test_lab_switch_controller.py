"""The lab switch's outbound socket against a controller that breaks the protocol: the
call falls back to the trunk's fail-safe, as FreeSWITCH's dialplan does after a failed
socket app, and the SIP caller still gets a final response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from lab_sip import Caller, in_dialog, invite, make_lab

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch

_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _after_channel_data(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              then: bytes, *, close: bool) -> None:
    writer.write(b"connect\n\n")
    await reader.readuntil(b"\n\n")  # the channel data (no Content-Length: ends here)
    writer.write(then)
    await writer.drain()
    if not close:
        await reader.read()  # wait for the switch to hang up on us
    writer.close()


async def garbage_command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _after_channel_data(reader, writer, b"sendmsg\nno colon here\n\n", close=False)


async def closes_mid_command(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _after_channel_data(reader, writer, b"sendmsg\ncall-command: hang", close=True)


async def garbage_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"\x00\xff not a command\n\x01\x02\n\n")
    await writer.drain()
    await reader.read()
    writer.close()


@pytest.fixture
async def controller(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    handler: _Handler = request.param
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


BROKEN = [garbage_command, closes_mid_command, garbage_first]


@pytest.mark.parametrize("controller", BROKEN, indirect=True, ids=lambda h: h.__name__)
@pytest.mark.parametrize(("on_error", "sip"), [("pass", 200), ("block", 603)])
async def test_broken_controller_gives_the_fail_safe(
    controller: int, on_error: str, sip: int
) -> None:
    switch = LabSwitch("127.0.0.1", controller, socket_timeout_s=5.0)
    async with asyncio.timeout(10):
        result = await switch.place(LabCall("02088881234", "13900001111", trunk="ent-1",
                                            on_error=on_error))
    assert result.fallback == "socket_error"
    assert (result.verdict, result.sip_status) == ("fallback", sip)


@pytest.mark.parametrize("controller", BROKEN, indirect=True, ids=lambda h: h.__name__)
async def test_sip_caller_of_a_broken_controller_gets_a_final_response(
    controller: int, repo_dir: Path
) -> None:
    lab = await make_lab(repo_dir / "policies", controller=False, answer_after_s=0.05,
                         ack_timeout_s=1.0)
    lab.switch.controller_port = controller
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request = invite("02088881234", "13900001111", port=lab.front.port,
                               local_port=caller.local_port, trunk="mkt-1")
        caller.send(request)
        _prov, final = await caller.until_final()
        caller.send(in_dialog("ACK", request, final, 1))
        assert await lab.front.wait_records(1, 5.0)
    finally:
        await caller.close()
        await lab.stop()
    assert final.status == 603  # mkt-1's fail-safe is block
    record = lab.front.records[0]
    assert record.result is not None and record.result.fallback == "socket_error"

"""The inbound client: auth, filtered subscription, reconnect, watchdog, api/bgapi correlation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from fs_plugin import esl
from fs_plugin.errors import CommandFailed
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.screening.model import Outcome
from fs_plugin.transport.inbound import InboundClient, InboundSettings


def _settings(port: int, password: str = "pw", **kw: float) -> InboundSettings:
    return InboundSettings(port=port, password=password, backoff_initial_s=0.02,
                           backoff_max_s=0.1, connect_timeout_s=1.0, **kw)  # type: ignore[arg-type]


class FakeSwitch:
    """A scripted FreeSWITCH event socket built from the codec's switch side."""

    def __init__(self, on_api: Callable[[str, asyncio.StreamWriter], Awaitable[None]]) -> None:
        self.on_api = on_api
        self.server: asyncio.Server | None = None
        self.subscriptions: list[esl.EventSubscribe] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        parser = esl.SwitchConnection()
        writer.write(esl.encode_auth_request())
        with contextlib.suppress(ConnectionError):
            while True:
                cmd = parser.next_command()
                if cmd is esl.NEED_DATA:
                    data = await reader.read(65536)
                    parser.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(cmd, esl.ConnectionClosed):
                    return
                if isinstance(cmd, esl.Auth):
                    writer.write(esl.encode_command_reply("+OK accepted"))
                elif isinstance(cmd, esl.EventSubscribe):
                    self.subscriptions.append(cmd)
                    writer.write(esl.encode_command_reply("+OK event listener enabled json"))
                elif isinstance(cmd, esl.Api):
                    await self.on_api(cmd.command, writer)
                elif isinstance(cmd, esl.BgApi):
                    writer.write(esl.encode_command_reply(
                        f"+OK Job-UUID: {cmd.job_uuid}", extra=(("Job-UUID", cmd.job_uuid),)))
                    writer.write(esl.encode_event_json(
                        [("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", cmd.job_uuid),
                         ("Job-Command", cmd.command)], body=f"+OK ran {cmd.command}\n"))
                await writer.drain()


async def _echo_api(command: str, writer: asyncio.StreamWriter) -> None:
    if command.startswith("slow"):
        await asyncio.sleep(0.3)
    if command.startswith("bad"):
        writer.write(esl.encode_api_response("-ERR No such channel!\n"))
    else:
        writer.write(esl.encode_api_response(f"+OK {command}\n"))


@pytest.fixture
async def fake() -> FakeSwitch:
    return FakeSwitch(_echo_api)


async def test_outcomes_flow_from_lab_switch() -> None:
    switch = LabSwitch("127.0.0.1", 1, socket_timeout_s=1.0)  # no controller: fallback calls
    port = await switch.start_event_socket(password="pw")
    got: list[Outcome] = []
    client = InboundClient(_settings(port), on_outcome=got.append)
    client.start()
    try:
        await client.wait_connected(2.0)
        await switch.place(LabCall(from_user="02088881234", to="13900001111", trunk="ent-1"))
        async with asyncio.timeout(2):
            while not got:
                await asyncio.sleep(0.01)
    finally:
        await client.stop()
        await switch.stop()
    assert got[0].hangup_cause == "NORMAL_CLEARING"
    assert got[0].answered and got[0].trunk_hint == "ent-1"


async def test_subscribes_only_to_needed_events(fake: FakeSwitch) -> None:
    port = await fake.start()
    client = InboundClient(_settings(port))
    client.start()
    try:
        await client.wait_connected(2.0)
    finally:
        await client.stop()
        await fake.stop()
    (sub,) = fake.subscriptions
    assert sub.format == "json"
    assert set(sub.names) == {"CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT"}


async def test_wrong_password_is_reported_and_retried_with_backoff() -> None:
    switch = LabSwitch()
    port = await switch.start_event_socket(password="right")
    client = InboundClient(_settings(port, password="wrong"))
    with capture_logs() as logs:
        client.start()
        await asyncio.sleep(0.3)
        await client.stop()
    await switch.stop()
    assert not client.connected
    assert client.stats["auth_failures"] >= 2
    assert any(e["event"] == "inbound_disconnected" for e in logs)


async def test_reconnects_after_the_switch_restarts(fake: FakeSwitch) -> None:
    port = await fake.start()
    client = InboundClient(_settings(port))
    client.start()
    try:
        await client.wait_connected(2.0)
        for w in fake.writers:  # the switch drops the connection (restart, network)
            w.transport.abort()
        async with asyncio.timeout(3):
            while fake.connections < 2 or not client.connected:
                await asyncio.sleep(0.01)
        assert await client.api("status") == "+OK status\n"
    finally:
        await client.stop()
        await fake.stop()


async def test_silent_connection_is_dropped_by_the_watchdog(fake: FakeSwitch) -> None:
    port = await fake.start()
    client = InboundClient(_settings(port, heartbeat_timeout_s=0.2))
    with capture_logs() as logs:
        client.start()
        async with asyncio.timeout(3):
            while fake.connections < 2:
                await asyncio.sleep(0.01)
        await client.stop()
    await fake.stop()
    assert any(e["event"] == "inbound_disconnected" and e["error"] == "TimeoutError"
               for e in logs)


async def test_api_replies_are_correlated_across_a_cancelled_caller(fake: FakeSwitch) -> None:
    port = await fake.start()
    client = InboundClient(_settings(port))
    client.start()
    try:
        await client.wait_connected(2.0)
        with pytest.raises(TimeoutError):
            await client.api("slow one", timeout=0.05)
        # The slow reply arrives later and must not be taken as the answer to this one.
        assert await client.api("fast two", timeout=2.0) == "+OK fast two\n"
        with pytest.raises(CommandFailed) as info:
            await client.api("bad three")
        assert info.value.reply == "No such channel!"
        assert await client.bgapi("status") == "+OK ran status\n"
    finally:
        await client.stop()
        await fake.stop()

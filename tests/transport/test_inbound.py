"""The inbound client: auth, filtered subscription, reconnect, watchdog, api/bgapi correlation."""

from __future__ import annotations

import asyncio
import contextlib
import random
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
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()
        # Let every handler see its closed connection and return: one left to be
        # cancelled when the loop closes is reported by asyncio as an unhandled error.
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        task.add_done_callback(self.handlers.discard)
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


@pytest.mark.parametrize("heartbeat_s", [0.005, 0.01])
async def test_stop_is_never_lost_to_a_heartbeat_timeout_at_the_same_moment(
    fake: FakeSwitch, heartbeat_s: float
) -> None:
    # On Python 3.11, wait_for turned a cancellation that met its own timeout into a
    # TimeoutError: the reconnect loop took it for a silent switch, went on, and stop()
    # waited for ever (seen as a hung suite). Stop the client at many moments of a
    # connection whose heartbeat keeps timing out.
    port = await fake.start()
    rng = random.Random(7)
    for _ in range(100):
        client = InboundClient(_settings(port, heartbeat_timeout_s=heartbeat_s),
                               rng=random.Random(1))
        client.start()
        await asyncio.sleep(rng.uniform(0.0, 0.03))
        # A hang, not a speed bound: stop() must return. The old stop() also swallowed the
        # timeout's own cancellation, so ask the timeout whether it fired.
        async with asyncio.timeout(5) as deadline:
            await client.stop()
        assert not deadline.expired()
        assert client._task is None and not client.connected
    await fake.stop()


async def test_stop_itself_can_be_cancelled(fake: FakeSwitch) -> None:
    port = await fake.start()
    client = InboundClient(_settings(port))
    client.start()
    await client.wait_connected(2.0)
    stopping = asyncio.get_running_loop().create_task(client.stop())
    await asyncio.sleep(0)  # stop() has cancelled the client's tasks and waits for them
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await client.stop()
    await fake.stop()

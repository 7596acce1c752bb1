"""The lean pipelined connection that carries the decision path's scripts (``resp.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from redis_servers import RedisProcess, free_port

from fs_plugin.counters import open_store
from fs_plugin.counters.ops import Hit, HitResult
from fs_plugin.counters.resp import ReplyError, RespConnection, RespTarget, pack_command
from fs_plugin.errors import StorageError


def test_commands_are_packed_as_resp_arrays_of_bulk_strings() -> None:
    assert pack_command("SELECT", 3) == b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n"
    assert pack_command("SET", "k", "流") == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\xe6\xb5\x81\r\n"


@pytest.mark.parametrize(("url", "target"), [
    ("redis://127.0.0.1:6380/3", RespTarget("127.0.0.1", 6380, db=3)),
    ("redis://u:p@h:1/2", RespTarget("h", 1, db=2, username="u", password="p")),
    ("redis://:p@h", RespTarget("h", 6379, password="p")),
    ("rediss://h:6390/0?ssl_cert_reqs=none", RespTarget("h", 6390, tls=True, verify=False)),
    ("unix:///run/redis.sock?db=4", RespTarget(path="/run/redis.sock", db=4)),
])
def test_targets_come_from_the_same_urls_as_redis_py(url: str, target: RespTarget) -> None:
    assert RespTarget.from_url(url) == target


async def test_replies_come_back_in_order_and_errors_fail_only_their_command(
    redis_url: str,
) -> None:
    conn = await RespConnection.open(RespTarget.from_url(redis_url), timeout_s=2)
    try:
        replies = [conn.send(pack_command("ECHO", f"m{i}")) for i in range(100)]
        bad = conn.send(pack_command("NOSUCHCOMMAND"))
        after = conn.send(pack_command("PING"))
        assert await asyncio.gather(*replies) == [f"m{i}" for i in range(100)]
        with pytest.raises(ReplyError, match="unknown command"):
            await bad
        assert await after == "PONG"
        assert conn.usable
    finally:
        conn.close()


class _FakeRedis(asyncio.Protocol):
    """A server that answers each command with what the test queued, byte for byte."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        while self.answers and data:
            self.transport.write(self.answers.pop(0))
            data = b""


@pytest.fixture
async def fake_redis() -> AsyncIterator[tuple[int, list[bytes]]]:
    answers: list[bytes] = []
    server = await asyncio.get_running_loop().create_server(
        lambda: _FakeRedis(answers), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], answers
    finally:
        server.close()
        await server.wait_closed()


async def test_garbage_from_the_server_fails_everything_in_flight(
    fake_redis: tuple[int, list[bytes]],
) -> None:
    port, answers = fake_redis
    conn = await RespConnection.open(RespTarget(port=port, host="127.0.0.1"), timeout_s=2)
    answers.append(b"?this is not RESP\r\n")
    first = conn.send(pack_command("PING"))
    second = conn.send(pack_command("PING"))
    with pytest.raises(ConnectionError, match="protocol error"):
        await first
    with pytest.raises(ConnectionError):
        await second
    assert not conn.usable
    with pytest.raises(ConnectionError):
        await conn.send(pack_command("PING"))


async def test_a_reply_nobody_asked_for_drops_the_connection(
    fake_redis: tuple[int, list[bytes]],
) -> None:
    port, answers = fake_redis
    conn = await RespConnection.open(RespTarget(port=port, host="127.0.0.1"), timeout_s=2)
    answers.append(b"+PONG\r\n+EXTRA\r\n")
    assert await conn.send(pack_command("PING")) == "PONG"
    for _ in range(100):
        if not conn.usable:
            break
        await asyncio.sleep(0.01)  # the second reply is read in the same data_received
    assert not conn.usable


async def test_a_server_that_goes_away_fails_the_replies_it_owed(
    own_redis: RedisProcess,
) -> None:
    conn = await RespConnection.open(RespTarget.from_url(own_redis.url), timeout_s=2)
    owed = conn.send(pack_command("BLPOP", "nothing-ever", 0))  # waits for ever
    await asyncio.sleep(0.05)
    assert conn.overdue(0.01) and not conn.overdue(60)
    with redis.Redis(port=own_redis.port) as admin:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    with pytest.raises(ConnectionError, match="lost"):
        await asyncio.wait_for(owed, 5)
    assert not conn.usable


async def test_password_and_database_from_the_url(own_redis: RedisProcess) -> None:
    with redis.Redis(port=own_redis.port) as admin:
        admin.config_set("requirepass", "s3cret")
    try:
        url = f"redis://:s3cret@127.0.0.1:{own_redis.port}/5"
        store = open_store(url, timeout_s=2)
        try:
            assert await store.execute([Hit("k", 60)]) == (HitResult(1, False, True),)
            await store.ping()
        finally:
            await store.close()
        with redis.Redis(port=own_redis.port, password="s3cret", db=5) as admin:
            assert any(b"rate" in k for k in admin.scan_iter())
        wrong = open_store(f"redis://:nope@127.0.0.1:{own_redis.port}/5", timeout_s=2)
        try:
            with pytest.raises(StorageError, match=r"WRONGPASS|invalid password"):
                await wrong.execute([Hit("k", 60)])
        finally:
            await wrong.close()
    finally:
        with redis.Redis(port=own_redis.port, password="s3cret") as admin:
            admin.config_set("requirepass", "")


async def test_a_stuck_pipe_is_replaced_after_the_deadline(own_redis: RedisProcess) -> None:
    store = open_store(own_redis.url, timeout_s=0.3)
    try:
        assert await store.execute([Hit("k", 60)]) == (HitResult(1, False, True),)
        own_redis.pause()
        for _ in range(2):
            with pytest.raises(StorageError):
                await store.execute([Hit("k", 60)])
        own_redis.resume()
        # The stuck connection is dropped; a new one serves the next call at once.
        result = await store.execute([Hit("k2", 60)])
        assert result == (HitResult(1, False, True),)
    finally:
        await store.close()


async def test_nothing_listening_fails_within_the_deadline() -> None:
    store = open_store(f"redis://127.0.0.1:{free_port()}", timeout_s=0.5)
    try:
        for _ in range(3):
            with pytest.raises(StorageError, match=r"ConnectionRefused|Connect call failed"):
                await store.execute([Hit("k", 60)])
    finally:
        await store.close()

"""What only the Redis backends have: server time, the script cache, failures and
recovery of a real server, and the spread of a batch over a real cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis
from redis_servers import SESSION_NAMESPACE, RedisProcess, free_port
from structlog.testing import capture_logs

from fs_plugin.clock import ManualClock
from fs_plugin.counters import (
    Acquire,
    CounterStore,
    CountResult,
    Get,
    Hit,
    HitResult,
    LeaseResult,
    Op,
    open_store,
)
from fs_plugin.counters.urls import parse_cluster_url
from fs_plugin.errors import StorageError

NS = SESSION_NAMESPACE + "r"

#: Slack on top of a deadline for the event loop and the test itself.
_SLACK_S = 0.5


@pytest.fixture(params=["redis", "cluster"])
def redis_backend_url(request: pytest.FixtureRequest) -> str:
    fixture = "redis_url" if request.param == "redis" else "cluster_url"
    return str(request.getfixturevalue(fixture))


def _node_ports(url: str) -> list[int]:
    if url.startswith("redis+cluster://"):
        return [port for _, port in parse_cluster_url(url)[3]]
    return [int(url.rsplit(":", 1)[1].split("/", 1)[0])]


def _node_clients(url: str) -> list[redis.Redis]:
    if url.startswith("redis+cluster://"):
        return [redis.Redis(host="127.0.0.1", port=p) for p in _node_ports(url)]
    return [redis.Redis.from_url(url)]


@pytest.fixture
async def isolated(redis_backend_url: str) -> AsyncIterator[CounterStore]:
    """A store on real server time, in a namespace of its own."""
    store = open_store(redis_backend_url, namespace=NS, clock=ManualClock(start=1000.0))
    await store.reset()
    try:
        yield store
    finally:
        await store.reset()
        await store.close()


async def test_scripts_use_the_server_clock(isolated: CounterStore, redis_backend_url: str) -> None:
    # The injected clock says 1970; without allow_time_override it must not matter.
    assert await isolated.execute([Acquire("conc", "uuid-1", 1, 60)]) == (LeaseResult(True, 1),)
    shown = await isolated.show("*")
    (state,) = shown.values()
    assert isinstance(state, dict)
    assert state["leases"]["uuid-1"] == pytest.approx(60.0, abs=1.0)
    for client in _node_clients(redis_backend_url):
        with client:
            for name in client.scan_iter(match=f"{NS}:*"):
                seconds, micros = client.time()
                expiry = client.zscore(name, "uuid-1")
                assert expiry == pytest.approx(seconds + micros / 1e6 + 60, abs=2.0)


async def test_lost_script_cache_is_reloaded(
    isolated: CounterStore, redis_backend_url: str
) -> None:
    ops: list[Op] = [Hit(f"k{i}", 60) for i in range(20)]
    assert await isolated.execute(ops) == tuple(HitResult(1, False, True) for _ in ops)
    for client in _node_clients(redis_backend_url):
        with client:
            client.script_flush()
    with capture_logs() as logs:
        assert await isolated.execute(ops) == tuple(HitResult(2, False, True) for _ in ops)
    assert any(entry["event"] == "counters.script_reload" for entry in logs)
    # Reloaded: the next batch goes through EVALSHA again.
    with capture_logs() as logs:
        assert await isolated.execute(ops) == tuple(HitResult(3, False, True) for _ in ops)
    assert not logs


async def test_redis_errors_do_not_leak(isolated: CounterStore, redis_backend_url: str) -> None:
    # A foreign value of the wrong type where a rate counter lives: WRONGTYPE.
    name = f"{NS}:{{clash}}:rate:clash"
    client: redis.Redis | redis.RedisCluster
    if redis_backend_url.startswith("redis+cluster://"):
        client = redis.RedisCluster(host="127.0.0.1", port=_node_ports(redis_backend_url)[0])
    else:
        client = redis.Redis.from_url(redis_backend_url)
    with client:
        client.set(name, "not a hash")
        with pytest.raises(StorageError) as caught:
            await isolated.execute([Hit("clash", 60)])
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)
        client.delete(name)


async def test_many_concurrent_batches_on_a_fresh_cluster_client(cluster_url: str) -> None:
    # redis-py loses connections when commands race to initialise a new cluster client;
    # the store initialises first. 60 calls arriving at once right after start-up:
    store = open_store(cluster_url, namespace=NS, timeout_s=5.0)
    try:
        results = await asyncio.gather(
            *(store.execute([Hit(f"burst:{i}", 60), Get(f"burst:{i + 1}")]) for i in range(60))
        )
        assert all(r[0] == HitResult(1, False, True) for r in results)
    finally:
        await store.reset()
        await store.close()


async def test_batch_reaches_every_cluster_master(cluster_url: str) -> None:
    # A fresh cluster client first learns the slot map: on a slow machine that alone
    # can pass the store's 250 ms call-path deadline, which is not what this tests.
    store = open_store(cluster_url, namespace=NS, timeout_s=5.0)
    try:
        ops: list[Op] = [Hit(f"callee:{i}", 60, limit=5) for i in range(90)]
        assert await store.execute(ops) == tuple(HitResult(1, False, True) for _ in ops)
        for client in _node_clients(cluster_url):
            with client:
                assert any(True for _ in client.scan_iter(match=f"{NS}:*"))
        gets: list[Op] = [Get(f"callee:{i}") for i in reversed(range(90))]
        assert await store.execute(gets) == tuple(CountResult(1) for _ in gets)
    finally:
        await store.reset()
        await store.close()


async def test_paused_then_stopped_redis_fails_fast_and_the_store_recovers(
    own_redis: RedisProcess,
) -> None:
    deadline = 0.3
    store = open_store(own_redis.url, timeout_s=deadline)
    try:
        assert await store.execute([Hit("k", 60)]) == (HitResult(1, False, True),)

        # A server that accepts but never answers: the deadline, not a hang.
        own_redis.pause()
        started = time.monotonic()
        with pytest.raises(StorageError):
            await store.execute([Hit("k", 60)])
        assert time.monotonic() - started < deadline + _SLACK_S
        with pytest.raises(StorageError):
            await store.ping()
        own_redis.resume()
        await store.ping()
        # The timed-out hit may have run once the server woke (documented: after a
        # StorageError a batch may or may not have been applied) — never twice.
        (count,) = await store.execute([Get("k")])
        assert count in (CountResult(1), CountResult(2))

        # A server that is gone: connection refused, well within the deadline.
        own_redis.stop()
        started = time.monotonic()
        with pytest.raises(StorageError):
            await store.execute([Hit("k", 60)])
        assert time.monotonic() - started < deadline + _SLACK_S

        # Back (empty, and with an empty script cache): the same object works again.
        own_redis.start()
        assert await store.execute([Hit("k", 60)]) == (HitResult(1, False, True),)
        await store.ping()
    finally:
        await store.close()


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
async def test_nothing_listening_is_a_storage_error(scheme: str) -> None:
    store = open_store(f"{scheme}://127.0.0.1:{free_port()}", timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(StorageError):
            await store.execute([Hit("k", 60)])
        with pytest.raises(StorageError):
            await store.ping()
        with pytest.raises(StorageError):
            await store.show()
        assert time.monotonic() - started < 3 * (0.5 + _SLACK_S)
    finally:
        await store.close()


async def test_concurrent_batches_share_one_script_and_keep_their_own_results(
    redis_url: str,
) -> None:
    from fs_plugin.counters.redis_store import RedisStore

    store = open_store(redis_url, namespace=NS + "c", clock=ManualClock(start=1000.0))
    assert isinstance(store, RedisStore)
    await store.reset()
    try:
        # 20 callers in the same turn of the loop, each with its own counter and a
        # different number of hits already on it.
        for i in range(20):
            for _ in range(i):
                await store.execute([Hit(f"k{i}", 60)])
        before = dict(store.coalesce_stats)
        results = await asyncio.gather(
            *(store.execute([Hit(f"k{i}", 60), Get(f"k{i}")]) for i in range(20))
        )
        sent = store.coalesce_stats["scripts"] - before["scripts"]
        assert store.coalesce_stats["batches"] - before["batches"] == 20
        assert sent < 20  # coalesced
        for i, (hit, got) in enumerate(results):
            assert isinstance(hit, HitResult) and hit.count == i + 1
            assert isinstance(got, CountResult) and got.count == i + 1
    finally:
        await store.reset()
        await store.close()


async def test_a_failed_group_fails_every_caller_in_it(own_redis: RedisProcess) -> None:
    store = open_store(own_redis.url, namespace=NS + "f", timeout_s=1.0)
    try:
        await store.execute([Hit("a", 60)])
        own_redis.stop()
        outcomes = await asyncio.gather(
            *(store.execute([Hit(f"x{i}", 60)]) for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, StorageError) for o in outcomes)
    finally:
        await store.close()


async def test_a_batch_in_flight_at_close_does_not_reopen_the_connection(
    own_redis: RedisProcess,
) -> None:
    store = open_store(own_redis.url, namespace=NS + "z", timeout_s=1.0)
    admin = redis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        await store.ping()  # the store's connection is open
        # Handed in, its send is scheduled for the next turn of the loop; close() comes first.
        in_flight = asyncio.ensure_future(store.execute([Hit("k", 60)]))
        await asyncio.sleep(0)
        await store.close()
        with pytest.raises(StorageError):
            async with asyncio.timeout(5):
                await in_flight
        # The store holds no connection any more: only ours is left on the server (which
        # may take a moment to see the store's go).
        async with asyncio.timeout(5):
            while admin.info("clients")["connected_clients"] != 1:
                await asyncio.sleep(0.01)
    finally:
        admin.close()
        await store.close()

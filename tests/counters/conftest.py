"""Redis servers for the counter tests, started on loopback free ports when needed.

- ``redis_url``: 127.0.0.1:6379 when it answers (database ``SHARED_DB``; every test
  store uses the session's own ``SESSION_NAMESPACE`` and deletes its keys), else a
  ``redis-server`` started here.
- ``cluster_url``: a 3-master Redis Cluster started here (``redis-cli --cluster create``).
- ``own_redis``: a ``redis-server`` started here that tests may pause, stop and restart.

Without a ``redis-server`` binary the Redis cases skip with that reason; the memory cases
always run.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from redis_servers import (
    SESSION_NAMESPACE,
    SHARED_DB,
    START_TIMEOUT_S,
    RedisProcess,
    answers,
    free_cluster_port,
    free_port,
    own_redis,  # noqa: F401  (a fixture: registered by import)
    redis_binary,
    wait_cluster_ok,
)

from fs_plugin.clock import ManualClock
from fs_plugin.counters import CounterStore, open_store


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if answers(6379, SHARED_DB):
        yield f"redis://127.0.0.1:6379/{SHARED_DB}"
        return
    server = RedisProcess(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("redis-cluster")
    servers: list[RedisProcess] = []
    try:
        for _ in range(3):
            port = free_cluster_port()
            server = RedisProcess(
                port,
                workdir / str(port),
                ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", "2000"),
            )
            server.start()
            servers.append(server)
        addresses = [f"127.0.0.1:{s.port}" for s in servers]
        subprocess.run(
            [redis_binary("redis-cli"), "--cluster", "create", *addresses,
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=START_TIMEOUT_S,
        )
        wait_cluster_ok([s.port for s in servers])
        yield "redis+cluster://" + ",".join(addresses)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def backend_url(request: pytest.FixtureRequest, backend: str) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(request.getfixturevalue("cluster_url"))


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[CounterStore]:
    """The same store contract on every backend, on a ManualClock (Redis: time override)."""
    url = backend_url(request, request.param)
    opened = open_store(
        url, clock=clock, allow_time_override=True, timeout_s=2.0, namespace=SESSION_NAMESPACE
    )
    await opened.reset("*")
    try:
        yield opened
    finally:
        await opened.reset("*")
        await opened.close()

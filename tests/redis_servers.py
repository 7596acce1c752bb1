"""Start and stop real redis-server processes: shared by the counter, web and transport tests
(importable from any test folder: tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

#: Database used on a shared 127.0.0.1:6379, to keep test keys out of database 0.
SHARED_DB = 9

#: Key namespace of this test session. Sessions may run at the same time against the same
#: Redis (a developer's run and CI, or the lead's full run and a helper's), so each one
#: owns its own keys and deletes only those, rather than flushing a shared database.
SESSION_NAMESPACE = f"fsptest{os.getpid()}"

#: How long a server or cluster may take to come up before the fixture gives up.
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too; Redis refuses
    ports above 55535 in cluster mode for that reason."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 55535)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def answers(port: int, db: int = 0) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=0.5,
                         socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} binary not found: install redis-server to test the Redis backends")
    return path


@dataclass
class RedisProcess:
    """A redis-server child process on a fixed port (so it can be restarted in place)."""

    port: int
    workdir: Path
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [redis_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir), *self.extra],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)  # waiting for a child process, not for a window to pass

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def wait_cluster_ok(ports: list[int]) -> None:
    """Wait until every node reports ``cluster_state:ok`` (slots assigned and agreed)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    cli = redis_binary("redis-cli")
    for port in ports:
        while True:
            info = subprocess.run(
                [cli, "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
                capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
            ).stdout
            if "cluster_state:ok" in info:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster node {port} never reached cluster_state:ok")
            time.sleep(0.05)  # waiting for the cluster bus, not for a window


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone, which it may pause, stop and start again.
    A fixture for any test folder: its conftest imports it from here."""
    server = RedisProcess(free_port(), tmp_path / "own-redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()

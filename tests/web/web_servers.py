"""Real Redis and PostgreSQL servers for the web tests.

Redis: 127.0.0.1:6379 database 15 when it answers (each test uses a stream of its own
and deletes it), else a ``redis-server`` started here on a free port; a test that must
stop and restart Redis always gets its own. PostgreSQL: a fresh database on the
server at 127.0.0.1:5432 when it answers, else on an embedded one (pgserver).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

#: Database used on a shared 127.0.0.1:6379, away from database 0 and the counter tests'.
SHARED_REDIS_DB = 15
PG_EXTERNAL = ("127.0.0.1", 5432)
#: How long a server may take to come up before the fixture gives up.
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def redis_answers(port: int, db: int = 0) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=0.5,
                         socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.skip("no redis-server binary: install redis-server to test the shared NOC bus")
    return path


@dataclass
class RedisProcess:
    """A redis-server child on a fixed port, so it can be stopped and started in place."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not redis_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)  # waiting for a child process to listen, not for a window

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


def pg_dsn(target: tuple[str, int] | str, database: str) -> str:
    """DSN of ``database`` on a TCP server or on a Unix socket path."""
    if isinstance(target, str):
        return f"postgresql://postgres@/{database}?host={Path(target).parent}"
    host, port = target
    return f"postgresql://postgres@{host}:{port}/{database}"

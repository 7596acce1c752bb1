"""Real Redis and PostgreSQL servers for the web tests.

Redis: 127.0.0.1:6379 database 15 when it answers (each test uses a stream of its own
and deletes it), else a ``redis-server`` started here on a free port; a test that must
stop and restart Redis always gets its own. PostgreSQL: a fresh database on the
server at 127.0.0.1:5432 when it answers, else on an embedded one (pgserver).
"""

from __future__ import annotations

import socket
from pathlib import Path

# The redis-server helpers are shared with the counter and transport tests.
from redis_servers import RedisProcess, free_port
from redis_servers import answers as redis_answers

__all__ = ["RedisProcess", "free_port", "pg_dsn", "redis_answers", "tcp_answers"]

#: Database used on a shared 127.0.0.1:6379, away from database 0 and the counter tests'.
SHARED_REDIS_DB = 15
PG_EXTERNAL = ("127.0.0.1", 5432)


def tcp_answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1.0):
            return True
    except OSError:
        return False


def pg_dsn(target: tuple[str, int] | str, database: str) -> str:
    """DSN of ``database`` on a TCP server or on a Unix socket path."""
    if isinstance(target, str):
        return f"postgresql://postgres@/{database}?host={Path(target).parent}"
    host, port = target
    return f"postgresql://postgres@{host}:{port}/{database}"

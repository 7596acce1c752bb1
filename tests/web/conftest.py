"""Fixtures for the web tests (helpers live in web_support.py and web_servers.py)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from redis_servers import own_redis  # noqa: F401  (a fixture: registered by import)
from web_servers import (
    PG_EXTERNAL,
    SHARED_REDIS_DB,
    RedisProcess,
    free_port,
    pg_dsn,
    redis_answers,
    tcp_answers,
)
from web_support import Env, close_env, make_env


@pytest.fixture
def policy_copy(repo_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(repo_dir / "policies", target)
    return target


@pytest.fixture
async def env(policy_copy: Path) -> AsyncIterator[Env]:
    e = await make_env(policy_copy)
    try:
        yield e
    finally:
        await close_env(e)


@pytest.fixture(scope="session")
def redis_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis the bus tests share (each with a stream of its own)."""
    if redis_answers(6379, SHARED_REDIS_DB):
        yield f"redis://127.0.0.1:6379/{SHARED_REDIS_DB}"
        return
    server = RedisProcess(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def stream_name() -> str:
    return f"fsp:noc:test:{secrets.token_hex(6)}"


@pytest.fixture(scope="session")
def pg_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int] | str]:
    """The PostgreSQL at 127.0.0.1:5432 when it answers, else an embedded one."""
    if tcp_answers(PG_EXTERNAL):
        yield PG_EXTERNAL
        return
    from fs_plugin.journal.embedded import start_embedded_blocking

    embedded = start_embedded_blocking(tmp_path_factory.mktemp("pg") / "pg")
    try:
        yield str(embedded.server.get_postmaster_info().socket_path)
    finally:
        embedded.server.cleanup_mode = "delete"
        embedded.server.cleanup()


@pytest.fixture
async def journal_dsn(pg_target: tuple[str, int] | str) -> AsyncIterator[str]:
    """A fresh, empty database (dropped afterwards)."""
    name = f"fsp_webtest_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(pg_dsn(pg_target, "postgres"), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_dsn(pg_target, name)
    admin = await asyncpg.connect(pg_dsn(pg_target, "postgres"), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def jenv(policy_copy: Path, journal_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    """A controller named ``sw-j`` whose journal is that fresh database."""
    e = await make_env(policy_copy, service={
        "journal": journal_dsn, "state_dir": tmp_path / "state", "switch_name": "sw-j"})
    try:
        yield e
    finally:
        await close_env(e)

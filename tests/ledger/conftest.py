"""PostgreSQL for the ledger tests: the external server on 127.0.0.1:5432 when it answers,
and an embedded one (pgserver) always. Each test gets a fresh database, dropped after."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from fs_plugin.journal.embedded import start_embedded_blocking
from fs_plugin.journal.ledger import Ledger

EXTERNAL = ("127.0.0.1", 5432)


def _external_answers() -> bool:
    try:
        with socket.create_connection(EXTERNAL, timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session", params=["external", "embedded"])
def pg_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    """A DSN template with ``{db}`` for the database name."""
    if request.param == "external":
        if not _external_answers():
            pytest.skip("no PostgreSQL at 127.0.0.1:5432")
        yield "postgresql://postgres@127.0.0.1:5432/{db}"
        return
    embedded = start_embedded_blocking(tmp_path_factory.mktemp("ledger-embedded") / "pg")
    socket_dir = Path(embedded.server.get_postmaster_info().socket_path).parent
    yield f"postgresql://postgres@/{{db}}?host={socket_dir}"
    embedded.server.cleanup_mode = "delete"
    embedded.server.cleanup()


@pytest.fixture
async def dsn(pg_base: str) -> AsyncIterator[str]:
    name = f"fsp_ledger_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(pg_base.format(db="postgres"), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_base.format(db=name)
    admin = await asyncpg.connect(pg_base.format(db="postgres"), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def ledger(dsn: str) -> AsyncIterator[Ledger]:
    led = await Ledger.open(dsn)
    yield led
    await led.close()

"""PostgreSQL for the journal tests, both ways: the external server on 127.0.0.1:5432
when it answers, and an embedded one (pgserver) in a temporary directory always.

Each test gets a fresh database (``fsp_test_<random>``), dropped afterwards, and can
reach it directly (``pg.dsn``) or through a loopback TCP proxy it can cut and
restore (``proxy``), which is how the tests make PostgreSQL "die" under the journal.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from fs_plugin.journal.embedded import start_embedded_blocking

EXTERNAL = ("127.0.0.1", 5432)


def _external_answers() -> bool:
    try:
        with socket.create_connection(EXTERNAL, timeout=1.0):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class PgServer:
    """A server the tests may create databases on; ``target`` is what a proxy forwards to."""

    kind: str
    target: tuple[str, int] | str  # (host, port) or a Unix socket path

    def dsn(self, database: str) -> str:
        if isinstance(self.target, str):
            return f"postgresql://postgres@/{database}?host={Path(self.target).parent}"
        host, port = self.target
        return f"postgresql://postgres@{host}:{port}/{database}"


@pytest.fixture(scope="session", params=["external", "embedded"])
def pg_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PgServer]:
    if request.param == "external":
        if not _external_answers():
            pytest.skip("no PostgreSQL at 127.0.0.1:5432")
        yield PgServer("external", EXTERNAL)
        return
    state = tmp_path_factory.mktemp("embedded")
    embedded = start_embedded_blocking(state / "pg")
    socket_path = embedded.server.get_postmaster_info().socket_path
    yield PgServer("embedded", str(socket_path))
    embedded.server.cleanup_mode = "delete"
    embedded.server.cleanup()


@dataclass(frozen=True)
class Db:
    server: PgServer
    name: str

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn, timeout=10)

    async def fetchval(self, sql: str, *args: object) -> object:
        conn = await self.connect()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await self.connect()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
async def db(pg_server: PgServer) -> AsyncIterator[Db]:
    name = f"fsp_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(pg_server.dsn("postgres"), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield Db(pg_server, name)
    admin = await asyncpg.connect(pg_server.dsn("postgres"), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class CuttableProxy:
    """A loopback TCP proxy to PostgreSQL that a test can cut (connections reset, then
    refused), arm to cut after N client bytes (mid-COPY), blackhole, and restore."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.port = 0
        self.blackhole = False
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut_after: int | None = None
        self._forwarded = 0

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        self.blackhole = False
        self._cut_after = None
        if self._server is None:
            await self.start()

    def cut(self) -> None:
        """Reset every open connection and stop listening (new connects are refused)."""
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if self._server is not None:
            self._server.close()
            self._server = None

    def cut_after(self, client_bytes: int) -> None:
        self._forwarded = 0
        self._cut_after = client_bytes

    async def close(self) -> None:
        self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            if self.blackhole:
                # Accept and say nothing: the client's own deadline must fire.
                await reader.read()
                return
            if isinstance(self.target, str):
                up_reader, up_writer = await asyncio.open_unix_connection(self.target)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pump(reader, up_writer, writer, count=True),
                self._pump(up_reader, writer, up_writer, count=False),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
            self._writers.discard(writer)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
        *,
        count: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if count and self._cut_after is not None:
                    self._forwarded += len(data)
                    if self._forwarded >= self._cut_after:
                        self._cut_after = None
                        self.cut()
                        return
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
            other.transport.abort()
            self._writers.discard(writer)


@pytest.fixture
async def proxy(pg_server: PgServer) -> AsyncIterator[CuttableProxy]:
    p = CuttableProxy(pg_server.target)
    await p.start()
    yield p
    await p.close()

"""An embedded PostgreSQL for a switch with no database configured (the ``pgserver`` wheel).

The data directory lives under the plug-in's state directory and is reused across
runs, so the journal survives restarts. The server listens on a Unix socket only
(pgserver's choice), so it is reachable from this host and nowhere else. pgserver
stops the server when the last process using it exits.

pgserver's API is synchronous (``initdb``/``pg_ctl`` subprocesses, sleeps while
waiting for readiness), so it runs in a worker thread with an overall deadline.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from fs_plugin.errors import StorageError

__all__ = ["EmbeddedPostgres", "start_embedded", "start_embedded_blocking"]

log = structlog.get_logger(__name__)

#: initdb of a fresh data directory takes ~1–3 s; a slow disk may need far more.
START_TIMEOUT_S = 120.0


def _import_pgserver() -> Any:
    # pgserver resolves a runtime directory at import time, and platformdirs warns
    # when XDG_RUNTIME_DIR is unset (services, containers); that warning says nothing
    # about us and must not become an error under ``-W error``.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import pgserver

    return pgserver


@dataclass(frozen=True, slots=True)
class EmbeddedPostgres:
    """A running embedded server: ``dsn`` connects as the ``postgres`` superuser."""

    pgdata: Path
    dsn: str
    server: Any

    def uri(self, database: str) -> str:
        """A DSN for another database on the same server."""
        return str(self.server.get_uri(database))

    async def stop(self, *, delete: bool = False) -> None:
        """Stop the server now (and delete its data with ``delete``, for tests)."""

        def _stop() -> None:
            if delete:
                self.server.cleanup_mode = "delete"
            self.server.cleanup()

        await asyncio.to_thread(_stop)


def start_embedded_blocking(pgdata: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded server in ``pgdata``, blocking (for tools and tests)."""
    try:
        pgserver = _import_pgserver()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        # pgserver fails with CalledProcessError, TimeoutExpired, AssertionError or
        # OSError depending on the step; to our callers they all mean one thing.
        raise StorageError(f"embedded PostgreSQL did not start under {pgdata}") from exc
    log.info("journal_embedded_started", pgdata=str(pgdata))
    return EmbeddedPostgres(pgdata=pgdata, dsn=str(server.get_uri()), server=server)


async def start_embedded(pgdata: Path, *, timeout_s: float = START_TIMEOUT_S) -> EmbeddedPostgres:
    """Start (or join) the embedded server whose data directory is ``pgdata``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await asyncio.to_thread(start_embedded_blocking, pgdata)
    except TimeoutError as exc:
        raise StorageError(f"embedded PostgreSQL did not start under {pgdata}") from exc

"""Versioned SQL migrations, applied at open.

Files are ``migrations/NNNN_name.sql``, applied in version order, each recorded in
``schema_migrations``. Everything runs in one transaction under a transaction-level
advisory lock: many switches may start at once against one database, and the lock
makes the second wait and then find the work done, instead of racing on
``CREATE TABLE``. A failed migration rolls back whole, leaving no half-made schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import structlog

__all__ = ["MIGRATION_LOCK_KEY", "Migration", "apply_migrations", "load_migrations"]

log = structlog.get_logger(__name__)

#: Advisory lock id shared by every fs_plugin process on a database ("fsp:migr").
MIGRATION_LOCK_KEY: Final = 0x6673703A6D696772

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> tuple[Migration, ...]:
    """The packaged migrations, in version order. Raises ``ValueError`` on a bad set."""
    found: dict[int, Migration] = {}
    folder = resources.files(__package__ or "fs_plugin.journal").joinpath("migrations")
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    ordered = tuple(found[v] for v in sorted(found))
    if [m.version for m in ordered] != list(range(1, len(ordered) + 1)):
        raise ValueError("migration versions must run 1, 2, 3, ... without gaps")
    return ordered


async def apply_migrations(
    conn: Any, migrations: tuple[Migration, ...], *, timeout_s: float
) -> list[int]:
    """Apply the missing migrations on ``conn`` (an asyncpg connection); return their versions.

    Idempotent and safe to run from many processes at once.
    """
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY, timeout=timeout_s
        )
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer     PRIMARY KEY,
                name        text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """,
            timeout=timeout_s,
        )
        rows = await conn.fetch("SELECT version FROM schema_migrations", timeout=timeout_s)
        done = {int(r["version"]) for r in rows}
        for migration in migrations:
            if migration.version in done:
                continue
            await conn.execute(migration.sql, timeout=timeout_s)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
                timeout=timeout_s,
            )
            applied_now.append(migration.version)
    if applied_now:
        log.info("journal_migrated", versions=applied_now)
    return applied_now

"""The call journal on PostgreSQL: decisions and outcomes, daily partitions with
retention, a spool for outages, and call tracing (通话溯源)."""

from __future__ import annotations

from fs_plugin.journal.embedded import EmbeddedPostgres, start_embedded
from fs_plugin.journal.journal import (
    DEFAULT_BATCH_MAX,
    DEFAULT_QUEUE_MAX,
    DEFAULT_SPOOL_MAX_BYTES,
    Journal,
)
from fs_plugin.journal.rows import Normaliser, user_part
from fs_plugin.journal.trace import TRACE_COLUMNS, write_csv

__all__ = [
    "DEFAULT_BATCH_MAX",
    "DEFAULT_QUEUE_MAX",
    "DEFAULT_SPOOL_MAX_BYTES",
    "TRACE_COLUMNS",
    "EmbeddedPostgres",
    "Journal",
    "Normaliser",
    "start_embedded",
    "user_part",
    "write_csv",
]

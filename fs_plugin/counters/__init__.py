"""Counter store: sliding-window rates, distinct sets, concurrency leases and flags.

The screening engine turns a call into a list of :mod:`~fs_plugin.counters.ops`; the
transport runs them with one ``await store.execute(ops)`` (one round trip) and hands the
results back. Backends are chosen by URL with :func:`open_store`: ``memory://``,
``redis://``/``rediss://`` and ``redis+cluster://``. Semantics are in ``ops``, key names
and patterns in ``keys``.
"""

from __future__ import annotations

from fs_plugin.counters.base import DEFAULT_TIMEOUT_S, MAX_BATCH, CounterStore
from fs_plugin.counters.factory import open_store
from fs_plugin.counters.keys import DEFAULT_NAMESPACE
from fs_plugin.counters.ops import (
    MAX_DISTINCT,
    SUB_BUCKETS,
    Acquire,
    CountResult,
    Distinct,
    DistinctResult,
    Flag,
    FlagResult,
    Get,
    GetFlag,
    Hit,
    HitResult,
    LeaseResult,
    Op,
    Release,
    ReleaseResult,
    Result,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TIMEOUT_S",
    "MAX_BATCH",
    "MAX_DISTINCT",
    "SUB_BUCKETS",
    "Acquire",
    "CountResult",
    "CounterStore",
    "Distinct",
    "DistinctResult",
    "Flag",
    "FlagResult",
    "Get",
    "GetFlag",
    "Hit",
    "HitResult",
    "LeaseResult",
    "Op",
    "Release",
    "ReleaseResult",
    "Result",
    "open_store",
]

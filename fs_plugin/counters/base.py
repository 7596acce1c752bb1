"""The one interface every counter backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from fs_plugin.counters.ops import Op, Result

__all__ = ["DEFAULT_TIMEOUT_S", "MAX_BATCH", "MAX_SHOW", "CounterStore", "check_batch"]

#: Deadline of one network await when the caller gives none. The decision of a call waits
#: for the counters, and FreeSWITCH holds the caller meanwhile: a store slower than this
#: is treated as down (StorageError, then the trunk's on_error policy).
DEFAULT_TIMEOUT_S = 0.25

#: Most ops in one batch. A Lua script blocks its Redis server while it runs; a call needs
#: a handful of ops, so 256 keeps every script short while leaving ample room.
MAX_BATCH = 256

#: Default bound on the keys ``show`` returns: it is an inspection tool, not an export.
MAX_SHOW = 1000


def check_batch(ops: Sequence[Op]) -> None:
    if len(ops) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} ops, got {len(ops)}")


class CounterStore(ABC):
    """Rate counters, distinct sets, leases and flags behind one batch call.

    Backends: :class:`~fs_plugin.counters.memory.MemoryStore` (one process),
    :class:`~fs_plugin.counters.redis_store.RedisStore` and
    :class:`~fs_plugin.counters.redis_store.RedisClusterStore` (shared by many switches).
    Network errors and deadlines surface as :class:`fs_plugin.errors.StorageError` only.
    """

    @property
    @abstractmethod
    def namespace(self) -> str:
        """The prefix of every stored key; ``show`` returns full stored names."""

    @abstractmethod
    async def execute(
        self, ops: Sequence[Op], *, timeout_s: float | None = None
    ) -> tuple[Result, ...]:
        """Run ``ops`` in order, in one round trip; results come back in op order.

        On a single Redis the whole batch is atomic. On a cluster each hash slot's ops are
        atomic (give related keys the same ``tag``); slots run concurrently. After a
        StorageError the batch may or may not have been applied (a deadline can expire
        after Redis ran it), so callers must not retry blindly.
        """

    @abstractmethod
    async def show(
        self, pattern: str = "*", *, limit: int = MAX_SHOW, timeout_s: float | None = None
    ) -> dict[str, object]:
        """Up to ``limit`` live keys matching ``pattern`` (see ``keys``), each described as a
        dict with ``kind`` and its state. Keys whose state is empty or expired are left out.
        """

    @abstractmethod
    async def reset(self, pattern: str = "*", *, timeout_s: float | None = None) -> int:
        """Delete every stored key matching ``pattern``; return how many were deleted."""

    @abstractmethod
    async def ping(self, *, timeout_s: float | None = None) -> None:
        """Return when the store answers; raise StorageError otherwise."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. The store must not be used afterwards."""

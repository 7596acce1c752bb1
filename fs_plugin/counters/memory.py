"""``memory://`` — the counter store of a single plug-in process.

Same semantics as the Redis script (``_lua.py``), computed in Python against the injected
:class:`~fs_plugin.clock.Clock`; the contract suite runs unchanged on both. Each batch
runs without an await, so it is atomic with respect to other calls on the event loop.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.counters.base import MAX_SHOW, CounterStore, check_batch
from fs_plugin.counters.keys import DEFAULT_NAMESPACE, glob_to_regex, kind_of, stored_key
from fs_plugin.counters.ops import (
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
from fs_plugin.errors import StorageError

__all__ = ["DEFAULT_MAX_KEYS", "MemoryStore"]

#: Keys one process keeps. Every call touches a few keys that live about one window, so
#: this holds hundreds of calls per second with minute windows; past it a batch that would
#: create keys fails with StorageError (like Redis at maxmemory with noeviction) instead
#: of growing without bound.
DEFAULT_MAX_KEYS = 500_000

#: Extra life of a key past the last moment it can matter, as the Lua script gives it.
_KEY_GRACE_S = 1.0


@dataclass(slots=True)
class _Rate:
    window_s: float
    sub_buckets: int
    buckets: dict[int, int]
    expires_at: float


class _ScoredSet:
    """The part of a Redis sorted set the store needs: member → score, with removal of
    the lowest scores in O(log n) through a lazy min-heap (entries whose score changed
    are skipped when popped; the heap is rebuilt when stale entries outnumber live ones).
    """

    __slots__ = ("_heap", "max_score", "scores")

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self.max_score = float("-inf")

    def __len__(self) -> int:
        return len(self.scores)

    def set(self, member: str, score: float) -> bool:
        """Set ``member``'s score; True when it was not there."""
        added = member not in self.scores
        self.scores[member] = score
        if score > self.max_score:
            self.max_score = score
        heapq.heappush(self._heap, (score, member))
        if len(self._heap) > 2 * len(self.scores) + 64:
            self._heap = [(sc, m) for m, sc in self.scores.items()]
            heapq.heapify(self._heap)
        return added

    def remove(self, member: str) -> bool:
        return self.scores.pop(member, None) is not None

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while heap and self.scores.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def prune_upto(self, limit: float) -> None:
        """Remove every member whose score is <= ``limit`` (ZREMRANGEBYSCORE -inf limit)."""
        self._drop_stale_top()
        while self._heap and self._heap[0][0] <= limit:
            _, member = heapq.heappop(self._heap)
            del self.scores[member]
            self._drop_stale_top()

    def pop_lowest(self) -> None:
        """Remove the member of lowest (score, member) — ZREMRANGEBYRANK's order."""
        self._drop_stale_top()
        if self._heap:
            _, member = heapq.heappop(self._heap)
            del self.scores[member]


@dataclass(slots=True)
class _Members:
    last_seen: _ScoredSet
    expires_at: float


@dataclass(slots=True)
class _Leases:
    expiry: _ScoredSet
    expires_at: float


@dataclass(slots=True)
class _FlagValue:
    value: str
    expires_at: float


_Entry = _Rate | _Members | _Leases | _FlagValue


def _rate_total(rate: _Rate, now: float) -> tuple[int, int, list[int]]:
    """(count in the window, current bucket index, stale bucket indices).

    Same arithmetic as the Lua script: a bucket counts while its index is no more than
    ``sub_buckets`` behind the current one.
    """
    width = rate.window_s / rate.sub_buckets
    current = math.floor(now / width)
    oldest = current - rate.sub_buckets
    total = 0
    stale: list[int] = []
    for index, n in rate.buckets.items():
        if index < oldest:
            stale.append(index)
        else:
            total += n
    return total, current, stale


class MemoryStore(CounterStore):
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._namespace = namespace
        self._max_keys = max_keys
        self._data: dict[str, _Entry] = {}
        # (due, key) with one live item per key (``_due[key]`` is its time), never later
        # than the key's expiry: a write that moves the expiry later — every hit of a live
        # counter — leaves the heap alone, and an item that comes due before its key has
        # expired is pushed again at the expiry. Items whose time is not ``_due[key]`` are
        # stale and skipped; the heap is rebuilt when they outnumber the live ones.
        self._expiry_heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}
        self._closed = False

    # -- the batch ---------------------------------------------------------------------

    async def execute(
        self, ops: Sequence[Op], *, timeout_s: float | None = None
    ) -> tuple[Result, ...]:
        return self.execute_now(ops)

    def execute_now(self, ops: Sequence[Op]) -> tuple[Result, ...]:
        """:meth:`execute` without the coroutine: this store never waits, so a caller
        that owns it outright (the offline replay, millions of batches) may run a
        batch as a plain call."""
        self._check_open()
        check_batch(ops)
        now = self._clock.time()
        if self._expiry_heap and self._expiry_heap[0][0] <= now:
            self._expire(now)
        namespace = self._namespace
        names = [_stored_name(namespace, op) for op in ops]
        data = self._data
        # A batch creates at most one key per op: only near the bound is it worth
        # counting which keys it would create.
        if len(data) + len(names) > self._max_keys:
            creating = {
                n for n, op in zip(names, ops, strict=True) if n not in data and _writes(op)
            }
            if len(data) + len(creating) > self._max_keys:
                raise StorageError(f"memory counter store is full ({self._max_keys} keys)")
        apply = self._apply
        return tuple([apply(name, op, now) for name, op in zip(names, ops, strict=True)])

    def _apply(self, name: str, op: Op, now: float) -> Result:
        entry = self._data.get(name)
        apply = _APPLY.get(type(op))
        if apply is not None:
            return apply(self, name, entry, op, now)
        match op:  # a subclass of an op: the same as its base
            case Hit():
                return self._hit(name, entry, op, now)
            case Get():
                return self._get(name, entry, op, now)
            case Distinct():
                return self._distinct(name, entry, op, now)
            case Acquire():
                return self._acquire(name, entry, op, now)
            case Release():
                return self._release(name, entry, op, now)
            case Flag():
                return self._flag(name, entry, op, now)
            case GetFlag():
                return self._get_flag(name, entry, op, now)

    def _get(self, name: str, entry: _Entry | None, op: Get, now: float) -> CountResult:
        if not isinstance(entry, _Rate):
            return CountResult(0)
        return CountResult(_rate_total(entry, now)[0])

    def _flag(self, name: str, entry: _Entry | None, op: Flag, now: float) -> FlagResult:
        self._set(name, _FlagValue(op.value, now + op.ttl_s))
        return FlagResult(op.value, float(op.ttl_s))

    def _get_flag(self, name: str, entry: _Entry | None, op: GetFlag, now: float) -> FlagResult:
        if isinstance(entry, _FlagValue) and now < entry.expires_at:
            return FlagResult(entry.value, entry.expires_at - now)
        return FlagResult(None, None)

    def _hit(self, name: str, entry: _Entry | None, op: Hit, now: float) -> HitResult:
        if isinstance(entry, _Rate) and (
            entry.window_s != op.window_s or entry.sub_buckets != SUB_BUCKETS
        ):
            # A policy change moved the window: old buckets mean nothing in the new one.
            entry = None
        if not isinstance(entry, _Rate):
            entry = _Rate(op.window_s, SUB_BUCKETS, {}, now)
        total, current, stale = _rate_total(entry, now)
        over = op.limit is not None and total + op.cost > op.limit
        if op.peek or over:
            return HitResult(total, over, False)
        for index in stale:
            del entry.buckets[index]
        entry.buckets[current] = entry.buckets.get(current, 0) + op.cost
        entry.expires_at = now + op.window_s * (1 + 1 / SUB_BUCKETS) + _KEY_GRACE_S
        self._set(name, entry)
        return HitResult(total + op.cost, False, True)

    def _distinct(
        self, name: str, entry: _Entry | None, op: Distinct, now: float
    ) -> DistinctResult:
        if isinstance(entry, _Members):
            members = entry.last_seen
            members.prune_upto(now - op.window_s)
        else:
            members = _ScoredSet()
        added = False
        if op.member is not None:
            added = members.set(op.member, now)
            while len(members.scores) > op.cap:
                members.pop_lowest()
            expires_at = now + op.window_s + _KEY_GRACE_S
            if isinstance(entry, _Members):
                entry.expires_at = expires_at
                self._set(name, entry)
            else:
                self._set(name, _Members(members, expires_at))
        elif isinstance(entry, _Members) and not members:
            del self._data[name]
        return DistinctResult(len(members.scores), added)

    def _acquire(self, name: str, entry: _Entry | None, op: Acquire, now: float) -> LeaseResult:
        leases = self._live_leases(name, entry, now)
        granted = op.lease_id in leases.scores or len(leases) < op.limit
        if granted:
            leases.set(op.lease_id, now + op.ttl_s)
            self._set(name, _Leases(leases, leases.max_score + _KEY_GRACE_S))
        return LeaseResult(granted, len(leases))

    def _release(self, name: str, entry: _Entry | None, op: Release, now: float) -> ReleaseResult:
        leases = self._live_leases(name, entry, now)
        released = leases.remove(op.lease_id)
        if not leases:
            self._data.pop(name, None)
        return ReleaseResult(released, len(leases))

    def _live_leases(self, name: str, entry: _Entry | None, now: float) -> _ScoredSet:
        if not isinstance(entry, _Leases):
            return _ScoredSet()
        entry.expiry.prune_upto(now)
        if not entry.expiry:
            del self._data[name]
        return entry.expiry

    # -- key life ----------------------------------------------------------------------

    def _set(self, name: str, entry: _Entry) -> None:
        self._data[name] = entry
        expires = entry.expires_at
        due = self._due.get(name)
        if due is None or expires < due:
            self._due[name] = expires
            heapq.heappush(self._expiry_heap, (expires, name))
            if len(self._expiry_heap) > 2 * len(self._due) + 1024:
                self._expiry_heap = [(t, k) for k, t in self._due.items()]
                heapq.heapify(self._expiry_heap)

    def _expire(self, now: float) -> None:
        """Delete every key whose expiry is ``now`` or earlier."""
        heap = self._expiry_heap
        due = self._due
        data = self._data
        while heap and heap[0][0] <= now:
            when, name = heapq.heappop(heap)
            if due.get(name) != when:
                continue  # stale: the key was given an earlier item since
            entry = data.get(name)
            if entry is None:
                del due[name]
            elif entry.expires_at <= now:
                del data[name]
                del due[name]
            else:
                due[name] = entry.expires_at
                heapq.heappush(heap, (entry.expires_at, name))

    # -- inspection --------------------------------------------------------------------

    async def show(
        self, pattern: str = "*", *, limit: int = MAX_SHOW, timeout_s: float | None = None
    ) -> dict[str, object]:
        self._check_open()
        now = self._clock.time()
        self._expire(now)
        out: dict[str, object] = {}
        for name in self._matching(pattern):
            if len(out) >= limit:
                break
            described = _describe(self._data[name], now)
            if described is not None:
                out[name] = described
        return out

    async def reset(self, pattern: str = "*", *, timeout_s: float | None = None) -> int:
        self._check_open()
        names = self._matching(pattern)
        for name in names:
            del self._data[name]
        return len(names)

    def _matching(self, pattern: str) -> list[str]:
        regex = glob_to_regex(pattern)
        prefix = self._namespace + ":"
        return [
            name
            for name in self._data
            if name.startswith(prefix) and regex.fullmatch(name, len(prefix))
        ]

    async def ping(self, *, timeout_s: float | None = None) -> None:
        self._check_open()

    async def close(self) -> None:
        self._closed = True
        self._data.clear()
        self._expiry_heap.clear()
        self._due.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory counter store is closed")

    @property
    def namespace(self) -> str:
        return self._namespace


#: The kind part of stored names by op type (``keys.kind_of``), learnt as ops are named.
_KIND_NAMES: dict[type, str] = {}


def _stored_name(namespace: str, op: Op) -> str:
    """``keys.stored_key(namespace, op)``, without its pattern match on the op's type for
    every op of every batch: the kind is looked up by type once it has been seen, and
    only after a name built here was found equal to ``stored_key``'s."""
    kind = _KIND_NAMES.get(type(op))
    tag = op.tag if op.tag is not None else op.key
    if kind is not None:
        return f"{namespace}:{{{tag}}}:{kind}:{op.key}"
    name = stored_key(namespace, op)
    kind = str(kind_of(op))
    if f"{namespace}:{{{tag}}}:{kind}:{op.key}" == name:
        _KIND_NAMES[type(op)] = kind
    return name


#: Each op type's step in :meth:`MemoryStore._apply` (a dict lookup instead of a chain of
#: isinstance checks, on every op of every batch).
_APPLY: dict[type, Callable[[MemoryStore, str, _Entry | None, Any, float], Result]] = {
    Hit: MemoryStore._hit,
    Get: MemoryStore._get,
    Distinct: MemoryStore._distinct,
    Acquire: MemoryStore._acquire,
    Release: MemoryStore._release,
    Flag: MemoryStore._flag,
    GetFlag: MemoryStore._get_flag,
}


def _writes(op: Op) -> bool:
    """Whether ``op`` may create a key (reads and releases never do)."""
    match op:
        case Hit():
            return not op.peek
        case Distinct():
            return op.member is not None
        case Acquire() | Flag():
            return True
        case Get() | GetFlag() | Release():
            return False


def _describe(entry: _Entry, now: float) -> dict[str, object] | None:
    """The ``show`` view of one key; None when it holds nothing live."""
    match entry:
        case _Rate():
            total = _rate_total(entry, now)[0]
            if total == 0:
                return None
            return {"kind": "rate", "window_s": float(entry.window_s), "count": total}
        case _Members():
            if not entry.last_seen:
                return None
            return {"kind": "distinct", "members": len(entry.last_seen)}
        case _Leases():
            live = {k: t - now for k, t in entry.expiry.scores.items() if t > now}
            if not live:
                return None
            return {"kind": "lease", "count": len(live), "leases": live}
        case _FlagValue():
            if now >= entry.expires_at:
                return None
            return {"kind": "flag", "value": entry.value, "ttl_s": entry.expires_at - now}

"""``redis://`` and ``redis+cluster://`` — counters shared by many switches.

One batch is one ``EVALSHA`` of the script in ``_lua.py`` on a single Redis. On a
cluster the ops are grouped by hash slot and each slot's group is one ``EVALSHA`` on its
node, all sent at once, so a batch still costs one round trip of latency. On a single
Redis the script calls go over a lean pipelined connection (``resp.py``); redis-py
serves everything else (and the cluster).

Time is the Redis server's ``TIME`` (one clock for every switch), except in a store
opened with ``allow_time_override=True``: then each script is given the injected clock's
time, so tests can pass a window instantly. Production code never sets that flag.

Failure handling: every network await runs under a deadline; redis-py errors, OS errors
and deadlines become :class:`~fs_plugin.errors.StorageError` here and nowhere else.
redis-py's own retries are switched off, because re-sending a script after a lost reply
could count a call twice; the connection pool reconnects by itself on the next call once
Redis is back. ``NOSCRIPT`` (the server lost its script cache: restart, failover,
``SCRIPT FLUSH``) is answered by one ``EVAL`` with the full text, which both reloads the
script and runs the batch — safe, since NOSCRIPT means nothing ran.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.counters._lua import SCRIPT, SCRIPT_SHA
from fs_plugin.counters.base import (
    DEFAULT_TIMEOUT_S,
    MAX_BATCH,
    MAX_SHOW,
    CounterStore,
    check_batch,
)
from fs_plugin.counters.keys import DEFAULT_NAMESPACE, Kind, StoredKey, stored_key
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
from fs_plugin.counters.resp import ReplyError, RespConnection, RespTarget, pack_command
from fs_plugin.counters.urls import parse_cluster_url
from fs_plugin.errors import StorageError

__all__ = ["RedisClusterStore", "RedisStore"]

_log = structlog.get_logger(__name__)

_T = TypeVar("_T")

#: Keys asked for per SCAN page (show/reset): a hint that keeps each page's round trip
#: short on a large database.
_SCAN_COUNT = 500

#: Errors of the client library and the OS that mean "the store failed".
_STORE_ERRORS = (RedisError, RedisClusterException, OSError, ReplyError)

_Encoded = list[Any]


def _encode(op: Op) -> _Encoded:
    """The op as the script reads it (``op[1]`` is the kind letter)."""
    match op:
        case Hit():
            limit = -1 if op.limit is None else op.limit
            return ["h", op.window_s, SUB_BUCKETS, limit, op.cost, int(op.peek)]
        case Get():
            return ["c"]
        case Distinct():
            has_member = op.member is not None
            return ["d", op.window_s, op.cap, int(has_member), op.member or ""]
        case Acquire():
            return ["a", op.lease_id, op.limit, op.ttl_s]
        case Release():
            return ["r", op.lease_id]
        case Flag():
            return ["f", op.ttl_s, op.value]
        case GetFlag():
            return ["g"]


def _decode(op: Op, raw: list[Any]) -> Result:
    match op:
        case Hit():
            return HitResult(count=int(raw[0]), over=bool(raw[1]), added=bool(raw[2]))
        case Get():
            return CountResult(int(raw[0]))
        case Distinct():
            return DistinctResult(count=int(raw[0]), added=bool(raw[1]))
        case Acquire():
            return LeaseResult(granted=bool(raw[0]), count=int(raw[1]))
        case Release():
            return ReleaseResult(released=bool(raw[0]), count=int(raw[1]))
        case Flag() | GetFlag():
            if not raw[0]:
                return FlagResult(None, None)
            return FlagResult(str(raw[1]), float(raw[2]))


#: The read-only op ``show`` sends for each kind of stored key.
_SHOW_OPS: dict[Kind, _Encoded] = {
    Kind.RATE: ["c"],
    Kind.FLAG: ["g"],
    Kind.LEASE: ["L"],
    Kind.DISTINCT: ["D"],
}


def _describe(kind: Kind, raw: list[Any]) -> dict[str, object] | None:
    """The ``show`` view of one key (same shape as ``memory._describe``)."""
    match kind:
        case Kind.RATE:
            if not raw[0]:
                return None
            return {"kind": "rate", "window_s": float(raw[1]), "count": int(raw[0])}
        case Kind.FLAG:
            if not raw[0]:
                return None
            return {"kind": "flag", "value": str(raw[1]), "ttl_s": float(raw[2])}
        case Kind.LEASE:
            if not raw[0]:
                return None
            pairs = raw[1:]
            leases = {str(pairs[j]): float(pairs[j + 1]) for j in range(0, len(pairs), 2)}
            return {"kind": "lease", "count": int(raw[0]), "leases": leases}
        case Kind.DISTINCT:
            if not raw[0]:
                return None
            return {"kind": "distinct", "members": int(raw[0])}


def _settle(group: list[_Waiting], exc: BaseException) -> None:
    for _, _, waiter in group:
        if not waiter.done():
            waiter.set_exception(exc)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _no_retry() -> Retry:
    # A script re-sent after a lost reply may run twice (double counting); fail instead.
    return Retry(NoBackoff(), 0)


class _RedisBase(CounterStore):
    def __init__(
        self,
        *,
        clock: Clock | None,
        namespace: str,
        timeout_s: float,
        allow_time_override: bool,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._namespace = namespace
        self._timeout_s = timeout_s
        self._allow_time_override = allow_time_override

    @property
    def namespace(self) -> str:
        return self._namespace

    # -- what differs between one Redis and a cluster ----------------------------------

    async def _eval(self, names: Sequence[str], encoded: Sequence[_Encoded]) -> list[Any]:
        raise NotImplementedError

    async def _run(self, names: Sequence[str], encoded: Sequence[_Encoded]) -> list[list[Any]]:
        raise NotImplementedError

    def _scan_pages(self, match: str, timeout_s: float) -> AsyncGenerator[list[str], None]:
        raise NotImplementedError

    async def _delete(self, names: Sequence[str]) -> int:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------

    async def _deadline(self, work: Awaitable[_T], timeout_s: float | None) -> _T:
        """Await ``work`` under a deadline; translate every store failure."""
        limit = self._timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                return await work
        except TimeoutError as exc:
            raise StorageError(f"counter store did not answer within {limit} s") from exc
        except _STORE_ERRORS as exc:
            raise StorageError(f"counter store failed: {type(exc).__name__}: {exc}") from exc
        except ExceptionGroup as group:
            # Concurrent per-slot scripts: report the store failure, keep anything else.
            matched, rest = group.split(_STORE_ERRORS)
            if rest is not None or matched is None:
                raise
            first = matched.exceptions[0]
            raise StorageError(f"counter store failed: {type(first).__name__}: {first}") from group

    def _script_args(self, encoded: Sequence[_Encoded]) -> tuple[str, str]:
        now = repr(self._clock.time()) if self._allow_time_override else ""
        return now, json.dumps(encoded, separators=(",", ":"), ensure_ascii=False)

    async def _eval_on(
        self, client: Redis | RedisCluster, names: Sequence[str], encoded: Sequence[_Encoded]
    ) -> list[Any]:
        args = self._script_args(encoded)
        try:
            reply = await client.evalsha(SCRIPT_SHA, len(names), *names, *args)
        except NoScriptError:
            _log.info("counters.script_reload", keys=len(names))
            reply = await client.eval(SCRIPT, len(names), *names, *args)
        decoded: list[Any] = json.loads(reply)
        return decoded

    async def execute(
        self, ops: Sequence[Op], *, timeout_s: float | None = None
    ) -> tuple[Result, ...]:
        check_batch(ops)
        if not ops:
            return ()
        names = [stored_key(self._namespace, op) for op in ops]
        encoded = [_encode(op) for op in ops]
        raw = await self._deadline(self._run(names, encoded), timeout_s)
        return tuple(_decode(op, r) for op, r in zip(ops, raw, strict=True))

    async def _keys(self, pattern: str, timeout_s: float | None, limit: int | None) -> list[str]:
        match = _glob_escape(self._namespace) + ":" + pattern
        names: list[str] = []
        pages = self._scan_pages(match, self._timeout_s if timeout_s is None else timeout_s)
        async for page in pages:
            names.extend(page)
            if limit is not None and len(names) >= limit:
                await pages.aclose()
                break
        # SCAN may return a key twice (rehashing); keep the first.
        return list(dict.fromkeys(names))

    async def show(
        self, pattern: str = "*", *, limit: int = MAX_SHOW, timeout_s: float | None = None
    ) -> dict[str, object]:
        found: list[tuple[str, Kind]] = []
        for name in await self._keys(pattern, timeout_s, limit):
            parsed = StoredKey.parse(self._namespace, name)
            if parsed is not None:
                found.append((name, parsed.kind))
        out: dict[str, object] = {}
        for start in range(0, len(found), MAX_BATCH):
            chunk = found[start : start + MAX_BATCH]
            names = [name for name, _ in chunk]
            raw = await self._deadline(
                self._run(names, [_SHOW_OPS[kind] for _, kind in chunk]), timeout_s
            )
            for (name, kind), reply in zip(chunk, raw, strict=True):
                described = _describe(kind, reply)
                if described is not None and len(out) < limit:
                    out[name] = described
        return out

    async def reset(self, pattern: str = "*", *, timeout_s: float | None = None) -> int:
        names = await self._keys(pattern, timeout_s, None)
        deleted = 0
        for start in range(0, len(names), _SCAN_COUNT):
            chunk = names[start : start + _SCAN_COUNT]
            deleted += await self._deadline(self._delete(chunk), timeout_s)
        return deleted


#: One caller's batch waiting to be sent: stored key names, encoded ops, its future.
_Waiting = tuple[list[str], list["_Encoded"], "asyncio.Future[list[Any]]"]


class RedisStore(_RedisBase):
    """One Redis server (or a proxy that speaks to one): ``redis://host:port/db``."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        allow_time_override: bool = False,
    ) -> None:
        super().__init__(
            clock=clock,
            namespace=namespace,
            timeout_s=timeout_s,
            allow_time_override=allow_time_override,
        )
        # Deadlines are asyncio timeouts around each await; a connection whose oldest
        # reply is overdue is dropped (see _send), so no socket timeouts are needed here.
        self._target = RespTarget.from_url(url)
        self._conn: RespConnection | None = None
        self._connecting: asyncio.Task[RespConnection] | None = None
        self._pending: list[_Waiting] = []
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False
        #: Script calls sent and caller batches they carried (their ratio: the coalescing).
        self.coalesce_stats = {"scripts": 0, "batches": 0}

    async def _run(self, names: Sequence[str], encoded: Sequence[_Encoded]) -> list[list[Any]]:
        # Batches handed in during one turn of the event loop go to Redis as ONE script
        # call. Each call still costs one round trip, but under load a round trip carries
        # several calls, so the per-command cost is shared. The script runs the ops in
        # order, so every caller's batch stays atomic (the group is atomic as a whole,
        # which is stronger).
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        self._pending.append((list(names), list(encoded), waiter))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await waiter

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        group: list[_Waiting] = []
        size = 0
        for item in pending:
            if item[2].done():  # its caller gave up (deadline) before it was sent
                continue
            if group and size + len(item[1]) > MAX_BATCH:
                self._send(group)
                group, size = [], 0
            group.append(item)
            size += len(item[1])
        if group:
            self._send(group)

    def _send(self, group: list[_Waiting]) -> None:
        self.coalesce_stats["scripts"] += 1
        self.coalesce_stats["batches"] += len(group)
        names = [name for item in group for name in item[0]]
        args = self._script_args([op for item in group for op in item[1]])
        conn = self._ready()
        if conn is not None:
            self._dispatch(conn, group, names, args, "EVALSHA")
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(group, names, args))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _connect_and_send(self, group: list[_Waiting], names: list[str],
                                args: tuple[str, str]) -> None:
        try:
            conn = await self._connection()
        except Exception as exc:  # handed to every caller, translated in _deadline
            _settle(group, exc)
            return
        self._dispatch(conn, group, names, args, "EVALSHA")

    def _ready(self) -> RespConnection | None:
        """The open connection if it can take a command now, else None. One lost, or
        stuck past the deadline, is dropped: every reply behind the stuck one is late
        too, so the next command gets a new connection."""
        conn = self._conn
        if conn is not None and conn.usable and not conn.overdue(self._timeout_s):
            return conn
        if conn is not None:
            conn.close()
            self._conn = None
        return None

    async def _connection(self) -> RespConnection:
        conn = self._ready()
        if conn is not None:
            return conn
        if self._closed:
            # A flush scheduled before close() runs after it: it must not open a
            # connection nobody would close.
            raise ConnectionError("counter store is closed")
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._open())
        # Shielded: one caller's deadline must not cancel a connect others wait for.
        return await asyncio.shield(self._connecting)

    async def _command(self, *args: str | int) -> Any:
        """One command outside the decision path (scan, delete, ping)."""
        conn = await self._connection()
        return await conn.send(pack_command(*args))

    async def _open(self) -> RespConnection:
        try:
            conn = await RespConnection.open(self._target, timeout_s=self._timeout_s)
        finally:
            self._connecting = None
        self._conn = conn
        return conn

    def _dispatch(self, conn: RespConnection, group: list[_Waiting], names: list[str],
                  args: tuple[str, str], command: str) -> None:
        body = SCRIPT_SHA if command == "EVALSHA" else SCRIPT
        reply = conn.send(pack_command(command, body, len(names), *names, *args))
        reply.add_done_callback(
            lambda done: self._replied(done, conn, group, names, args, command))

    def _replied(self, done: asyncio.Future[Any], conn: RespConnection, group: list[_Waiting],
                 names: list[str], args: tuple[str, str], command: str) -> None:
        exc = done.exception()
        if (isinstance(exc, ReplyError) and command == "EVALSHA"
                and str(exc).startswith("NOSCRIPT")):
            # The server lost its script cache (restart, failover, SCRIPT FLUSH): nothing
            # ran, so one EVAL with the text both loads the script and runs the batch.
            _log.info("counters.script_reload", keys=len(names))
            self._dispatch(conn, group, names, args, "EVAL")
            return
        if exc is not None:
            _settle(group, exc)
            return
        try:
            raw: list[Any] = json.loads(done.result())
        except (TypeError, ValueError) as bad:
            _settle(group, ConnectionError(f"counter script sent an unreadable reply: {bad}"))
            return
        start = 0
        for _, ops, waiter in group:
            if not waiter.done():
                waiter.set_result(raw[start : start + len(ops)])
            start += len(ops)

    async def _scan_pages(self, match: str, timeout_s: float) -> AsyncGenerator[list[str], None]:
        cursor = "0"
        while True:
            cursor, page = await self._deadline(
                self._command("SCAN", cursor, "MATCH", match, "COUNT", _SCAN_COUNT), timeout_s
            )
            yield list(page)
            if cursor == "0":
                return

    async def _delete(self, names: Sequence[str]) -> int:
        if not names:
            return 0
        return int(await self._command("DEL", *names))

    async def ping(self, *, timeout_s: float | None = None) -> None:
        await self._deadline(self._command("PING"), timeout_s)

    async def close(self) -> None:
        self._closed = True
        connecting = [self._connecting] if self._connecting is not None else []
        for task in [*self._sending, *connecting]:
            task.cancel()
        await asyncio.gather(*self._sending, *connecting, return_exceptions=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RedisClusterStore(_RedisBase):
    """A Redis Cluster: ``redis+cluster://host:port,host:port`` (any reachable seed nodes)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        allow_time_override: bool = False,
    ) -> None:
        super().__init__(
            clock=clock,
            namespace=namespace,
            timeout_s=timeout_s,
            allow_time_override=allow_time_override,
        )
        tls, username, password, nodes = parse_cluster_url(url)
        self._client: RedisCluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            decode_responses=True,
            retry=_no_retry(),
            ssl=tls,
            username=username,
            password=password,
        )

    async def _run(self, names: Sequence[str], encoded: Sequence[_Encoded]) -> list[list[Any]]:
        # Group by slot (a script may only touch keys of one slot), keep op order inside
        # each group, run the groups concurrently and put the replies back in op order.
        groups: dict[int, list[int]] = {}
        for index, name in enumerate(names):
            groups.setdefault(key_slot(name.encode()), []).append(index)
        # Learn the topology before sending: redis-py 8.1 loses connections when several
        # commands race to initialise a fresh (or, after an error, reset) cluster client
        # ("Connection closed by server" seen here). A flag check when initialised.
        await self._client.initialize()
        if len(groups) == 1:
            return await self._eval_on(self._client, names, encoded)
        replies: list[list[Any]] = [[] for _ in names]
        async with asyncio.TaskGroup() as tasks:
            running = [
                (
                    indices,
                    tasks.create_task(
                        self._eval_on(
                            self._client,
                            [names[i] for i in indices],
                            [encoded[i] for i in indices],
                        )
                    ),
                )
                for indices in groups.values()
            ]
        for indices, task in running:
            for index, reply in zip(indices, task.result(), strict=True):
                replies[index] = reply
        return replies

    async def _scan_pages(self, match: str, timeout_s: float) -> AsyncGenerator[list[str], None]:
        primaries = await self._deadline(self._primaries(), timeout_s)
        for node in primaries:
            cursor = 0
            while True:
                cursor, page = await self._deadline(
                    node.execute_command("SCAN", cursor, "MATCH", match, "COUNT", _SCAN_COUNT),
                    timeout_s,
                )
                yield [k.decode() if isinstance(k, bytes) else str(k) for k in page]
                if int(cursor) == 0:
                    break

    async def _primaries(self) -> list[ClusterNode]:
        await self._client.initialize()
        return list(self._client.get_primaries())

    async def _delete(self, names: Sequence[str]) -> int:
        if not names:
            return 0
        # redis-py splits a multi-key DEL by slot and sends the parts concurrently.
        return int(await self._client.delete(*names))

    async def ping(self, *, timeout_s: float | None = None) -> None:
        await self._deadline(self._client.ping(), timeout_s)

    async def close(self) -> None:
        await self._client.aclose()

"""A lean pipelined Redis connection for the decision path's one command (``EVALSHA``).

redis-py is the client for everything else (scans, deletes, pings, the cluster). On the
call path it costs ~90 µs of CPU per command — a connection pool with its lock, stream
reader and writer, a task per command — which at 2,000 calls/s is a fifth of a core.
This connection is an :class:`asyncio.Protocol`: a command is packed and written at
once, its reply future waits in a FIFO (Redis answers in order), and hiredis (the
protocol parser redis-py itself uses) turns the bytes back into replies in
``data_received``. No task, no lock, no buffer copies beyond one write.

Failure is loud and total: a lost connection, a protocol error or a reply overdue past
the caller's deadline fails every command in flight with :class:`ConnectionError`
(callers turn it into ``StorageError``) and the connection is not reused; the store
opens a new one for its next command. A reply error (``-NOSCRIPT …``) fails only its own
command, with :class:`ReplyError`.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ResponseError

__all__ = ["ReplyError", "RespConnection", "RespTarget", "pack_command"]

#: A ``-ERR …`` reply: redis-py's own class, so callers see the same error whichever
#: connection carried the command.
ReplyError = ResponseError


@dataclass(frozen=True, slots=True)
class RespTarget:
    """Where and how to connect, from a ``redis://``, ``rediss://`` or ``unix://`` URL."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    verify: bool = True

    @classmethod
    def from_url(cls, url: str) -> RespTarget:
        kw: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py's
        connection_class = getattr(kw.get("connection_class"), "__name__", "")
        return cls(
            host=str(kw.get("host") or "localhost"),
            port=int(kw.get("port") or 6379),
            path=kw.get("path"),
            db=int(kw.get("db") or 0),
            username=kw.get("username"),
            password=kw.get("password"),
            tls=connection_class == "SSLConnection",
            verify=str(kw.get("ssl_cert_reqs", "required")).lower() != "none",
        )


def _bulk(value: str | bytes | int | float) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack_command(*args: str | bytes | int | float) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n%s" % (len(args), b"".join(_bulk(a) for a in args))


class RespConnection(asyncio.Protocol):
    """One pipelined connection. Use :meth:`open`; then :meth:`send` from the loop."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=ReplyError, encoding="utf-8", errors="strict")
        self._waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, target: RespTarget, *, timeout_s: float) -> RespConnection:
        """Connect, authenticate and select the database; raises ``OSError``,
        ``ConnectionError``, :class:`ReplyError` or ``TimeoutError``."""
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if target.tls:
            context = ssl.create_default_context()
            if not target.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        async with asyncio.timeout(timeout_s):
            if target.path is not None:
                _, conn = await loop.create_unix_connection(cls, target.path, ssl=context)
            else:
                _, conn = await loop.create_connection(cls, target.host, target.port,
                                                       ssl=context)
            try:
                replies = []
                if target.password is not None:
                    auth = (target.username, target.password) if target.username else (
                        target.password,)
                    replies.append(conn.send(pack_command("AUTH", *auth)))
                if target.db:
                    replies.append(conn.send(pack_command("SELECT", target.db)))
                for reply in replies:
                    await reply
            except BaseException:
                conn.close()
                for reply in replies:  # read, so none is reported as never retrieved
                    if reply.done() and not reply.cancelled():
                        reply.exception()
                raise
        return conn

    # -- use ----------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return self._lost is None and self._transport is not None

    def send(self, wire: bytes) -> asyncio.Future[Any]:
        """Write one packed command; its reply (or error) comes in the future."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._lost is not None or self._transport is None:
            future.set_exception(ConnectionError(f"redis connection lost: {self._lost}"))
            return future
        self._waiting.append((time.monotonic(), future))
        self._transport.write(wire)
        return future

    def overdue(self, limit_s: float) -> bool:
        """The oldest reply has been awaited longer than ``limit_s``: the server or the
        path to it is stuck, and everything behind it in the pipe with it."""
        return bool(self._waiting) and time.monotonic() - self._waiting[0][0] > limit_s

    def close(self) -> None:
        self._drop(ConnectionError("redis connection closed"))

    def _drop(self, exc: Exception) -> None:
        """Fail everything in flight with ``exc`` and cut the connection."""
        self._fail(exc)
        if self._transport is not None:
            self._transport.abort()

    # -- protocol callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._drop(ConnectionError(f"redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiting:
                self._drop(ConnectionError("redis sent a reply nobody asked for"))
                return
            _, future = waiting.popleft()
            if future.done():
                continue  # its caller is gone; the reply still had to be read off the pipe
            if isinstance(reply, ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"redis connection lost: {exc or 'closed by the server'}"))

    def _fail(self, exc: Exception) -> None:
        if self._lost is None:
            self._lost = exc
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(exc)

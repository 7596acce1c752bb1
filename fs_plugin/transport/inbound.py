"""The inbound ESL client: one shared connection to FreeSWITCH's event socket (:8021).

It authenticates, subscribes (``event json``) to just the events the plug-in needs
— ``CHANNEL_HANGUP_COMPLETE`` for outcomes, ``BACKGROUND_JOB`` for bgapi results,
``HEARTBEAT`` for the watchdog — and hands outcomes to a hook. It reconnects with
exponential backoff and jitter, and treats a silent connection (no heartbeat) as
dead.

``api`` is synchronous on the ESL connection: replies come back in order. Each
caller holds a FIFO slot until its reply arrives; a caller cancelled while waiting
leaves its slot in place, so its reply is consumed and dropped instead of being
handed to the next caller. ``bgapi`` carries our own Job-UUID, so its result is
matched by id, never by order. Nothing is ever retried: neither command is known
to be idempotent.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fs_plugin import esl
from fs_plugin.errors import CommandFailed, FsPluginError, LocalProtocolError, ProtocolError
from fs_plugin.screening.model import Outcome, outcome_from_event
from fs_plugin.tasks import cancel_and_wait

__all__ = ["InboundClient", "InboundSettings", "NotConnected"]

log = structlog.get_logger(__name__)

#: The value a local protocol error quotes at its end (``…: 'value'``).
_QUOTED_VALUE = re.compile(r": ['\"].*\Z", re.DOTALL)


class NotConnected(FsPluginError):
    """The inbound connection is not up (yet, or any more)."""


@dataclass(frozen=True, slots=True)
class InboundSettings:
    host: str = "127.0.0.1"
    port: int = 8021
    password: str = ""
    events: tuple[str, ...] = ("CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB", "HEARTBEAT")
    connect_timeout_s: float = 5.0
    #: FreeSWITCH sends HEARTBEAT every 20 s by default; three missed means the
    #: connection is dead even if TCP has not noticed.
    heartbeat_timeout_s: float = 65.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    api_timeout_s: float = 10.0
    #: Events waiting for the outcome hook. FreeSWITCH itself drops a connection after
    #: 500 lost events, so we must keep reading; beyond this bound we drop the oldest
    #: and count it rather than stall the socket.
    queue_max: int = 10000
    read_size: int = 65536


class InboundClient:
    def __init__(
        self,
        settings: InboundSettings,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_event: Callable[[esl.EslEvent], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._on_outcome = on_outcome
        self._on_event = on_event
        self._rng = rng or random.Random()
        self._writer: asyncio.StreamWriter | None = None
        self._conn: esl.Connection | None = None
        self._replies: deque[asyncio.Future[object]] = deque()
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._api_lock = asyncio.Lock()
        self._queue: asyncio.Queue[esl.EslEvent] = asyncio.Queue(settings.queue_max)
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self.stats = {"connects": 0, "events": 0, "dropped": 0, "outcomes": 0, "auth_failures": 0}

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="fsp-inbound")
        self._dispatcher = loop.create_task(self._dispatch(), name="fsp-inbound-dispatch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task, self._dispatcher)
        self._task = self._dispatcher = None

    # -- commands -------------------------------------------------------------

    async def api(self, command: str, timeout: float | None = None) -> str:
        """Run ``api <command>``; return the body; raise CommandFailed on ``-ERR``."""
        timeout = timeout if timeout is not None else self.settings.api_timeout_s
        async with asyncio.timeout(timeout), self._api_lock:
            reply = await self._request(esl.Api(command))
        if isinstance(reply, esl.CommandReply):
            # A socket without `full` control answers `api` with a command/reply -ERR
            # (capture out_sync_socket_not_full).
            raise CommandFailed(f"api {command}", reply.reply_text.removeprefix("-ERR").strip())
        assert isinstance(reply, esl.ApiResponse)
        if not reply.ok:
            raise CommandFailed(f"api {command}", reply.body.removeprefix("-ERR").strip())
        return reply.body

    async def bgapi(self, command: str, timeout: float | None = None) -> str:
        """Run ``bgapi`` with our own Job-UUID; return the BACKGROUND_JOB result body."""
        timeout = timeout if timeout is not None else self.settings.api_timeout_s
        job_uuid = str(uuidlib.uuid4())
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._jobs[job_uuid] = result
        try:
            async with asyncio.timeout(timeout):
                reply = await self._request(esl.BgApi(command, job_uuid))
                assert isinstance(reply, esl.CommandReply)
                if not reply.ok:
                    raise CommandFailed(f"bgapi {command}", reply.reply_text)
                body = await result
        finally:
            self._jobs.pop(job_uuid, None)
        if body.startswith("-ERR"):
            raise CommandFailed(f"bgapi {command}", body.removeprefix("-ERR").strip())
        return body

    async def _request(self, command: esl.Api | esl.BgApi) -> object:
        if self._writer is None or self._conn is None or not self.connected:
            raise NotConnected("inbound ESL connection is down")
        slot: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._replies.append(slot)
        self._writer.write(self._conn.send(command))
        return await slot

    # -- connection loop ------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.backoff_initial_s
        while True:
            try:
                await self._session()
                delay = self.settings.backoff_initial_s
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, ProtocolError, FsPluginError) as exc:
                log.warning("inbound_disconnected", error=type(exc).__name__,
                            detail=self._detail(exc))
            finally:
                self._teardown()
            # Full jitter: many switches' controllers reconnecting at once must spread out.
            await asyncio.sleep(self._rng.uniform(0, delay))
            delay = min(delay * 2, self.settings.backoff_max_s)

    def _detail(self, exc: BaseException) -> str:
        """``str(exc)`` for the log, without the password: the codec quotes (a part of)
        a value it refuses to send, and the only such value here is ``auth``'s."""
        detail = str(exc)
        if isinstance(exc, LocalProtocolError):
            detail = _QUOTED_VALUE.sub(": <withheld>", detail)
        password = self.settings.password
        if password:
            detail = detail.replace(password, "***")
        return detail

    def _teardown(self) -> None:
        self._connected.clear()
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._conn = None
        while self._replies:
            slot = self._replies.popleft()
            if not slot.done():
                slot.set_exception(NotConnected("inbound ESL connection lost"))
        for job in self._jobs.values():
            if not job.done():
                job.set_exception(NotConnected("inbound ESL connection lost"))

    async def _session(self) -> None:
        s = self.settings
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # meets the inner await's completion, and stop() then waits for ever on this task.
        async with asyncio.timeout(s.connect_timeout_s):
            reader, writer = await asyncio.open_connection(s.host, s.port)
        conn = esl.Connection(esl.Role.INBOUND)
        self._writer, self._conn = writer, conn

        async def next_event(timeout: float) -> object:
            while True:
                event = conn.next_event()
                if event is not esl.NEED_DATA:
                    return event
                async with asyncio.timeout(timeout):
                    data = await reader.read(s.read_size)
                conn.receive_data(data)

        first = await next_event(s.connect_timeout_s)
        if isinstance(first, esl.RudeRejection):
            raise FsPluginError(f"refused by the switch's ACL: {first.text.strip()}")
        if not isinstance(first, esl.AuthRequest):
            raise FsPluginError(f"expected auth/request, got {type(first).__name__}")
        writer.write(conn.send(esl.Auth(s.password)))
        reply = await next_event(s.connect_timeout_s)
        if not (isinstance(reply, esl.CommandReply) and reply.ok):
            self.stats["auth_failures"] += 1
            raise FsPluginError("ESL authentication failed (check the event socket password)")
        writer.write(conn.send(esl.EventSubscribe("json", tuple(s.events))))
        reply = await next_event(s.connect_timeout_s)
        if not (isinstance(reply, esl.CommandReply) and reply.ok):
            raise FsPluginError("event subscription refused")
        self.stats["connects"] += 1
        self._connected.set()
        log.info("inbound_connected", host=s.host, port=s.port, events=list(s.events))
        while True:
            event = await next_event(s.heartbeat_timeout_s)
            if isinstance(event, esl.ConnectionClosed):
                raise ConnectionResetError("switch closed the event socket")
            if isinstance(event, esl.DisconnectNotice):
                continue
            if isinstance(event, esl.CommandReply | esl.ApiResponse):
                self._resolve_reply(event)
            elif isinstance(event, esl.EslEvent):
                self._on_esl_event(event)

    def _resolve_reply(self, reply: object) -> None:
        if not self._replies:
            log.warning("inbound_unsolicited_reply", kind=type(reply).__name__)
            return
        slot = self._replies.popleft()
        if not slot.done():  # a cancelled caller's reply is dropped here
            slot.set_result(reply)

    def _on_esl_event(self, event: esl.EslEvent) -> None:
        self.stats["events"] += 1
        if event.name == "HEARTBEAT":
            return
        if event.name == "BACKGROUND_JOB":
            job = self._jobs.get(event.headers.get("Job-UUID", ""))
            if job is not None and not job.done():
                job.set_result(event.body or "")
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.stats["dropped"] += 1
            log.error("inbound_event_dropped", reason="queue_full", name=event.name)
        self._queue.put_nowait(event)

    async def _dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                if self._on_event is not None:
                    self._on_event(event)
                if event.name == "CHANNEL_HANGUP_COMPLETE" and self._on_outcome is not None:
                    self.stats["outcomes"] += 1
                    self._on_outcome(outcome_from_event(event.headers))
            except Exception:
                log.exception("inbound_hook_failed", name=event.name)



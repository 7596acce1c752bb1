"""The outbound ESL server: FreeSWITCH's ``socket`` app connects here, once per call.

One connection = one call leg: ``connect`` → channel data → decide under a deadline →
the whole decision plus ``exit`` in one write → wait (bounded) for FreeSWITCH to
let go. No ``linger``, no event subscription (DESIGN.md: per-connection
subscriptions cost the switch work for every event).

Failure handling, per connection and never beyond it:
- garbage or a half frame: logged, this connection closed, the others unaffected;
- FreeSWITCH hanging up mid-decision (reset, EOF): logged at info, no exception leaks;
- the decision missing its deadline or raising: the trunk's ``on_error`` fallback
  is sent instead, so the switch still gets an answer inside the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

import structlog

from fs_plugin import esl
from fs_plugin.errors import LocalProtocolError, ProtocolError
from fs_plugin.screening.facts import facts_from_channel_data
from fs_plugin.screening.model import CallFacts, Decision
from fs_plugin.transport.actions import decision_commands
from fs_plugin.transport.health import HealthMonitor, HealthSettings

__all__ = ["DecisionRecord", "OutboundServer", "OutboundSettings"]

log = structlog.get_logger(__name__)

#: The largest frame accepted on an outbound socket. FreeSWITCH sends it the channel data
#: (headers only, bounded by the codec's header limit), command replies (no body) and a
#: disconnect notice (a body of ~70 bytes); no events, since we subscribe to none. The
#: codec's default (16 MiB, sized for ``api`` responses on the inbound socket) would let
#: a peer park megabytes per connection until the channel-data timeout.
MAX_FRAME_SIZE = 64 * 1024

DecideFn = Callable[[CallFacts], Awaitable[Decision]]
FallbackFn = Callable[[CallFacts, str], Decision]


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    host: str = "127.0.0.1"
    port: int = 8084
    #: Budget for the decision itself (counter round trip included). Post-dial delay
    #: budget on a trunk is a few hundred ms; the decision must be a small part of it.
    decision_deadline_s: float = 0.25
    #: FreeSWITCH sends the channel data at once after ``connect``; a peer that does
    #: not is not a working switch.
    channel_data_timeout_s: float = 5.0
    #: After our ``exit`` FreeSWITCH answers and closes at once; don't hold a slot longer.
    close_timeout_s: float = 5.0
    #: Networks allowed to connect (the switch). Loopback by default (DESIGN: ESL only on
    #: loopback or a configured ACL).
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    #: Bytes read per ``read`` call; the channel data of a call is ~5–6 KiB.
    read_size: int = 65536
    backlog: int = 1024


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the server hands to its listeners (journal, NOC bus, metrics) after each call."""

    facts: CallFacts
    decision: Decision
    latency_s: float
    decided_at: float


class _Call(asyncio.Protocol):
    """One FreeSWITCH connection, driven by the sans-I/O codec.

    A protocol rather than streams: the loop calls ``data_received`` directly, so a call
    costs one task (the decision) instead of a task, a reader, a writer and a wrapper per
    await — on one core that is the difference between ~1,500 and well over 2,000 calls/s.
    """

    def __init__(self, server: OutboundServer) -> None:
        self.server = server
        self.conn = esl.Connection(esl.Role.OUTBOUND, max_frame_size=MAX_FRAME_SIZE)
        self.transport: asyncio.Transport | None = None
        self.uuid: str | None = None
        self.decision_task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.done = asyncio.get_running_loop().create_future()

    # -- protocol callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = tcp = cast(asyncio.Transport, transport)
        server = self.server
        if not server._peer_allowed(tcp.get_extra_info("peername")):
            server.stats["refused_peers"] += 1
            log.warning("outbound_peer_refused", peer=str(tcp.get_extra_info("peername")))
            tcp.close()
            return
        server._active.add(self)
        tcp.write(self.conn.send(esl.Connect()))
        self._arm(server.settings.channel_data_timeout_s, "outbound_peer_timeout")

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._feed(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.decision_task is not None and not self.decision_task.done():
            # FreeSWITCH hung up (caller cancelled, switch restarted) while we decided.
            log.info("outbound_peer_gone", call_uuid=self.uuid)
        self.server._active.discard(self)
        if not self.done.done():
            self.done.set_result(None)

    # -- codec ----------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        try:
            self.conn.receive_data(data)
            while True:
                event = self.conn.next_event()
                if event is esl.NEED_DATA:
                    return
                if isinstance(event, esl.ConnectionClosed):
                    self._close()
                    return
                if isinstance(event, esl.ChannelData) and self.uuid is None:
                    self._on_channel_data(event)
                elif isinstance(event, esl.CommandReply) and not event.ok:
                    log.warning("outbound_command_refused", call_uuid=self.uuid,
                                reply=event.reply_text)
        except ProtocolError as exc:
            self.server.stats["errors"] += 1
            log.error("outbound_protocol_error", call_uuid=self.uuid, error=str(exc))
            self._close()

    def _on_channel_data(self, data: esl.ChannelData) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.uuid = data.unique_id
        self.decision_task = asyncio.get_running_loop().create_task(self._answer(data))
        self.decision_task.add_done_callback(_log_task_failure)

    async def _answer(self, data: esl.ChannelData) -> None:
        server = self.server
        started = time.perf_counter()
        try:
            facts = facts_from_channel_data(data.headers)
        except Exception:
            # Unusable channel data: say nothing, so the dialplan's own fail-safe decides.
            server.stats["errors"] += 1
            log.exception("outbound_bad_channel_data", call_uuid=data.unique_id)
            if self._write([esl.Exit()]):
                self._arm(server.settings.close_timeout_s, "outbound_close_timeout")
            return
        uuid = facts.uuid  # bound per log call: binding a logger per call costs more
        try:
            async with asyncio.timeout(server.settings.decision_deadline_s):
                decision = await server._decide(facts)
        except TimeoutError:
            server.stats["fallbacks"] += 1
            decision = server._fallback(facts, "decision deadline exceeded")
            log.warning("decision_deadline", call_uuid=uuid,
                        deadline_ms=server.settings.decision_deadline_s * 1e3)
        except Exception as exc:
            server.stats["fallbacks"] += 1
            decision = server._fallback(facts, f"internal error: {type(exc).__name__}")
            log.exception("decision_failed", call_uuid=uuid)
        sent: bool | None
        try:
            sent = self._write([*decision_commands(decision), esl.Exit()])
        except LocalProtocolError as exc:
            sent = self._write_unencodable(decision, uuid, exc)
        if sent is None:
            return
        if not sent:
            log.info("call_gone_before_decision", call_uuid=uuid,
                     verdict=decision.verdict.value)
            return
        server.stats["calls"] += 1
        record = DecisionRecord(facts, decision, time.perf_counter() - started, time.time())
        for listener in server._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("decision_listener_failed", call_uuid=uuid)
        # FreeSWITCH answers and closes at once; don't hold the slot if it does not.
        self._arm(server.settings.close_timeout_s, "outbound_close_timeout")

    def _write(self, commands: list[esl.SendMsg | esl.Exit]) -> bool:
        """Send the whole decision in one write; False when the channel is already gone.

        Raises ``LocalProtocolError`` (reason ``BAD_VALUE``) when a value cannot go on
        the wire at all: that is not the channel going away, and must not be taken for it.
        """
        if self.transport is None or self.transport.is_closing():
            return False
        try:
            wire = b"".join(self.conn.send(c) for c in commands)
        except LocalProtocolError as exc:
            if getattr(exc, "reason", None) is esl.Reason.BAD_VALUE:
                raise
            # FreeSWITCH already said goodbye (the caller hung up while we decided).
            return False
        self.transport.write(wire)
        return True

    def _write_unencodable(
        self, decision: Decision, uuid: str, exc: LocalProtocolError
    ) -> bool | None:
        """The decision holds a value the wire cannot carry (a NUL that a caller's ``%00``
        put in a reason): send it with its free text scrubbed, so the verdict still holds;
        failing that, only ``exit`` (the dialplan's fail-safe decides). Either way the
        switch is answered and the close timer runs, instead of the channel waiting for a
        write that never comes. None when only ``exit`` (or nothing) went out.

        Rare path only. The commands queued before the failing one stay pending in the
        codec; FreeSWITCH closes after ``exit`` and nothing else reads them.
        """
        server = self.server
        server.stats["errors"] += 1
        log.error("decision_unencodable", call_uuid=uuid, error=str(exc))
        scrubbed = dataclasses.replace(
            decision,
            reason=_scrub(decision.reason),
            label=None if decision.label is None else _scrub(decision.label),
        )
        try:
            return self._write([*decision_commands(scrubbed), esl.Exit()])
        except LocalProtocolError:
            pass
        if self._write([esl.Exit()]):
            self._arm(server.settings.close_timeout_s, "outbound_close_timeout")
        return None

    def _arm(self, delay: float, event: str) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = asyncio.get_running_loop().call_later(delay, self._expire, event)

    def _expire(self, event: str) -> None:
        self.timer = None
        log.warning(event, call_uuid=self.uuid)
        self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class OutboundServer:
    def __init__(
        self,
        settings: OutboundSettings,
        decide: DecideFn,
        fallback: FallbackFn,
        *,
        health: HealthSettings | None = None,
        listeners: Sequence[Callable[[DecisionRecord], None]] = (),
    ) -> None:
        self.settings = settings
        self._decide = decide
        self._fallback = fallback
        self._listeners = list(listeners)
        self._allow = tuple(ipaddress.ip_network(n) for n in settings.allow)
        self._peer_verdicts: dict[str, bool] = {}
        self._server: asyncio.Server | None = None
        #: Connections in flight (FreeSWITCH channels waiting for, or receiving, a verdict).
        self._active: set[_Call] = set()
        self._stopping = False
        #: Listening again after an overload pause (binding is a coroutine).
        self._relisten: asyncio.Task[None] | None = None
        self.health = HealthMonitor(health or HealthSettings(), self.inflight, self._set_accepting)
        self.bound_port: int | None = None
        self.stats = {"calls": 0, "fallbacks": 0, "errors": 0, "refused_peers": 0}

    def add_listener(self, fn: Callable[[DecisionRecord], None]) -> None:
        self._listeners.append(fn)

    def inflight(self) -> int:
        return len(self._active)

    @property
    def accepting(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        await self._listen()
        self.health.start()

    async def _listen(self) -> None:
        s = self.settings
        # A fixed port once bound: resuming after overload must come back on the same port.
        port = self.bound_port if self.bound_port is not None else s.port
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Call(self), s.host, port, reuse_address=True, backlog=s.backlog
        )
        if self._stopping:
            # stop() ran while this resumption was binding: listen no more.
            server.close()
            return
        self._server = server
        sock = server.sockets[0]
        self.bound_port = int(sock.getsockname()[1])
        log.info("outbound_listening", host=s.host, port=self.bound_port)

    def _set_accepting(self, accept: bool) -> None:
        if self._stopping:
            return
        if not accept and self._server is not None:
            # Closing the listening socket makes the kernel refuse new connections, so the
            # switch's connect fails at once and the dialplan fallback runs (a listening
            # socket we do not accept from would let connects complete and then hang).
            self._server.close()
            self._server = None
            log.warning("outbound_paused", reason="overload")
        elif accept and self._server is None:
            if self._relisten is not None and not self._relisten.done():
                return  # already binding
            task = asyncio.get_running_loop().create_task(self._listen())
            task.add_done_callback(_log_task_failure)
            self._relisten = task

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let in-flight calls finish (up to ``grace_s``), then cancel the rest."""
        self._stopping = True
        await self.health.stop()
        if self._relisten is not None and not self._relisten.done():
            # A resumption still binding: let it finish; it sees _stopping and closes.
            await asyncio.wait([self._relisten])
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._active:
            calls = set(self._active)
            _done, pending = await asyncio.wait({c.done for c in calls}, timeout=grace_s)
            for call in calls:
                if not call.done.done():
                    call.abort()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        log.info("outbound_stopped", calls=self.stats["calls"])

    def _peer_allowed(self, peer: object) -> bool:
        if not isinstance(peer, tuple) or not peer:
            return False
        host = str(peer[0])
        known = self._peer_verdicts.get(host)
        if known is not None:
            return known
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        allowed = any(addr in net for net in self._allow)
        # A switch connects from one or two addresses; parsing them on every call is
        # measurable. Bounded, so a scan from many addresses cannot grow it.
        if len(self._peer_verdicts) < 1024:
            self._peer_verdicts[host] = allowed
        return allowed


def _scrub(text: str) -> str:
    """Free text made sendable: control characters (NUL above all) become U+FFFD."""
    return "".join("\ufffd" if ch < " " or ch == "\x7f" else ch for ch in text)


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("outbound_task_failed", error=repr(task.exception()))

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
import ipaddress
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from fs_plugin import esl
from fs_plugin.errors import LocalProtocolError, ProtocolError
from fs_plugin.screening.facts import facts_from_channel_data
from fs_plugin.screening.model import CallFacts, Decision
from fs_plugin.transport.actions import decision_commands
from fs_plugin.transport.health import HealthMonitor, HealthSettings

__all__ = ["DecisionRecord", "OutboundServer", "OutboundSettings"]

log = structlog.get_logger(__name__)

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


class _Peer:
    """One FreeSWITCH connection: the read → feed → drain loop around the sans-I/O codec."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, read_size: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = esl.Connection(esl.Role.OUTBOUND)
        self.read_size = read_size

    async def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not esl.NEED_DATA:
                return event
            data = await self.reader.read(self.read_size)
            self.conn.receive_data(data)


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
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.health = HealthMonitor(health or HealthSettings(), self.inflight, self._set_accepting)
        self.bound_port: int | None = None
        self.stats = {"calls": 0, "fallbacks": 0, "errors": 0, "refused_peers": 0}

    def add_listener(self, fn: Callable[[DecisionRecord], None]) -> None:
        self._listeners.append(fn)

    def inflight(self) -> int:
        return len(self._tasks)

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
        self._server = await asyncio.start_server(
            self._on_connection, s.host, port, reuse_address=True, backlog=s.backlog
        )
        sock = self._server.sockets[0]
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
            task = asyncio.get_running_loop().create_task(self._listen())
            task.add_done_callback(_log_task_failure)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let in-flight calls finish (up to ``grace_s``), then cancel the rest."""
        self._stopping = True
        await self.health.stop()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        log.info("outbound_stopped", calls=self.stats["calls"])

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        peer = writer.get_extra_info("peername")
        if not peer:
            return False
        try:
            addr = ipaddress.ip_address(peer[0])
        except ValueError:
            return False
        return any(addr in net for net in self._allow)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._peer_allowed(writer):
            self.stats["refused_peers"] += 1
            log.warning("outbound_peer_refused", peer=str(writer.get_extra_info("peername")))
            writer.close()
            return
        peer = _Peer(reader, writer, self.settings.read_size)
        uuid = None
        try:
            writer.write(peer.conn.send(esl.Connect()))
            # asyncio.timeout, not wait_for: wait_for wraps the await in a new task,
            # which costs more than the rest of a call's socket work.
            async with asyncio.timeout(self.settings.channel_data_timeout_s):
                event = await peer.next_event()
            if not isinstance(event, esl.ChannelData):
                log.warning("outbound_no_channel_data", got=type(event).__name__)
                return
            uuid = event.unique_id
            await self._answer(peer, event)
        except ProtocolError as exc:
            self.stats["errors"] += 1
            log.error("outbound_protocol_error", call_uuid=uuid, error=str(exc))
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            # FreeSWITCH hung up (caller cancelled, switch restarted) while we were deciding.
            log.info("outbound_peer_gone", call_uuid=uuid, error=type(exc).__name__)
        except TimeoutError:
            log.warning("outbound_peer_timeout", call_uuid=uuid)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, peer: _Peer, data: esl.ChannelData) -> None:
        started = time.perf_counter()
        try:
            facts = facts_from_channel_data(data.headers)
        except Exception:
            # Unusable channel data: say nothing, so the dialplan's own fail-safe decides.
            self.stats["errors"] += 1
            log.exception("outbound_bad_channel_data", call_uuid=data.unique_id)
            peer.writer.write(peer.conn.send(esl.Exit()))
            return
        log_ = log.bind(call_uuid=facts.uuid)
        try:
            async with asyncio.timeout(self.settings.decision_deadline_s):
                decision = await self._decide(facts)
        except TimeoutError:
            self.stats["fallbacks"] += 1
            decision = self._fallback(facts, "decision deadline exceeded")
            log_.warning("decision_deadline", deadline_ms=self.settings.decision_deadline_s * 1e3)
        except Exception as exc:
            self.stats["fallbacks"] += 1
            decision = self._fallback(facts, f"internal error: {type(exc).__name__}")
            log_.exception("decision_failed")
        commands: list[esl.SendMsg | esl.Exit] = [*decision_commands(decision), esl.Exit()]
        try:
            wire = b"".join(peer.conn.send(c) for c in commands)
        except LocalProtocolError:
            # FreeSWITCH already said goodbye (the caller hung up while we decided):
            # there is no channel left to act on.
            log_.info("call_gone_before_decision", verdict=decision.verdict.value)
            return
        peer.writer.write(wire)
        latency = time.perf_counter() - started
        self.stats["calls"] += 1
        record = DecisionRecord(facts, decision, latency, time.time())
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log_.exception("decision_listener_failed")
        await peer.writer.drain()
        async with asyncio.timeout(self.settings.close_timeout_s):
            await self._drain_replies(peer)

    async def _drain_replies(self, peer: _Peer) -> None:
        """Read FreeSWITCH's replies until it lets go of the socket."""
        while True:
            event = await peer.next_event()
            if isinstance(event, esl.ConnectionClosed):
                return
            if isinstance(event, esl.CommandReply) and not event.ok:
                log.warning("outbound_command_refused", reply=event.reply_text)


def _log_task_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("outbound_relisten_failed", error=str(task.exception()))

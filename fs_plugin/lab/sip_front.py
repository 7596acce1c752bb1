"""The lab switch's SIP side: a small UAS on loopback that SIPp callers dial.

It plays the part of sofia on an inbound trunk profile, for the SIP requests a
test caller sends (INVITE, ACK, CANCEL, BYE, OPTIONS), over UDP and TCP on the
same port:

- every new INVITE gets ``100 Trying`` at once, is turned into the channel
  variables sofia sets (``sip_from_user``, ``sip_P-Asserted-Identity`` — the
  user part only, as sofia keeps it —, ``sip_h_Diversion``, ``sip_network_ip``,
  ``sip_call_id``, the From tag, the transport…) and screened by the lab switch's
  outbound-socket exchange with the controller;
- a call the controller (or the dialplan's fail-safe) hangs up gets the final
  response FreeSWITCH sends for that cause (``fs_plugin.causes``): 607 with
  ``Reason: SIP;cause=819;text="UNWANTED"``, 603/403/503… with a Q.850 Reason,
  retransmitted over UDP until the caller's ACK;
- a call let through rings (180), is answered after ``answer_after_s`` (200 with
  SDP, retransmitted until ACK) and lasts until the caller's BYE; a CANCEL before
  the answer gets 200 and the INVITE 487, as sofia does (fixture
  ``in_ring_once_cancel_json``);
- when the call is over, ``CHANNEL_HANGUP_COMPLETE`` goes out on the switch's
  event socket with the real progress / answer / end times and sofia's hangup
  disposition (``send_refuse``, ``recv_cancel``, ``recv_bye``).

The trunk of a call is the lab's ``X-Fsp-Trunk`` header when present, else the
trunk bound to the listening port the INVITE reached, else ``default_trunk``:
what a real switch gets from the profile or gateway the call arrives on. Its
``fsp_on_error`` comes from ``on_error_by_trunk`` (the policy's trunks).

Not a general SIP stack: no authentication, no re-INVITE, no media, no UAS-side
BYE (an answered call the caller never hangs up is closed after ``max_call_s``
and reported as ``send_bye``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
import uuid as uuidlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, cast

import structlog

from fs_plugin.causes import cause_by_name
from fs_plugin.clock import Clock, SystemClock
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.sofia import ChannelIdentity
from fs_plugin.lab.switch import CallResult, LabSwitch
from fs_plugin.replay.sip import (
    ParseFailure,
    SipMessage,
    SipParseError,
    StreamFramer,
    parse_message,
    parse_name_addr,
    uri_user,
)
from fs_plugin.tasks import cancel_and_wait

__all__ = ["SipCallRecord", "SipFront", "SipFrontSettings", "SipListener"]

log = structlog.get_logger(__name__)

USER_AGENT = "fsp-lab-switch (FreeSWITCH-mod_sofia/1.10.12 emulation)"
_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
#: The lab's own header naming the trunk of a call (a real switch knows it from the
#: profile or gateway; SIPp has no other way to say it).
TRUNK_HEADER = "x-fsp-trunk"
_REASON_PHRASES = {100: "Trying", 180: "Ringing", 183: "Session Progress", 200: "OK",
                   400: "Bad Request", 481: "Call/Transaction Does Not Exist",
                   487: "Request Terminated", 501: "Not Implemented",
                   503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class SipListener:
    """One listening port (UDP and TCP); ``trunk`` is the trunk of calls arriving on it."""

    port: int = 0
    trunk: str | None = None


@dataclass(frozen=True, slots=True)
class SipFrontSettings:
    host: str = "127.0.0.1"
    listeners: tuple[SipListener, ...] = (SipListener(),)
    tcp: bool = True
    default_trunk: str = "ent-1"
    #: The dialplan's ``fsp_on_error`` per trunk (``pass`` | ``block``); default ``pass``.
    on_error_by_trunk: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: sofia profile name the calls arrive on (``sofia_profile_name``).
    profile: str = "trunks"
    #: Ring time of a call let through before the callee answers. A ring-once caller
    #: cancels after about a second, so this must be comfortably longer.
    answer_after_s: float = 2.0
    #: An answered call the caller never hangs up is closed after this.
    max_call_s: float = 60.0
    #: RFC 3261 T1: first retransmission interval of final responses over UDP.
    t1_s: float = 0.5
    #: Give up waiting for an ACK after this (RFC 3261 Timer H is 64·T1 = 32 s; a lab
    #: caller on loopback ACKs in microseconds, so a shorter bound frees the call sooner).
    ack_timeout_s: float = 8.0
    #: Dialogs in progress. Beyond this a new INVITE gets 503 at once: a runaway
    #: caller cannot grow memory without bound.
    max_calls: int = 2000
    #: Finished calls kept for :attr:`SipFront.records` (oldest dropped first).
    max_records: int = 100_000


@dataclass(frozen=True, slots=True)
class SipCallRecord:
    """One finished SIP call: what the caller was sent and what the controller decided."""

    call_id: str
    transport: str
    caller: str
    callee: str
    trunk: str
    #: The final response to the INVITE the caller was sent.
    sip_status: int
    #: Provisional responses sent besides 100 (180, 183).
    provisional: tuple[int, ...]
    cancelled: bool
    answered: bool
    #: Screening result (``None`` when the call was cancelled before screening ended
    #: and the controller's answer never came).
    result: CallResult | None
    hangup_cause: str
    disposition: str

    @property
    def verdict(self) -> str | None:
        return None if self.result is None else self.result.verdict

    @property
    def rule(self) -> str | None:
        return None if self.result is None else self.result.rule


_Send = Callable[[bytes], None]


@dataclass(slots=True)
class _Dialog:
    call_id: str
    invite: SipMessage
    send: _Send
    reliable: bool
    transport: str
    trunk: str
    to_tag: str
    local_port: int
    created_us: int
    call: LabCall
    identity: ChannelIdentity
    #: Last response to the INVITE, re-sent on a retransmitted INVITE.
    last_response: bytes = b""
    final_status: int | None = None
    provisional: list[int] = field(default_factory=list)
    progress_us: int = 0
    answer_us: int = 0
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    bye: asyncio.Event = field(default_factory=asyncio.Event)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, front: SipFront, listener: SipListener) -> None:
        self.front = front
        self.listener = listener
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        transport = self.transport
        if transport is None:
            return
        host, port = str(addr[0]), int(addr[1])

        def send(payload: bytes) -> None:
            transport.sendto(payload, (host, port))

        self.front.handle(data, send, reliable=False, transport="udp", peer=(host, port),
                          listener=self.listener)


class SipFront:
    """The SIP endpoint of the lab switch. ``start()`` binds; ``stop()`` ends every call."""

    def __init__(
        self,
        switch: LabSwitch,
        settings: SipFrontSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.switch = switch
        self.settings = settings or SipFrontSettings()
        self.clock: Clock = clock or SystemClock()
        #: (port, trunk) actually bound, in the order of ``settings.listeners``.
        self.bound: list[tuple[int, str]] = []
        self.records: list[SipCallRecord] = []
        self.stats: dict[str, int] = {"invites": 0, "malformed": 0, "refused_busy": 0,
                                      "records_dropped": 0}
        self._dialogs: dict[str, _Dialog] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._tcp_tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._udp: list[asyncio.DatagramTransport] = []
        self._servers: list[asyncio.Server] = []
        self._tags = itertools.count(1)
        self._finished = asyncio.Condition()

    @property
    def port(self) -> int:
        """The first listener's port (UDP and TCP)."""
        return self.bound[0][0]

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listener in self.settings.listeners:
            trunk = listener.trunk or self.settings.default_trunk
            for _attempt in range(20):
                # Port 0 picks a free UDP port; TCP must get the same number, which
                # another process may hold: then try another.
                udp, _proto = await loop.create_datagram_endpoint(
                    self._udp_factory(listener), local_addr=(self.settings.host, listener.port)
                )
                port = int(udp.get_extra_info("sockname")[1])
                if not self.settings.tcp:
                    break
                try:
                    server = await asyncio.start_server(
                        self._tcp_handler(listener), self.settings.host, port
                    )
                except OSError:
                    udp.close()
                    if listener.port:
                        raise
                    continue
                self._servers.append(server)
                break
            else:
                raise OSError("no port free for both UDP and TCP")
            self._udp.append(udp)
            self.bound.append((port, trunk))
        log.info("sip_front_started", listeners=self.bound)

    async def stop(self) -> None:
        for udp in self._udp:
            udp.close()
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        for writer in list(self._writers):
            writer.close()
        if self._tcp_tasks:
            await asyncio.wait(set(self._tcp_tasks), timeout=2.0)
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        self._udp.clear()
        self._servers.clear()

    async def wait_records(self, count: int, timeout_s: float) -> bool:
        """Wait until at least ``count`` calls have finished; False on timeout."""
        async def enough() -> None:
            async with self._finished:
                await self._finished.wait_for(lambda: len(self.records) >= count)

        try:
            await asyncio.wait_for(enough(), timeout_s)
        except TimeoutError:
            return False
        return True

    def inflight(self) -> int:
        return len(self._dialogs)

    # -- transports ---------------------------------------------------------------------

    def _udp_factory(self, listener: SipListener) -> Callable[[], _UdpProtocol]:
        return lambda: _UdpProtocol(self, listener)

    def _tcp_handler(
        self, listener: SipListener
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        return lambda reader, writer: self._tcp_client(reader, writer, listener)

    async def _tcp_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: SipListener
    ) -> None:
        # Not cancelled at stop (asyncio's stream callback would report the cancellation
        # as an error): stop() closes the connection and the read loop ends by itself.
        task = asyncio.current_task()
        if task is not None:
            self._tcp_tasks.add(task)
            task.add_done_callback(self._tcp_tasks.discard)
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        host, port = str(peer[0]), int(peer[1])
        framer = StreamFramer()

        def send(payload: bytes) -> None:
            if not writer.is_closing():
                writer.write(payload)

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for item in framer.feed(data):
                    if isinstance(item, SipParseError):
                        self.stats["malformed"] += 1
                        log.warning("sip_malformed", transport="tcp", failure=item.failure.value)
                        continue
                    self.handle(item, send, reliable=True, transport="tcp", peer=(host, port),
                                listener=listener)
        except (ConnectionError, OSError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # -- requests -----------------------------------------------------------------------

    def handle(
        self,
        data: bytes,
        send: _Send,
        *,
        reliable: bool,
        transport: str,
        peer: tuple[str, int],
        listener: SipListener,
    ) -> None:
        """One SIP message from a caller."""
        if not data.strip():
            return  # keep-alive CRLFs
        try:
            msg = parse_message(data)
        except SipParseError as exc:
            self.stats["malformed"] += 1
            log.warning("sip_malformed", transport=transport, failure=exc.failure.value)
            if exc.failure in _BODY_FAILURES:
                # RFC 3261 §18.3: a request whose body does not fit its datagram SHOULD
                # get 400, and an unreadable Content-Length is the same framing fault; the
                # head is sound, so the caller learns why instead of retransmitting.
                head = _head_of(data)
                if head is not None and head.is_request and head.method != "ACK" \
                        and head.header("via"):
                    send(_response(head, 400, to_tag=None))
            return
        if not msg.is_request:
            return  # we send no requests, so a response is not ours
        call_id, cseq = msg.call_id, msg.cseq
        if not call_id or cseq is None or not msg.header("via") or not msg.header("from") \
                or not msg.header("to"):
            self.stats["malformed"] += 1
            if msg.header("via") and msg.method != "ACK":
                send(_response(msg, 400, to_tag=None))
            return
        dialog = self._dialogs.get(call_id)
        method = msg.method
        if method == "INVITE":
            if dialog is not None:
                if dialog.last_response:
                    send(dialog.last_response)  # a retransmission: repeat our last answer
                return
            self._new_call(msg, call_id, send, reliable, transport, peer, listener)
        elif method == "ACK":
            if dialog is not None:
                dialog.acked.set()
        elif method == "CANCEL":
            self._cancel(msg, dialog, send)
        elif method == "BYE":
            if dialog is None or dialog.answer_us == 0:
                send(_response(msg, 481, to_tag=None))
                return
            send(_response(msg, 200, to_tag=dialog.to_tag))
            dialog.bye.set()
        elif method == "OPTIONS":
            send(_response(msg, 200, to_tag=_new_tag()))
        else:
            send(_response(msg, 501, to_tag=_new_tag()))

    def _cancel(self, msg: SipMessage, dialog: _Dialog | None, send: _Send) -> None:
        if dialog is None:
            send(_response(msg, 481, to_tag=None))
            return
        send(_response(msg, 200, to_tag=dialog.to_tag))
        if dialog.final_status is not None or dialog.cancelled.is_set():
            return  # too late: the INVITE has its final response already
        dialog.cancelled.set()
        self._final(dialog, 487)

    def _new_call(
        self,
        msg: SipMessage,
        call_id: str,
        send: _Send,
        reliable: bool,
        transport: str,
        peer: tuple[str, int],
        listener: SipListener,
    ) -> None:
        self.stats["invites"] += 1
        if len(self._dialogs) >= self.settings.max_calls:
            self.stats["refused_busy"] += 1
            send(_response(msg, 503, to_tag=_new_tag()))
            return
        local_port = self._port_of(listener)
        trunk = (msg.header(TRUNK_HEADER) or "").strip() or listener.trunk \
            or self.settings.default_trunk
        frm = parse_name_addr(msg.header("from") or "")
        pai_value = msg.header("p-asserted-identity")
        pai = parse_name_addr(pai_value).user if pai_value else None
        created_us = int(self.clock.time() * 1e6)
        call = LabCall(
            from_user=frm.user,
            to=uri_user(msg.request_uri),
            name=call_id,
            trunk=trunk,
            on_error=self.settings.on_error_by_trunk.get(trunk, "pass"),
            pai=pai or None,
            diversion=msg.header("diversion"),
            profile=self.settings.profile,
            network_ip=peer[0],
            user_agent=msg.header("user-agent"),
            caller_name=frm.display or None,
        )
        identity = ChannelIdentity(
            uuid=str(uuidlib.uuid4()), call_id=call_id, from_port=peer[1],
            created_us=created_us, sequence=self.switch.next_sequence(),
            transport=transport, from_tag=frm.tag, local_port=local_port,
        )
        dialog = _Dialog(
            call_id=call_id, invite=msg, send=send, reliable=reliable, transport=transport,
            trunk=trunk, to_tag=_new_tag(), local_port=local_port, created_us=created_us,
            call=call, identity=identity,
        )
        self._dialogs[call_id] = dialog
        self._send_invite_response(dialog, 100)
        task = asyncio.get_running_loop().create_task(self._run_call(dialog))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _port_of(self, listener: SipListener) -> int:
        for (port, _trunk), lst in zip(self.bound, self.settings.listeners, strict=False):
            if lst is listener:
                return port
        return listener.port

    # -- one call -----------------------------------------------------------------------

    async def _run_call(self, dialog: _Dialog) -> None:
        result: CallResult | None = None
        cause, disposition = "ORIGINATOR_CANCEL", "recv_cancel"
        try:
            screening = asyncio.ensure_future(self.switch.screen(dialog.call, dialog.identity))
            cancelled = asyncio.ensure_future(dialog.cancelled.wait())
            try:
                await asyncio.wait({screening, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                cancelled.cancel()
            if screening.done():
                result = screening.result()
            else:
                # The caller gave up while the controller was deciding. FreeSWITCH tears
                # the channel down; the socket app ends with it.
                await cancel_and_wait(screening)
            if result is not None and not dialog.cancelled.is_set():
                cause, disposition = await self._continue(dialog, result)
            else:
                await self._await_ack(dialog)
        finally:
            self._dialogs.pop(dialog.call_id, None)
            await self._finish(dialog, result, cause, disposition)

    async def _continue(self, dialog: _Dialog, result: CallResult) -> tuple[str, str]:
        """What the dialplan does after screening; returns (hangup cause, disposition)."""
        if result.cause is not None:
            if result.announcement:
                # pre_answer + playback: early media before the rejection.
                self._send_invite_response(dialog, 183, sdp=True)
                dialog.progress_us = self._now_us()
            self._final(dialog, sip_status_of(result.cause), cause=result.cause)
            await self._await_ack(dialog)
            return result.cause, "send_refuse"
        self._send_invite_response(dialog, 180)
        dialog.progress_us = self._now_us()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dialog.cancelled.wait(), self.settings.answer_after_s)
        if dialog.cancelled.is_set():
            await self._await_ack(dialog)
            return "ORIGINATOR_CANCEL", "recv_cancel"
        dialog.answer_us = self._now_us()
        self._final(dialog, 200)
        await self._await_ack(dialog)
        try:
            await asyncio.wait_for(dialog.bye.wait(), self.settings.max_call_s)
        except TimeoutError:
            return "NORMAL_CLEARING", "send_bye"
        return "NORMAL_CLEARING", "recv_bye"

    def _final(self, dialog: _Dialog, status: int, *, cause: str | None = None) -> None:
        dialog.final_status = status
        self._send_invite_response(dialog, status, sdp=status == 200, cause=cause)
        if not dialog.reliable:
            # Over UDP a final response is repeated until the ACK (RFC 3261 §17.2.1,
            # §13.3.1.4 for 2xx), doubling from T1 up to 4 s.
            task = asyncio.get_running_loop().create_task(self._retransmit(dialog))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _retransmit(self, dialog: _Dialog) -> None:
        interval = self.settings.t1_s
        payload = dialog.last_response
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ack_timeout_s
        while loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dialog.acked.wait(), interval)
            if dialog.acked.is_set():
                return
            dialog.send(payload)
            interval = min(interval * 2, 4.0)

    async def _await_ack(self, dialog: _Dialog) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dialog.acked.wait(), self.settings.ack_timeout_s)

    async def _finish(
        self, dialog: _Dialog, result: CallResult | None, cause: str, disposition: str
    ) -> None:
        end_us = self._now_us()
        status = dialog.final_status or 487
        if result is not None:
            result = replace(result, sip_status=status)
            self.switch.emit_outcome(
                result, cause=cause, disposition=disposition, progress_us=dialog.progress_us,
                answer_us=dialog.answer_us, end_us=end_us,
            )
        record = SipCallRecord(
            call_id=dialog.call_id, transport=dialog.transport, caller=dialog.call.from_user,
            callee=dialog.call.to, trunk=dialog.trunk, sip_status=status,
            provisional=tuple(dialog.provisional), cancelled=dialog.cancelled.is_set(),
            answered=dialog.answer_us != 0, result=result, hangup_cause=cause,
            disposition=disposition,
        )
        log.info(
            "sip_call_ended", call_id=dialog.call_id, trunk=dialog.trunk,
            sip_status=status, verdict=record.verdict, rule=record.rule,
            disposition=disposition,
        )
        async with self._finished:
            if len(self.records) >= self.settings.max_records:
                del self.records[0]
                self.stats["records_dropped"] += 1
            self.records.append(record)
            self._finished.notify_all()

    def _send_invite_response(
        self, dialog: _Dialog, status: int, *, sdp: bool = False, cause: str | None = None
    ) -> None:
        if 100 < status < 200:
            dialog.provisional.append(status)
        contact = None
        if status > 100 and status < 300:
            contact = (f"<sip:{dialog.call.to}@{self.settings.host}:{dialog.local_port};"
                       f"transport={dialog.transport}>")
        payload = _response(
            dialog.invite, status, to_tag=None if status == 100 else dialog.to_tag,
            contact=contact, cause=cause, sdp=self._sdp() if sdp else b"",
        )
        dialog.last_response = payload
        dialog.send(payload)

    def _sdp(self) -> bytes:
        session = next(self._tags) + 1_000_000
        return (
            f"v=0\r\no=FreeSWITCH {session} {session + 1} IN IP4 {self.settings.host}\r\n"
            f"s=FreeSWITCH\r\nc=IN IP4 {self.settings.host}\r\nt=0 0\r\n"
            "m=audio 24786 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"
        ).encode()

    def _now_us(self) -> int:
        return int(self.clock.time() * 1e6)


#: Parse failures of the body framing alone, with a readable head.
_BODY_FAILURES = frozenset({ParseFailure.TRUNCATED_BODY, ParseFailure.BAD_CONTENT_LENGTH})
_CONTENT_LENGTH_LINE = re.compile(rb"(?i)(?:content-length|l)[ \t]*:")


def _head_of(data: bytes) -> SipMessage | None:
    """The head of a message refused for its body framing, without Content-Length or
    body (enough to answer it); None when the head is malformed too."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    lines = [line for line in head.split(b"\n") if not _CONTENT_LENGTH_LINE.match(line)]
    try:
        return parse_message(b"\n".join(lines) + b"\n\n")
    except SipParseError:
        return None


def sip_status_of(cause: str) -> int:
    found = cause_by_name(cause)
    return 480 if found is None else found.sip_status


def _new_tag() -> str:
    return secrets.token_urlsafe(9).replace("-", "a").replace("_", "b")


def _reason_header(cause: str | None) -> str | None:
    """The Reason header sofia puts on a rejection (fixture ``*.sip.txt``)."""
    if cause is None:
        return None
    found = cause_by_name(cause)
    if found is None:
        return None
    if found.q850 is not None:
        return f'Q.850;cause={found.q850};text="{found.name}"'
    if found.name == "UNWANTED":
        # Measured: sofia sends 607 with this SIP-protocol cause value, not a Q.850 one.
        return 'SIP;cause=819;text="UNWANTED"'
    return None


def _phrase(status: int, cause: str | None) -> str:
    found = cause_by_name(cause) if cause else None
    if found is not None and found.sip_status == status:
        return found.sip_phrase
    return _REASON_PHRASES.get(status, "Unknown")


def _response(
    request: SipMessage,
    status: int,
    *,
    to_tag: str | None,
    contact: str | None = None,
    cause: str | None = None,
    sdp: bytes = b"",
) -> bytes:
    """A response to ``request``: its Via, From, Call-ID and CSeq, the To with our tag."""
    lines = [f"SIP/2.0 {status} {_phrase(status, cause)}"]
    lines += [f"Via: {via}" for via in request.header_values("via")]
    lines.append(f"From: {request.header('from')}")
    to = request.header("to") or ""
    if to_tag is not None and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {request.call_id}")
    lines.append(f"CSeq: {request.header('cseq')}")
    if contact is not None:
        lines.append(f"Contact: {contact}")
    lines.append(f"User-Agent: {USER_AGENT}")
    if status >= 180:
        lines.append(f"Allow: {_ALLOW}")
    reason = _reason_header(cause)
    if reason is not None:
        lines.append(f"Reason: {reason}")
    if sdp:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(sdp)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + sdp

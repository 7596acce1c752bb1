"""Send mode: place a trace's calls on a SIP target over UDP, at the trace's pace.

Each traced INVITE is sent again from our own socket: the request is rebuilt from
what the trace showed (Request-URI user, From with display name and a fresh tag,
To, P-Asserted-Identity, Diversion, User-Agent) with Via and Contact naming our
socket, so the target's responses come back to us. Call-IDs get a per-run prefix so
that replaying a trace twice never collides with a dialog the target still holds.

Then the dialog goes as the trace went, scaled by ``speed``: a call the caller
cancelled is CANCELled after its traced ring time (if still unanswered), an answered
call is ACKed and ended with a BYE after its traced talk time, every final non-2xx
is ACKed. INVITEs are retransmitted on RFC 3261 timer A until the first response.
A BYE from the target is answered 200. The result per call is the target's
response — what a switch with the policy would have answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from fs_plugin.replay.dialogs import EndedBy, TraceCall
from fs_plugin.replay.evaluate import TrunkMap
from fs_plugin.replay.reader import read_trace
from fs_plugin.replay.sip import SipMessage, SipParseError, parse_message

__all__ = [
    "MAX_IN_FLIGHT",
    "SendResult",
    "SendSettings",
    "print_send_report",
    "run_send_command",
    "send_calls",
]

log = structlog.get_logger(__name__)

#: Calls in progress at once. A trace replayed at high speed would otherwise open
#: thousands of dialogs on the target (and tasks here); calls wait for a slot.
MAX_IN_FLIGHT = 2000
#: RFC 3261 T1: the first INVITE retransmission interval, doubled each time (timer A).
T1_S = 0.5
#: Retransmission interval cap for non-INVITE requests (T2).
T2_S = 4.0


@dataclass(frozen=True, slots=True)
class SendSettings:
    host: str
    port: int
    speed: float = 1.0
    #: Seconds to wait for a final response after the INVITE.
    final_timeout_s: float = 32.0
    local_host: str = "127.0.0.1"
    max_in_flight: int = MAX_IN_FLIGHT


@dataclass(slots=True)
class SendResult:
    """What the target answered to one replayed call."""

    call_id: str
    from_user: str
    callee: str
    traced_status: int | None
    status: int | None = None
    reason: str = ""
    provisional: list[int] = field(default_factory=list)
    latency_s: float | None = None
    sent: list[str] = field(default_factory=list)
    #: The target hung up the answered call (its BYE, answered 200).
    received_bye: bool = False
    error: str | None = None


class _Call:
    __slots__ = ("branch", "bye_received", "call", "call_id", "final", "from_tag",
                 "got_response", "result", "to_header")

    def __init__(self, call: TraceCall, call_id: str, result: SendResult) -> None:
        self.call = call
        self.call_id = call_id
        self.result = result
        self.branch = "z9hG4bK" + secrets.token_hex(8)
        self.from_tag = secrets.token_hex(6)
        self.to_header = ""
        self.got_response = asyncio.Event()
        self.bye_received = asyncio.Event()
        self.final: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, sender: _Sender) -> None:
        self.sender = sender

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.sender.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the retransmissions and timeout decide.
        log.debug("replay.send_socket_error", error=type(exc).__name__)


class _Sender:
    def __init__(self, settings: SendSettings) -> None:
        self.settings = settings
        self.target = (settings.host, settings.port)
        self.transport: asyncio.DatagramTransport | None = None
        self.local = (settings.local_host, 0)
        self.calls: dict[str, _Call] = {}
        self.run = secrets.token_hex(3)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Endpoint(self), local_addr=(self.settings.local_host, 0)
        )
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        self.local = (sockname[0], sockname[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.target)

    # -- building requests ----------------------------------------------------------

    def _via(self, branch: str) -> str:
        return f"SIP/2.0/UDP {self.local[0]}:{self.local[1]};rport;branch={branch}"

    def request(self, c: _Call, method: str, cseq: int, *, branch: str | None = None,
                to_header: str | None = None, body: str = "") -> bytes:
        t = c.call
        host, port = self.target
        ruri = f"sip:{t.request_user or t.to_user}@{host}:{port}"
        display = f'"{t.from_display}" ' if t.from_display else ""
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: {self._via(branch or c.branch)}",
            "Max-Forwards: 70",
            f"From: {display}<sip:{t.from_user}@{self.local[0]}>;tag={c.from_tag}",
            f"To: {to_header or f'<sip:{t.to_user or t.request_user}@{host}>'}",
            f"Call-ID: {c.call_id}",
            f"CSeq: {cseq} {method}",
        ]
        if method == "INVITE":
            lines.append(f"Contact: <sip:{t.from_user}@{self.local[0]}:{self.local[1]}>")
            if t.pai is not None:
                lines.append(f"P-Asserted-Identity: <sip:{t.pai}@{self.local[0]}>")
            if t.diversion is not None:
                lines.append(f"Diversion: {t.diversion}")
            if t.user_agent is not None:
                lines.append(f"User-Agent: {t.user_agent}")
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _sdp(self) -> str:
        ip = self.local[0]
        return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
                "m=audio 40000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\n")

    # -- receiving ------------------------------------------------------------------

    def received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            message = parse_message(data)
        except SipParseError as exc:
            log.warning("replay.send_bad_datagram", failure=str(exc.failure))
            return
        call = self.calls.get(message.call_id or "")
        if message.is_request:
            self._answer_request(message, addr)
            return
        if call is None or message.cseq is None:
            return
        number, method = message.cseq
        if method != "INVITE" or number != 1:
            return  # responses to our CANCEL / BYE
        call.got_response.set()
        if message.status < 200:
            if not call.result.provisional or call.result.provisional[-1] != message.status:
                call.result.provisional.append(message.status)
            return
        if not call.final.done():
            call.final.set_result(message)
        elif message.status < 300:
            # A retransmitted 2xx: our ACK was lost, send it again (RFC 3261 §13.2.2.4).
            self._ack(call, message)

    def _answer_request(self, message: SipMessage, addr: tuple[str | Any, int]) -> None:
        if message.method == "ACK":
            return
        # BYE (the target hung up) or anything else in our dialogs: 200 OK, echoing the
        # transaction's headers as RFC 3261 §8.2.6 asks.
        lines = ["SIP/2.0 200 OK"]
        for name in ("via", "from", "to", "call-id", "cseq"):
            for value in message.header_values(name):
                lines.append(f"{name.title() if name != 'call-id' else 'Call-ID'}: {value}")
        lines.append("Content-Length: 0")
        assert self.transport is not None
        self.transport.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)
        call = self.calls.get(message.call_id or "")
        if call is not None and message.method == "BYE":
            call.result.received_bye = True
            call.bye_received.set()

    def _ack(self, call: _Call, final: SipMessage) -> None:
        to_header = final.header("to") or ""
        call.to_header = to_header
        # ACK of a 2xx is its own transaction (new branch); of a non-2xx, the INVITE's.
        branch = "z9hG4bK" + secrets.token_hex(8) if final.status < 300 else call.branch
        self.send(self.request(call, "ACK", 1, branch=branch, to_header=to_header))
        call.result.sent.append("ACK")


async def _place(sender: _Sender, c: _Call, speed: float, timeout_s: float) -> None:
    t, result = c.call, c.result
    loop = asyncio.get_running_loop()
    invite = sender.request(c, "INVITE", 1, body=sender._sdp())
    started = loop.time()
    sender.send(invite)
    result.sent.append("INVITE")
    cancel_at = None
    if t.caller_cancelled and t.end_time is not None:
        cancel_at = started + _scaled(t.end_time - t.invite_time, speed)
    interval = T1_S
    next_retransmit = started + interval
    deadline = started + timeout_s
    cancelled = False
    while not c.final.done():
        now = loop.time()
        if now >= deadline:
            result.error = "no final response"
            return
        wake = deadline
        if not c.got_response.is_set():
            if now >= next_retransmit:
                sender.send(invite)
                interval = min(interval * 2, T2_S)
                next_retransmit = now + interval
            wake = min(wake, next_retransmit)
        if cancel_at is not None and not cancelled:
            if now >= cancel_at:
                cancelled = True
                # CANCEL repeats the INVITE's Via branch, From, To, Call-ID and CSeq number.
                sender.send(sender.request(c, "CANCEL", 1))
                result.sent.append("CANCEL")
            else:
                wake = min(wake, cancel_at)
        try:
            await asyncio.wait_for(asyncio.shield(c.final), max(0.0, wake - loop.time()))
        except TimeoutError:
            continue
    final = c.final.result()
    result.status, result.reason = final.status, final.reason
    result.latency_s = loop.time() - started
    sender._ack(c, final)
    if final.status >= 300:
        return
    talk = 0.0
    if t.answer_time is not None and t.end_time is not None:
        talk = _scaled(t.end_time - t.answer_time, speed)
    if t.ended_by is EndedBy.CALLEE:
        # The trace shows the callee hanging up: wait for the target's BYE, and end the
        # call ourselves only if it does not come.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(c.bye_received.wait(), talk + timeout_s)
    elif talk > 0:
        await asyncio.sleep(talk)
    if not c.bye_received.is_set():
        sender.send(sender.request(c, "BYE", 2, branch="z9hG4bK" + secrets.token_hex(8),
                                   to_header=c.to_header))
        result.sent.append("BYE")


def _scaled(seconds: float, speed: float) -> float:
    if speed <= 0:
        return 0.0
    return max(0.0, seconds / speed)


async def send_calls(calls: Iterable[TraceCall], settings: SendSettings) -> list[SendResult]:
    """Place ``calls`` (in INVITE order) on the target; one result per call, in order."""
    ordered = sorted(calls, key=lambda c: c.invite_time)
    sender = _Sender(settings)
    await sender.open()
    slots = asyncio.Semaphore(settings.max_in_flight)
    loop = asyncio.get_running_loop()
    results: list[SendResult] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(c: _Call) -> None:
        try:
            await _place(sender, c, settings.speed, settings.final_timeout_s)
        finally:
            slots.release()

    try:
        if ordered:
            origin, began = ordered[0].invite_time, loop.time()
            for index, call in enumerate(ordered):
                due = began + _scaled(call.invite_time - origin, settings.speed)
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                call_id = f"r{sender.run}-{index}-{call.call_id}"
                result = SendResult(call.call_id, call.from_user, call.callee, call.final_status)
                results.append(result)
                state = _Call(call, call_id, result)
                sender.calls[call_id] = state
                tasks.append(asyncio.create_task(one(state)))
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        sender.close()
    return results


def print_send_report(results: Sequence[SendResult], out: IO[str]) -> None:
    from collections import Counter

    counts = Counter(str(r.status) if r.status is not None else (r.error or "none")
                     for r in results)
    out.write(f"{len(results)} calls sent\n\n")
    width = max([len(r.from_user) for r in results] + [4])
    out.write(f"{'from':<{width}}  {'callee':<16}  trace  target  ms     sent\n")
    for r in results:
        status = f"{r.status}" if r.status is not None else (r.error or "-")
        ms = f"{r.latency_s * 1000:.0f}" if r.latency_s is not None else "-"
        traced = str(r.traced_status) if r.traced_status is not None else "-"
        out.write(f"{r.from_user:<{width}}  {r.callee:<16}  {traced:<5}  {status:<6}  "
                  f"{ms:<5}  {' '.join(r.sent)}\n")
    out.write("\nResponses\n")
    for status, n in counts.most_common():
        out.write(f"  {status:<20} {n}\n")


def run_send_command(args: Any, traces: list[Path], trunks: TrunkMap) -> int:
    """``fs-plugin replay --send HOST:PORT``: read every trace, place its calls, report."""
    del trunks  # the target matches trunks itself, from our source address
    host, sep, port_text = str(args.send).rpartition(":")
    if not sep or not port_text.isdigit():
        print(f"error: --send wants HOST:PORT, got {args.send!r}", file=sys.stderr)
        return 2
    calls: list[TraceCall] = []
    for path in traces:
        try:
            with read_trace(path) as result:
                calls.extend(result)
        except OSError as exc:
            print(f"skipped {path}: {type(exc).__name__}: {exc.strerror or exc}",
                  file=sys.stderr)
    settings = SendSettings(host.strip("[]") or "127.0.0.1", int(port_text),
                            speed=args.speed, final_timeout_s=args.send_timeout)
    results = asyncio.run(send_calls(calls, settings))
    print_send_report(results, sys.stdout)
    if args.csv is not None:
        import csv

        with args.csv.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("call_id", "from", "callee", "traced_status", "status", "reason",
                             "provisional", "latency_ms", "sent", "error"))
            for r in results:
                writer.writerow((r.call_id, r.from_user, r.callee, r.traced_status or "",
                                 r.status or "", r.reason, " ".join(map(str, r.provisional)),
                                 f"{r.latency_s * 1000:.1f}" if r.latency_s is not None else "",
                                 " ".join(r.sent), r.error or ""))
    return 0

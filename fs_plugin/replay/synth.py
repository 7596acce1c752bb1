"""Synthetic SIP traces: N INVITE dialogs written as a pcap, for tests and benchmarks.

The public captures hold a few dozen calls and no Chinese numbering, Diversion
or "ring once" traffic at volume; this generator fills that gap. Each call is
one of three shapes, the mix a carrier trunk shows:

- ``answered``: INVITE, 100, 180, 200, ACK, BYE (caller or callee), 200;
- ``ring_cancel``: INVITE, 100, 180, CANCEL after a short ring, 200, 487, ACK
  (a "ring once" call);
- ``rejected``: INVITE, 100, a final 4xx/6xx, ACK.

The calls are returned as :class:`SynthCall` values holding what a reader must
find again (facts and timing, at the pcap's microsecond resolution), so tests
compare a round trip field by field. Generation is deterministic for a seed.
"""

from __future__ import annotations

import heapq
import random
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt  # dpkt ships no type information

__all__ = [
    "SWITCH_IP", "SWITCH_PORT", "SynthCall", "scripted_call", "synth_calls", "write_pcap",
]

SWITCH_IP = "10.1.0.1"
SWITCH_PORT = 5060

_TRUNK_IPS = ("10.20.0.11", "10.20.0.12", "10.20.1.21", "10.30.5.7", "192.0.2.50")
_USER_AGENTS = ("Huawei SoftX3000 V300R011", "ZTE ZXSS10", "Asterisk PBX 18.2", None)
_REJECTS = (403, 480, 486, 603, 607)


@dataclass(frozen=True, slots=True)
class SynthCall:
    """What was written for one call: the facts and timing a reader must recover."""

    call_id: str
    kind: str
    from_user: str
    from_display: str
    pai: str | None
    diversion: str | None
    callee: str
    src_ip: str
    src_port: int
    user_agent: str | None
    invite_time: float
    ringing_time: float | None
    final_status: int
    final_time: float
    answer_time: float | None
    end_time: float
    end_method: str | None
    ended_by: str | None


def _us(value: float) -> float:
    # pcap stores microseconds: keep the expected values on that grid.
    return round(value, 6)


def _number(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.55:
        return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
    if shape < 0.8:
        return f"0{rng.choice(('20', '10', '21', '755', '571'))}{rng.randrange(10**8):08d}"
    if shape < 0.9:
        return f"+86{rng.choice('3589')}{rng.randrange(10**9):09d}"
    return f"400{rng.randrange(10**7):07d}"


def synth_calls(
    count: int,
    *,
    seed: int = 0,
    start: float = 1_795_000_000.0,
    cps: float = 200.0,
    population: int | None = None,
) -> Iterator[SynthCall]:
    """``count`` calls starting at ``start`` at about ``cps`` calls per second.

    By default every number is drawn afresh (nearly all distinct). With
    ``population``, callers and callees are drawn from that many numbers, as on a
    live trunk where the same callers and callees come back.
    """
    rng = random.Random(seed)
    pool: list[str] | None = None
    if population is not None:
        pool_rng = random.Random(seed + 1)
        pool = [_number(pool_rng) for _ in range(population)]

    def number() -> str:
        return rng.choice(pool) if pool is not None else _number(rng)

    now = start
    for index in range(count):
        now += rng.expovariate(cps)
        invite = _us(now)
        caller = number()
        shape = rng.random()
        ringing: float | None = _us(invite + rng.uniform(0.02, 0.3))
        answer: float | None = None
        ended_by: str | None = None
        end_method: str | None = None
        if shape < 0.6:
            kind = "answered"
            assert ringing is not None
            final = answer = _us(ringing + rng.uniform(0.5, 8.0))
            status = 200
            end = _us(answer + rng.uniform(2.0, 120.0))
            end_method = "BYE"
            ended_by = rng.choice(("caller", "callee"))
        elif shape < 0.85:
            kind = "ring_cancel"
            assert ringing is not None
            end = _us(ringing + rng.uniform(0.3, 3.0))
            final = _us(end + 0.002)
            status = 487
            end_method = "CANCEL"
            ended_by = "caller"
        else:
            kind = "rejected"
            ringing = None
            final = end = _us(invite + rng.uniform(0.01, 1.5))
            status = rng.choice(_REJECTS)
        has_pai = rng.random() < 0.5
        yield SynthCall(
            call_id=f"synth-{seed}-{index}@{SWITCH_IP}",
            kind=kind,
            from_user=caller,
            from_display=rng.choice(("", "", "Sales", "客服中心")),
            pai=(caller if rng.random() < 0.8 else _number(rng)) if has_pai else None,
            diversion=f"<sip:{_number(rng)}@10.9.9.9>;reason=unconditional"
            if rng.random() < 0.1
            else None,
            callee=number(),
            src_ip=rng.choice(_TRUNK_IPS),
            src_port=5060 if rng.random() < 0.7 else rng.randrange(10000, 60000),
            user_agent=rng.choice(_USER_AGENTS),
            invite_time=invite,
            ringing_time=ringing,
            final_status=status,
            final_time=final,
            answer_time=answer,
            end_time=end,
            end_method=end_method,
            ended_by=ended_by,
        )


_REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    403: "Forbidden",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    487: "Request Terminated",
    603: "Decline",
    607: "Unwanted",
}

_SDP = (
    "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\n"
)


class _Dialog:
    """The header values one call's messages share."""

    def __init__(self, call: SynthCall) -> None:
        self.call = call
        display = f'"{call.from_display}" ' if call.from_display else ""
        self.from_ = f"{display}<sip:{call.from_user}@{call.src_ip}>;tag=ft{call.call_id[6:14]}"
        self.to = f"<sip:{call.callee}@{SWITCH_IP}>"
        self.to_tagged = f"{self.to};tag=tt{call.call_id[6:14]}"
        self.via = f"SIP/2.0/UDP {call.src_ip}:{call.src_port};branch=z9hG4bK{call.call_id[6:20]}"
        self.ruri = f"sip:{call.callee}@{SWITCH_IP}:{SWITCH_PORT}"

    def request(self, method: str, cseq: int, *, to_tag: bool, body: str = "") -> bytes:
        c = self.call
        lines = [
            f"{method} {self.ruri} SIP/2.0",
            f"Via: {self.via}",
            "Max-Forwards: 70",
            f"From: {self.from_}",
            f"To: {self.to_tagged if to_tag else self.to}",
            f"Call-ID: {c.call_id}",
            f"CSeq: {cseq} {method}",
        ]
        if method == "INVITE":
            lines.append(f"Contact: <sip:{c.from_user}@{c.src_ip}:{c.src_port}>")
            if c.pai is not None:
                lines.append(f"P-Asserted-Identity: <sip:{c.pai}@{c.src_ip}>")
            if c.diversion is not None:
                lines.append(f"Diversion: {c.diversion}")
            if c.user_agent is not None:
                lines.append(f"User-Agent: {c.user_agent}")
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def callee_bye(self) -> bytes:
        c = self.call
        lines = [
            f"BYE sip:{c.from_user}@{c.src_ip}:{c.src_port} SIP/2.0",
            f"Via: SIP/2.0/UDP {SWITCH_IP}:{SWITCH_PORT};branch=z9hG4bKsw{c.call_id[6:20]}",
            "Max-Forwards: 70",
            f"From: {self.to_tagged}",
            f"To: {self.from_}",
            f"Call-ID: {c.call_id}",
            "CSeq: 1 BYE",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def response(self, status: int, cseq: int, method: str, *, to_tag: bool) -> bytes:
        c = self.call
        lines = [
            f"SIP/2.0 {status} {_REASONS.get(status, 'Status')}",
            f"Via: {self.via}",
            f"From: {self.from_}",
            f"To: {self.to_tagged if to_tag else self.to}",
            f"Call-ID: {c.call_id}",
            f"CSeq: {cseq} {method}",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


# (time, True if the caller sends, message bytes)
_Event = tuple[float, bool, bytes]


def _events(call: SynthCall) -> list[_Event]:
    d = _Dialog(call)
    invite = d.request("INVITE", 1, to_tag=False, body=_SDP.format(ip=call.src_ip))
    out: list[_Event] = [
        (call.invite_time, True, invite),
        (_us(call.invite_time + 0.001), False, d.response(100, 1, "INVITE", to_tag=False)),
    ]
    if call.ringing_time is not None:
        out.append((call.ringing_time, False, d.response(180, 1, "INVITE", to_tag=True)))
    if call.kind == "answered":
        assert call.answer_time is not None
        out.append((call.answer_time, False, d.response(200, 1, "INVITE", to_tag=True)))
        out.append((_us(call.answer_time + 0.001), True, d.request("ACK", 1, to_tag=True)))
        if call.ended_by == "caller":
            bye = d.request("BYE", 2, to_tag=True)
            out.append((call.end_time, True, bye))
            ok = d.response(200, 2, "BYE", to_tag=True)
            out.append((_us(call.end_time + 0.001), False, ok))
        else:
            out.append((call.end_time, False, d.callee_bye()))
            out.append((_us(call.end_time + 0.001), True, _bye_ok(d.callee_bye())))
    elif call.kind == "ring_cancel":
        out.append((call.end_time, True, d.request("CANCEL", 1, to_tag=False)))
        cancel_ok = d.response(200, 1, "CANCEL", to_tag=True)
        out.append((_us(call.end_time + 0.001), False, cancel_ok))
        out.append((call.final_time, False, d.response(487, 1, "INVITE", to_tag=True)))
        out.append((_us(call.final_time + 0.001), True, d.request("ACK", 1, to_tag=True)))
    else:
        status = d.response(call.final_status, 1, "INVITE", to_tag=True)
        out.append((call.final_time, False, status))
        out.append((_us(call.final_time + 0.001), True, d.request("ACK", 1, to_tag=True)))
    return out


def _bye_ok(bye: bytes) -> bytes:
    # The caller's 200 OK to the callee's BYE echoes its Via/From/To/Call-ID/CSeq.
    head = bye.split(b"\r\n")
    kept = [line for line in head[1:] if not line.startswith(b"Max-Forwards")]
    return b"\r\n".join([b"SIP/2.0 200 OK", *kept])


def _frame(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(
        src=socket.inet_aton(src),
        dst=socket.inet_aton(dst),
        p=dpkt.ip.IP_PROTO_UDP,
        ttl=64,
        data=udp,
    )
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(
        src=b"\x02\x00\x00\x00\x00\x01",
        dst=b"\x02\x00\x00\x00\x00\x02",
        type=dpkt.ethernet.ETH_TYPE_IP,
        data=ip,
    )
    return bytes(eth)


def write_pcap(path: str | Path, calls: Iterable[SynthCall]) -> int:
    """Write the calls' messages, in time order, to an Ethernet/IPv4/UDP pcap.

    ``calls`` must come in ``invite_time`` order (as :func:`synth_calls` yields
    them). Only the calls in progress are held in memory, so 100,000 calls or
    more write in constant space. Returns the number of packets written.
    """
    written = 0
    pending: list[tuple[float, int, str, int, str, int, bytes]] = []
    sequence = 0
    with Path(path).open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)

        def drain(until: float) -> None:
            nonlocal written
            while pending and pending[0][0] < until:
                ts, _, src, sport, dst, dport, data = heapq.heappop(pending)
                writer.writepkt(_frame(src, sport, dst, dport, data), ts=ts)
                written += 1

        for call in calls:
            drain(call.invite_time)
            for ts, from_caller, data in _events(call):
                sequence += 1
                if from_caller:
                    route = (call.src_ip, call.src_port, SWITCH_IP, SWITCH_PORT)
                else:
                    route = (SWITCH_IP, SWITCH_PORT, call.src_ip, call.src_port)
                heapq.heappush(pending, (ts, sequence, *route, data))
        drain(float("inf"))
    return written


def scripted_call(
    index: int,
    *,
    caller: str,
    callee: str,
    at: float,
    kind: str,
    src_ip: str = "203.0.113.10",
    ring_s: float = 1.0,
    talk_s: float = 30.0,
    status: int = 486,
    callee_hangs_up: bool = False,
) -> SynthCall:
    """One call of a hand-written scenario (a wangiri burst, a flood): ``kind`` is
    ``answered``, ``ring_cancel`` or ``rejected``, timed from ``at``."""
    invite = _us(at)
    ringing: float | None = _us(invite + 0.1)
    answer: float | None = None
    end_method: str | None = None
    ended_by: str | None = None
    if kind == "answered":
        assert ringing is not None
        final = answer = _us(ringing + ring_s)
        status, end, end_method = 200, _us(answer + talk_s), "BYE"
        ended_by = "callee" if callee_hangs_up else "caller"
    elif kind == "ring_cancel":
        assert ringing is not None
        end = _us(ringing + ring_s)
        final, status, end_method, ended_by = _us(end + 0.002), 487, "CANCEL", "caller"
    elif kind == "rejected":
        ringing = None
        final = end = _us(invite + 0.05)
    else:
        raise ValueError(f"unknown call kind {kind!r}")
    return SynthCall(
        call_id=f"script-{index}@{src_ip}", kind=kind, from_user=caller, from_display="",
        pai=None, diversion=None, callee=callee, src_ip=src_ip, src_port=5060,
        user_agent=None, invite_time=invite, ringing_time=ringing, final_status=status,
        final_time=final, answer_time=answer, end_time=end, end_method=end_method,
        ended_by=ended_by,
    )

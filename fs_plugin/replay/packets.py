"""From captured link-layer frames to SIP message bytes.

dpkt reads the capture files; this module decodes the few layers SIP rides on,
by hand, because a replay of millions of packets cannot afford an object per
layer per packet (the RTP in a capture outnumbers SIP a hundred to one and must
be rejected after a few byte compares). What it covers:

- links: Ethernet (with VLAN tags), Linux SLL and SLL2, raw IP, BSD null/loopback;
- IPv4 and IPv6 (extension headers), fragments of both reassembled, IP-in-IP;
- UDP datagrams, TCP streams (reordering, retransmissions, several messages per
  segment, messages across segments), SIP over WebSocket on TCP, SCTP DATA chunks
  (fragmented user messages reassembled), HEP3-encapsulated SIP.

Every piece of state is bounded (see the ``MAX_*`` constants) so a hostile or
simply huge capture cannot exhaust memory; what is dropped is reported.
"""

from __future__ import annotations

import socket
import zlib
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from fs_plugin.replay.sip import MAX_MESSAGE_BYTES, SipParseError, StreamFramer, looks_like_sip

__all__ = [
    "DEFAULT_SIP_PORTS",
    "LINKTYPES",
    "DecodeFailure",
    "FrameDecoder",
    "Payload",
    "SkipSink",
]

#: Ports where a non-SIP payload is worth reporting (elsewhere it is just other traffic).
DEFAULT_SIP_PORTS = frozenset({5060, 5061, 5080, 6060})

#: Link types this decoder reads (pcap LINKTYPE_* values).
LINKTYPES = frozenset({0, 1, 12, 101, 108, 113, 228, 229, 276})

#: IP datagrams being reassembled at once. Real traffic has a handful in flight;
#: the bound stops a capture full of lone fragments from growing without end.
MAX_PENDING_FRAGMENTS = 4096
#: Seconds (capture time) a fragmented datagram may wait for its missing pieces.
FRAGMENT_TIMEOUT_S = 30.0
#: TCP/WebSocket/SCTP flows tracked at once; the least recently active is dropped.
MAX_FLOWS = 65536
#: Out-of-order TCP segments held per flow before the gap is declared lost.
MAX_OUT_OF_ORDER = 64
#: Seconds (capture time) a TCP flow's held segments wait for the bytes missing before
#: them: a segment lost before the capture point comes back as a retransmission after
#: the sender's RTO (1 s initially, RFC 6298; doubled once here). Past it the gap is
#: taken as lost in the capture and the flow resumes at what is held.
TCP_GAP_WAIT_S = 3.0
#: SCTP fragments held per association before giving up on a user message.
MAX_SCTP_FRAGMENTS = 256


class DecodeFailure(StrEnum):
    """Why a frame (or part of one) yielded no SIP; stable codes for skip reports."""

    UNSUPPORTED_LINK = "unsupported_link"
    TRUNCATED_PACKET = "truncated_packet"
    NOT_SIP = "not_sip"
    TCP_GAP = "tcp_gap"
    FRAGMENT_DROPPED = "fragment_dropped"
    BAD_HEP = "bad_hep"
    BAD_WEBSOCKET = "bad_websocket"


class Payload(NamedTuple):
    """The bytes of one SIP message (or datagram) and where they travelled."""

    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    transport: str
    data: bytes
    frame: int


#: ``(reason, frame number, detail)`` for something that could not be read.
SkipSink = Callable[[str, int, str], None]

_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6
_inet_ntop = socket.inet_ntop


class _Fragments:
    __slots__ = ("deadline", "parts", "total")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.parts: dict[int, bytes] = {}
        self.total = -1


class _Reassembler:
    """IP fragment reassembly keyed by (src, dst, id, proto), bounded in count and time."""

    def __init__(self, sink: SkipSink) -> None:
        self._pending: OrderedDict[tuple[bytes, bytes, int, int], _Fragments] = OrderedDict()
        self._sink = sink

    def add(
        self,
        key: tuple[bytes, bytes, int, int],
        offset: int,
        more: bool,
        data: bytes,
        ts: float,
        frame: int,
    ) -> bytes | None:
        pending = self._pending
        # Deadlines are insertion-ordered (same timeout for all), so expiry pops the front.
        while pending:
            first_key, first = next(iter(pending.items()))
            if first.deadline > ts and len(pending) < MAX_PENDING_FRAGMENTS:
                break
            del pending[first_key]
            self._sink(DecodeFailure.FRAGMENT_DROPPED, frame, "incomplete IP datagram")
        entry = pending.get(key)
        if entry is None:
            entry = pending[key] = _Fragments(ts + FRAGMENT_TIMEOUT_S)
        entry.parts[offset] = data
        if not more:
            entry.total = offset + len(data)
        if entry.total < 0:
            return None
        out = bytearray()
        for start in sorted(entry.parts):
            if start > len(out):
                return None
            piece = entry.parts[start]
            # Overlapping fragments: the first copy of each byte wins.
            out += piece[len(out) - start :]
        if len(out) < entry.total:
            return None
        del pending[key]
        return bytes(out[: entry.total])


class _TcpFlow:
    __slots__ = ("framer", "kind", "next_seq", "out_of_order", "ws_buffer", "ws_message")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        #: Segments after a gap: sequence number → (capture time, payload).
        self.out_of_order: dict[int, tuple[float, bytes]] = {}
        self.framer = StreamFramer()
        # "" until the first data decides: "sip", "ws-http" (upgrade head), "ws", "ignore".
        self.kind = ""
        self.ws_buffer = bytearray()
        self.ws_message = bytearray()


_SEQ_MASK = 0xFFFFFFFF
_HALF = 0x80000000


def _unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    mask = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")


def _find_sip_start(data: bytes) -> int:
    """Offset of the first line that starts a SIP message, or -1 (mid-stream resync)."""
    pos = data.find(b"\n")
    while 0 <= pos < len(data) - 1:
        if looks_like_sip(data[pos + 1 :]):
            return pos + 1
        pos = data.find(b"\n", pos + 1)
    return -1


class FrameDecoder:
    """Stateful decoder: feed ``(timestamp, frame bytes, frame number)``, get :class:`Payload`.

    One decoder per capture file (its link type is fixed). Anything that cannot
    be read goes to ``sink`` with a :class:`DecodeFailure` code; non-SIP traffic
    on ports outside ``sip_ports`` is ignored without a report.
    """

    def __init__(
        self,
        linktype: int,
        sink: SkipSink,
        *,
        sip_ports: frozenset[int] = DEFAULT_SIP_PORTS,
    ) -> None:
        self.linktype = linktype
        self._sink = sink
        self._sip_ports = sip_ports
        self._frags = _Reassembler(sink)
        self._tcp: OrderedDict[tuple[str, int, str, int], _TcpFlow] = OrderedDict()
        # Flows holding segments after a gap → when to give up on the gap. Insertion
        # order is deadline order (one wait for all), so expiry only looks at the front.
        self._waiting: OrderedDict[tuple[str, int, str, int], float] = OrderedDict()
        self._sctp: OrderedDict[tuple[str, int, str, int], dict[int, tuple[int, bytes]]] = (
            OrderedDict()
        )
        self._names4: dict[bytes, str] = {}
        self._names6: dict[bytes, str] = {}
        self._out: list[Payload] = []
        self._link_reported = False

    # -- link layer ---------------------------------------------------------------------

    def feed(self, ts: float, buf: bytes, frame: int) -> list[Payload]:
        """Decode one frame; return the SIP payloads it completed (often none)."""
        out: list[Payload] = []
        self._out = out
        lt = self.linktype
        if lt == 1:
            off = 12
            etype = buf[12] << 8 | buf[13] if len(buf) >= 14 else 0
            while etype in (0x8100, 0x88A8, 0x9100) and len(buf) >= off + 6:
                off += 4
                etype = buf[off] << 8 | buf[off + 1]
            off += 2
        elif lt == 113:
            etype = buf[14] << 8 | buf[15] if len(buf) >= 16 else 0
            off = 16
        elif lt == 276:
            etype = buf[0] << 8 | buf[1] if len(buf) >= 20 else 0
            off = 20
        elif lt in (0, 108):
            if len(buf) < 4:
                etype = 0
            else:
                # Host byte order of the capturing machine for DLT_NULL: read either way.
                family = buf[0] | buf[3] if lt == 0 else buf[3]
                etype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
            off = 4
        elif lt in (12, 101, 228, 229):
            off = 0
            version = buf[0] >> 4 if buf else 0
            etype = 0x0800 if version == 4 else 0x86DD if version == 6 else 0
        else:
            if not self._link_reported:
                self._link_reported = True
                self._sink(DecodeFailure.UNSUPPORTED_LINK, frame, f"linktype {lt}")
            return out
        if etype == 0x0800:
            self._ipv4(ts, buf, off, frame)
        elif etype == 0x86DD:
            self._ipv6(ts, buf, off, frame)
        return out

    def feed_udp4(self, ts: float, buf: bytes, frame: int) -> Payload | None:
        """The SIP payload of the commonest frame, or ``None``: then call :meth:`feed`.

        Ethernet without VLAN tags, IPv4 without options and unfragmented, UDP, and a
        payload that starts like SIP — nearly every frame of a trunk capture — decoded
        in one step. For those frames it returns what :meth:`feed` would have; ``None``
        says nothing about a frame (not even whether it holds SIP) and reports nothing.
        """
        if (
            self.linktype != 1
            or len(buf) < 42
            or buf[12:15] != b"\x08\x00\x45"
            or buf[23:24] != b"\x11"
            or buf[20] & 0x3F
            or buf[21]
        ):
            return None
        total = buf[16] << 8 | buf[17]
        # As _ipv4/_transport: the IP total length bounds the datagram (zero: TSO
        # captures, take the frame), and a UDP header must fit in it.
        stop = 14 + total if total else len(buf)
        if stop > len(buf):
            stop = len(buf)
        if stop < 42:
            return None
        data = buf[42:stop]
        if not looks_like_sip(data):
            return None
        names = self._names4
        raw_src = buf[26:30]
        src = names.get(raw_src)
        if src is None:
            src = self._name(names, _AF_INET, raw_src)
        raw_dst = buf[30:34]
        dst = names.get(raw_dst)
        if dst is None:
            dst = self._name(names, _AF_INET, raw_dst)
        return Payload(ts, src, buf[34] << 8 | buf[35], dst, buf[36] << 8 | buf[37], "udp",
                       data, frame)

    # -- network layer ------------------------------------------------------------------

    def _ipv4(self, ts: float, buf: bytes, off: int, frame: int) -> None:
        if len(buf) < off + 20 or buf[off] >> 4 != 4:
            self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "IPv4 header")
            return
        ihl = (buf[off] & 15) * 4
        total = buf[off + 2] << 8 | buf[off + 3]
        # A zero total length is what TSO offload leaves in captures: take the frame.
        end = off + total if total else len(buf)
        flags = buf[off + 6] << 8 | buf[off + 7]
        proto = buf[off + 9]
        raw_src = buf[off + 12 : off + 16]
        raw_dst = buf[off + 16 : off + 20]
        data = buf[off + ihl : end]
        if flags & 0x3FFF:
            key = (raw_src, raw_dst, buf[off + 4] << 8 | buf[off + 5], proto)
            offset = (flags & 0x1FFF) * 8
            whole = self._frags.add(key, offset, bool(flags & 0x2000), data, ts, frame)
            if whole is None:
                return
            data = whole
        names = self._names4
        src = names.get(raw_src)
        if src is None:
            src = self._name(names, _AF_INET, raw_src)
        dst = names.get(raw_dst)
        if dst is None:
            dst = self._name(names, _AF_INET, raw_dst)
        self._transport(ts, proto, src, dst, data, frame)

    @staticmethod
    def _name(cache: dict[bytes, str], family: int, raw: bytes) -> str:
        if len(cache) > 65536:
            # Address names are a cache, not state: clearing it only costs speed.
            cache.clear()
        name = cache[raw] = _inet_ntop(family, raw)
        return name

    def _ipv6(self, ts: float, buf: bytes, off: int, frame: int) -> None:
        if len(buf) < off + 40 or buf[off] >> 4 != 6:
            self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "IPv6 header")
            return
        length = buf[off + 4] << 8 | buf[off + 5]
        nxt = buf[off + 6]
        raw_src = buf[off + 8 : off + 24]
        raw_dst = buf[off + 24 : off + 40]
        end = off + 40 + length if length else len(buf)
        data = buf[off + 40 : end]
        names = self._names6
        src = names.get(raw_src) or self._name(names, _AF_INET6, raw_src)
        dst = names.get(raw_dst) or self._name(names, _AF_INET6, raw_dst)
        self._ipv6_upper(ts, nxt, raw_src, raw_dst, src, dst, data, frame)

    def _ipv6_upper(
        self,
        ts: float,
        nxt: int,
        raw_src: bytes,
        raw_dst: bytes,
        src: str,
        dst: str,
        data: bytes,
        frame: int,
    ) -> None:
        pos = 0
        while nxt in (0, 43, 44, 51, 60):
            if len(data) < pos + 8:
                self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "IPv6 extension header")
                return
            if nxt == 44:
                field = data[pos + 2] << 8 | data[pos + 3]
                ident = int.from_bytes(data[pos + 4 : pos + 8], "big")
                inner = data[pos]
                key = (raw_src, raw_dst, ident, -1)
                whole = self._frags.add(
                    key, field & 0xFFF8, bool(field & 1), data[pos + 8 :], ts, frame
                )
                if whole is None:
                    return
                # The reassembled payload starts with the header the fragment header named.
                nxt, data, pos = inner, whole, 0
                continue
            size = (data[pos + 1] + 2) * 4 if nxt == 51 else (data[pos + 1] + 1) * 8
            nxt = data[pos]
            pos += size
        self._transport(ts, nxt, src, dst, data[pos:], frame)

    # -- transport layer ----------------------------------------------------------------

    def _transport(
        self, ts: float, proto: int, src: str, dst: str, data: bytes, frame: int
    ) -> None:
        if proto == 17:
            if len(data) < 8:
                self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "UDP header")
                return
            sport = data[0] << 8 | data[1]
            dport = data[2] << 8 | data[3]
            self._udp(ts, src, sport, dst, dport, data[8:], frame)
        elif proto == 6:
            self._tcp_segment(ts, src, dst, data, frame)
        elif proto == 132:
            self._sctp_packet(ts, src, dst, data, frame)
        elif proto == 4:
            # IP-in-IP: the inner datagram is decoded like any other.
            self._ipv4(ts, data, 0, frame)
        elif proto == 41:
            self._ipv6(ts, data, 0, frame)

    def _udp(
        self, ts: float, src: str, sport: int, dst: str, dport: int, data: bytes, frame: int
    ) -> None:
        if looks_like_sip(data):
            self._out.append(Payload(ts, src, sport, dst, dport, "udp", data, frame))
        elif data[:4] == b"HEP3":
            self._hep3(ts, data, frame)
        elif (sport in self._sip_ports or dport in self._sip_ports) and data.strip(b" \t\r\n"):
            # Keep-alives (CRLF, blanks) are normal on SIP ports; anything else is named.
            self._sink(DecodeFailure.NOT_SIP, frame, f"udp {len(data)} bytes {data[:16]!r}")

    def _hep3(self, ts: float, data: bytes, frame: int) -> None:
        if len(data) < 6:
            self._sink(DecodeFailure.BAD_HEP, frame, "short HEP3 header")
            return
        total = min(data[4] << 8 | data[5], len(data))
        pos = 6
        src = dst = ""
        sport = dport = 0
        sec = usec = -1
        sip = True
        body: bytes | None = None
        while pos + 6 <= total:
            vendor = data[pos] << 8 | data[pos + 1]
            kind = data[pos + 2] << 8 | data[pos + 3]
            size = data[pos + 4] << 8 | data[pos + 5]
            if size < 6:
                self._sink(DecodeFailure.BAD_HEP, frame, f"chunk {kind} length {size}")
                return
            value = data[pos + 6 : pos + size]
            pos += size
            if vendor != 0:
                continue
            if kind == 3 and len(value) == 4:
                src = _inet_ntop(_AF_INET, value)
            elif kind == 4 and len(value) == 4:
                dst = _inet_ntop(_AF_INET, value)
            elif kind == 5 and len(value) == 16:
                src = _inet_ntop(_AF_INET6, value)
            elif kind == 6 and len(value) == 16:
                dst = _inet_ntop(_AF_INET6, value)
            elif kind == 7 and len(value) == 2:
                sport = int.from_bytes(value, "big")
            elif kind == 8 and len(value) == 2:
                dport = int.from_bytes(value, "big")
            elif kind == 9 and len(value) == 4:
                sec = int.from_bytes(value, "big")
            elif kind == 10 and len(value) == 4:
                usec = int.from_bytes(value, "big")
            elif kind == 11 and len(value) == 1:
                # Protocol type 1 is SIP; HEP also carries RTCP reports, logs, QoS.
                sip = value[0] == 1
            elif kind == 15:
                body = value
            elif kind == 16:
                try:
                    body = zlib.decompressobj().decompress(value, MAX_MESSAGE_BYTES)
                except zlib.error:
                    self._sink(DecodeFailure.BAD_HEP, frame, "bad compressed payload")
                    return
        if not sip or body is None:
            return
        # The agent's own capture time is the truth; the pcap time is when HEP was sent.
        when = sec + usec / 1e6 if sec >= 0 and usec >= 0 else ts
        if looks_like_sip(body):
            self._out.append(Payload(when, src, sport, dst, dport, "hep", body, frame))
        else:
            self._sink(DecodeFailure.NOT_SIP, frame, f"HEP payload {body[:16]!r}")

    def _flow(self, key: tuple[str, int, str, int]) -> _TcpFlow:
        flows = self._tcp
        flow = flows.get(key)
        if flow is None:
            if len(flows) >= MAX_FLOWS:
                flows.popitem(last=False)
            flow = flows[key] = _TcpFlow()
        else:
            flows.move_to_end(key)
        return flow

    def _tcp_segment(self, ts: float, src: str, dst: str, data: bytes, frame: int) -> None:
        if self._waiting and next(iter(self._waiting.values())) <= ts:
            self._expire_gaps(ts, frame)
        if len(data) < 20:
            self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "TCP header")
            return
        sport = data[0] << 8 | data[1]
        dport = data[2] << 8 | data[3]
        seq = int.from_bytes(data[4:8], "big")
        flags = data[13]
        payload = data[(data[12] >> 4) * 4 :]
        key = (src, sport, dst, dport)
        if flags & 0x02:  # SYN: the stream starts at ISN + 1
            flow = self._flow(key)
            flow.next_seq = (seq + 1) & _SEQ_MASK
            flow.out_of_order.clear()
            return
        if not payload:
            if flags & 0x05 and key in self._tcp:  # FIN or RST: the flow is over
                flow = self._tcp[key]
                if not flow.out_of_order:
                    del self._tcp[key]
            return
        flow = self._flow(key)
        if flow.kind == "ignore":
            return
        if flow.next_seq is None:
            # The capture started mid-connection: take this segment as the start.
            flow.next_seq = seq
        ahead = (seq - flow.next_seq) & _SEQ_MASK
        if ahead >= _HALF:
            behind = _SEQ_MASK + 1 - ahead
            if behind >= len(payload):
                return  # a retransmission of bytes already delivered
            payload = payload[behind:]
            ahead = 0
        if ahead:
            # Bytes are missing. Even when this segment starts a message, hold it: the
            # usual cause is a segment lost before the capture point, whose retransmission
            # comes next and must be delivered first (the INVITE before its CANCEL).
            held = flow.out_of_order
            if not held and key not in self._waiting:
                self._waiting[key] = ts + TCP_GAP_WAIT_S
            # With its own capture time: released later, it still happened now.
            held[seq] = (ts, payload)
            if len(held) > MAX_OUT_OF_ORDER:
                # The gap is never going to be filled (lost in the capture).
                self._resume(flow, ts, key, frame)
            return
        self._deliver(flow, ts, key, payload, frame)
        flow.next_seq = (flow.next_seq + len(payload)) & _SEQ_MASK
        self._drain_held(flow, ts, key, frame)

    def _drain_held(
        self, flow: _TcpFlow, since: float, key: tuple[str, int, str, int], frame: int
    ) -> None:
        """Deliver the held segments that now follow on. ``since``: when the bytes before
        them were complete; a held segment's bytes are complete at the later of that and
        its own capture time (a message completed by a late segment happened then, one
        released after a gap was given up on happened when it was captured)."""
        held = flow.out_of_order
        while held and flow.next_seq is not None:
            item = held.pop(flow.next_seq, None)
            if item is None:
                break
            seen, piece = item
            since = max(since, seen)
            self._deliver(flow, since, key, piece, frame)
            flow.next_seq = (flow.next_seq + len(piece)) & _SEQ_MASK
        if not held:
            self._waiting.pop(key, None)

    def _resume(
        self, flow: _TcpFlow, ts: float, key: tuple[str, int, str, int], frame: int
    ) -> None:
        """Give up on a flow's gap: report it, restart framing at the earliest held segment."""
        src, sport, dst, dport = key
        self._sink(DecodeFailure.TCP_GAP, frame, f"{src}:{sport}->{dst}:{dport}")
        self._waiting.pop(key, None)
        flow.framer = StreamFramer()
        base = flow.next_seq or 0
        flow.next_seq = min(flow.out_of_order, key=lambda s: (s - base) & _SEQ_MASK)
        if flow.kind == "sip":
            flow.kind = ""
        self._drain_held(flow, float("-inf"), key, frame)

    def _expire_gaps(self, ts: float, frame: int) -> None:
        waiting = self._waiting
        while waiting:
            key, deadline = next(iter(waiting.items()))
            if deadline > ts:
                return
            del waiting[key]
            flow = self._tcp.get(key)
            if flow is not None and flow.out_of_order:
                self._resume(flow, ts, key, frame)

    def flush(self, ts: float, frame: int) -> list[Payload]:
        """End of the capture: give up on every TCP gap still open, return what was held."""
        out: list[Payload] = []
        self._out = out
        self._expire_gaps(float("inf"), frame)
        return out

    def _deliver(
        self,
        flow: _TcpFlow,
        ts: float,
        key: tuple[str, int, str, int],
        data: bytes,
        frame: int,
    ) -> None:
        src, sport, dst, dport = key
        if not flow.kind:
            body = data.lstrip(b"\r\n")
            if not body:
                return
            if looks_like_sip(body):
                flow.kind = "sip"
            elif body[:12] == b"HTTP/1.1 101" or (
                body[:4] == b"GET " and b"websocket" in body[:4096].lower()
            ):
                flow.kind = "ws-http"
            else:
                start = _find_sip_start(body)
                if start >= 0:
                    # Joined mid-stream: drop the tail of a message we never saw begin.
                    flow.kind = "sip"
                    data = body[start:]
                else:
                    flow.kind = "ignore"
                    if sport in self._sip_ports or dport in self._sip_ports:
                        self._sink(
                            DecodeFailure.NOT_SIP, frame, f"tcp {src}:{sport}->{dst}:{dport}"
                        )
                    return
        if flow.kind == "sip":
            for item in flow.framer.feed(data):
                if isinstance(item, SipParseError):
                    self._sink(item.failure, frame, item.detail)
                else:
                    self._out.append(Payload(ts, src, sport, dst, dport, "tcp", item, frame))
        elif flow.kind == "ignore":
            return
        else:
            self._websocket(flow, ts, key, data, frame)

    def _websocket(
        self,
        flow: _TcpFlow,
        ts: float,
        key: tuple[str, int, str, int],
        data: bytes,
        frame: int,
    ) -> None:
        buf = flow.ws_buffer
        buf += data
        if flow.kind == "ws-http":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_MESSAGE_BYTES:
                    flow.kind = "ignore"
                    buf.clear()
                return
            del buf[: end + 4]
            flow.kind = "ws"
        src, sport, dst, dport = key
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            final = buf[0] & 0x80
            masked = buf[1] & 0x80
            size = buf[1] & 0x7F
            pos = 2
            if size == 126:
                if len(buf) < 4:
                    return
                size = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size = int.from_bytes(buf[2:10], "big")
                pos = 10
            if size > MAX_MESSAGE_BYTES:
                self._sink(DecodeFailure.BAD_WEBSOCKET, frame, f"frame of {size} bytes")
                flow.kind = "ignore"
                buf.clear()
                return
            mask = b""
            if masked:
                mask = bytes(buf[pos : pos + 4])
                pos += 4
            if len(buf) < pos + size:
                return
            payload = bytes(buf[pos : pos + size])
            del buf[: pos + size]
            if mask:
                payload = _unmask(payload, mask)
            if opcode in (0, 1, 2):
                flow.ws_message += payload
                if len(flow.ws_message) > MAX_MESSAGE_BYTES:
                    self._sink(DecodeFailure.BAD_WEBSOCKET, frame, "message too large")
                    flow.ws_message.clear()
                    continue
                if final:
                    message = bytes(flow.ws_message)
                    flow.ws_message.clear()
                    # RFC 7118: each WebSocket message carries exactly one SIP message.
                    if looks_like_sip(message):
                        payload_ws = Payload(ts, src, sport, dst, dport, "ws", message, frame)
                        self._out.append(payload_ws)
                    elif message.strip(b"\r\n"):
                        self._sink(DecodeFailure.NOT_SIP, frame, f"websocket {message[:16]!r}")

    def _sctp_packet(self, ts: float, src: str, dst: str, data: bytes, frame: int) -> None:
        if len(data) < 12:
            self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "SCTP header")
            return
        sport = data[0] << 8 | data[1]
        dport = data[2] << 8 | data[3]
        pos = 12
        while pos + 4 <= len(data):
            kind = data[pos]
            flags = data[pos + 1]
            size = data[pos + 2] << 8 | data[pos + 3]
            if size < 4:
                self._sink(DecodeFailure.TRUNCATED_PACKET, frame, "SCTP chunk length")
                return
            if kind == 0 and size >= 16:
                tsn = int.from_bytes(data[pos + 4 : pos + 8], "big")
                chunk = data[pos + 16 : pos + size]
                message = self._sctp_data((src, sport, dst, dport), tsn, flags, chunk, frame)
                if message is not None:
                    self._emit_stream_message(ts, src, sport, dst, dport, "sctp", message, frame)
            pos += (size + 3) & ~3

    def _sctp_data(
        self, key: tuple[str, int, str, int], tsn: int, flags: int, chunk: bytes, frame: int
    ) -> bytes | None:
        if flags & 0x03 == 0x03:  # B and E: an unfragmented user message
            return chunk
        held = self._sctp.get(key)
        if held is None:
            if len(self._sctp) >= MAX_FLOWS:
                self._sctp.popitem(last=False)
            held = self._sctp[key] = {}
        held[tsn] = (flags, chunk)
        if len(held) > MAX_SCTP_FRAGMENTS:
            self._sink(DecodeFailure.FRAGMENT_DROPPED, frame, "SCTP fragments")
            held.clear()
            return None
        # Walk from any End fragment back to its Beginning through consecutive TSNs.
        for end_tsn, (end_flags, _) in list(held.items()):
            if not end_flags & 0x01:
                continue
            pieces: list[int] = []
            cursor = end_tsn
            while cursor in held:
                pieces.append(cursor)
                if held[cursor][0] & 0x02:
                    message = b"".join(held[t][1] for t in reversed(pieces))
                    for t in pieces:
                        del held[t]
                    return message
                cursor = (cursor - 1) & _SEQ_MASK
        return None

    def _emit_stream_message(
        self,
        ts: float,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        transport: str,
        message: bytes,
        frame: int,
    ) -> None:
        if looks_like_sip(message):
            self._out.append(Payload(ts, src, sport, dst, dport, transport, message, frame))
        elif sport in self._sip_ports or dport in self._sip_ports:
            self._sink(DecodeFailure.NOT_SIP, frame, f"{transport} {message[:16]!r}")

"""``read_trace``: one entry point for pcap, pcapng and text SIP traces.

The result streams: calls are produced while the file is read, so a capture of
millions of packets needs memory only for the dialogs open at one time. What
could not be read is collected in ``skipped`` as it is met (the first
:data:`MAX_SKIPS_KEPT` of them, all of them counted by reason).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import dpkt  # dpkt ships no type information
import structlog
from pcapng import FileScanner  # python-pcapng ships no type information either
from pcapng.blocks import EnhancedPacket, ObsoletePacket, SimplePacket
from pcapng.exceptions import PcapngException
from pcapng.strictness import Strictness, set_strictness

from fs_plugin.replay.dialogs import (
    CLOSE_GRACE_S,
    IDLE_TIMEOUT_S,
    MAX_OPEN_DIALOGS,
    DialogGrouper,
    TraceCall,
)
from fs_plugin.replay.packets import DEFAULT_SIP_PORTS, FrameDecoder, Payload
from fs_plugin.replay.sip import SipParseError, parse_message, sketch_message
from fs_plugin.replay.text import TextTooLong, iter_text_messages

__all__ = [
    "MAX_SKIPS_KEPT",
    "Skip",
    "SkipReason",
    "TraceFormat",
    "TraceResult",
    "TraceStats",
    "detect_format",
    "read_trace",
]

# A reader takes captures as they are: python-pcapng's default raises on any block
# that is not strictly valid (a whole file lost for a cosmetic flaw) and warns on others.
set_strictness(Strictness.NONE)

log = structlog.get_logger(__name__)

#: Skips kept with their location; beyond this only the per-reason counts grow, so a
#: capture of nothing but junk cannot fill memory with reports.
MAX_SKIPS_KEPT = 10_000


class SkipReason(StrEnum):
    """Reasons the reader itself adds to the codes of ``ParseFailure`` and ``DecodeFailure``."""

    MISSING_CALL_ID = "missing_call_id"
    TRUNCATED_FILE = "truncated_file"


class TraceFormat(StrEnum):
    PCAP = "pcap"
    PCAPNG = "pcapng"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Skip:
    """Something in the trace that was not read: why (a stable code) and where."""

    reason: str
    where: str
    detail: str = ""


@dataclass(slots=True)
class TraceStats:
    """Counters filled while the trace is read (final once ``calls`` is exhausted)."""

    frames: int = 0
    messages: int = 0
    calls: int = 0
    methods: Counter[str] = field(default_factory=Counter)


_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
}


def detect_format(head: bytes) -> TraceFormat:
    """Tell the format from the first bytes of a file (magic numbers; text otherwise)."""
    if head[:4] in _PCAP_MAGICS:
        return TraceFormat.PCAP
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        return TraceFormat.PCAPNG
    return TraceFormat.TEXT


class TraceResult:
    """The calls of one trace, produced lazily, and what was skipped on the way.

    Iterate over ``calls`` (or the result itself) once. ``skipped``,
    ``skip_counts`` and ``stats`` are complete when the iteration is over. Use it
    as a context manager, or exhaust it, to close the file.
    """

    def __init__(
        self,
        path: Path,
        *,
        sip_ports: frozenset[int],
        close_grace_s: float,
        idle_timeout_s: float,
        max_open: int,
    ) -> None:
        self.path = path
        self.skipped: list[Skip] = []
        self.skip_counts: Counter[str] = Counter()
        self.stats = TraceStats()
        self._file: IO[bytes] = path.open("rb")
        try:
            self.format = detect_format(self._file.read(4))
            self._file.seek(0)
        except BaseException:
            self._file.close()
            raise
        self._sip_ports = sip_ports
        self._grouper = DialogGrouper(
            close_grace_s=close_grace_s,
            idle_timeout_s=idle_timeout_s,
            max_open=max_open,
            source=path.name,
            position_separator=":" if self.format is TraceFormat.TEXT else "#",
        )
        #: No call still to come has an event (INVITE, end) before this capture time.
        self.watermark = float("-inf")
        self.calls: Iterator[TraceCall] = self._run()

    def __iter__(self) -> Iterator[TraceCall]:
        return self.calls

    def __enter__(self) -> TraceResult:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def size(self) -> int:
        """The trace file's size in bytes (for progress)."""
        return self.path.stat().st_size

    def position(self) -> int:
        """Bytes of the file read so far (for progress)."""
        try:
            return self._file.tell()
        except ValueError:  # closed: read to the end
            return self.size

    def _advance(self, now: float, done: list[TraceCall]) -> None:
        # Called before ``done`` is handed out: the calls in it are no longer in the
        # grouper, so they bound the watermark until the next batch.
        mark = now
        oldest = self._grouper.oldest_start()
        if oldest is not None and oldest < mark:
            mark = oldest
        for call in done:
            if call.invite_time < mark:
                mark = call.invite_time
        self.watermark = mark

    @property
    def skipped_total(self) -> int:
        return sum(self.skip_counts.values())

    def _skip(self, reason: str, position: int, detail: str) -> None:
        self.skip_counts[reason] += 1
        if len(self.skipped) < MAX_SKIPS_KEPT:
            separator = ":" if self.format is TraceFormat.TEXT else "#"
            where = f"{self.path.name}{separator}{position}"
            self.skipped.append(Skip(str(reason), where, detail))

    def _run(self) -> Iterator[TraceCall]:
        try:
            if self.format is TraceFormat.TEXT:
                yield from self._run_text()
            else:
                yield from self._run_capture()
            self.watermark = float("-inf")
            for call in self._grouper.flush():
                self.stats.calls += 1
                yield call
        finally:
            self._file.close()
        log.info(
            "replay.trace_read",
            path=str(self.path),
            format=self.format.value,
            frames=self.stats.frames,
            messages=self.stats.messages,
            calls=self.stats.calls,
            skipped=self.skipped_total,
        )

    def _run_capture(self) -> Iterator[TraceCall]:
        packets: Iterator[tuple[Any, bytes]]
        pcapng: _PcapngPackets | None = None
        try:
            # dpkt's pcap reader frames the records (and knows the nanosecond and
            # byte-order variants); decoding the frames inside is ours (packets.py).
            if self.format is TraceFormat.PCAP:
                reader = dpkt.pcap.Reader(_BoundedReads(self._file))
                linktype, packets = reader.datalink(), iter(reader)
            else:
                pcapng = _PcapngPackets(self._file)
                linktype, packets = pcapng.linktype, iter(pcapng)
        except (ValueError, dpkt.dpkt.Error, struct.error) as exc:
            self._skip(SkipReason.TRUNCATED_FILE, 0, type(exc).__name__)
            return
        decoder = FrameDecoder(linktype, self._skip, sip_ports=self._sip_ports)
        feed = decoder.feed
        feed_udp4 = decoder.feed_udp4
        handle = self._handle_fast
        stats = self.stats
        frame = 0
        when = 0.0
        while True:
            try:
                ts, buf = next(packets)
            except StopIteration:
                break
            except (ValueError, dpkt.dpkt.Error, struct.error) as exc:
                # A capture cut off mid-record (a crashed tcpdump): keep what was read.
                self._skip(SkipReason.TRUNCATED_FILE, frame + 1, type(exc).__name__)
                break
            frame += 1
            if pcapng is not None:
                # Each pcapng packet has its interface's link type (Ethernet on one,
                # Linux SLL or raw IP on another); the flows they carry are shared.
                decoder.linktype = pcapng.linktype
            # Nanosecond pcaps give Decimal timestamps; the dialogs do float arithmetic.
            when = float(ts)
            single = feed_udp4(when, buf, frame)
            for payload in (single,) if single is not None else feed(when, buf, frame):
                done = handle(payload)
                if done:
                    stats.calls += len(done)
                    self._advance(payload.ts, done)
                    yield from done
        # TCP segments still held behind a gap the capture never filled.
        for payload in decoder.flush(when, frame):
            done = handle(payload)
            if done:
                stats.calls += len(done)
                self._advance(payload.ts, done)
                yield from done
        stats.frames = frame

    def _run_text(self) -> Iterator[TraceCall]:
        stats = self.stats
        for item in iter_text_messages(self._file):
            if isinstance(item, TextTooLong):
                self._skip("too_large", item.line, "message in text log")
                continue
            done = self._handle(item, allow_short_body=True)
            if done:
                stats.calls += len(done)
                self._advance(item.ts, done)
                yield from done

    def _handle(self, payload: Payload, *, allow_short_body: bool = False) -> list[TraceCall]:
        """Full parse (text logs: every message is read whole)."""
        try:
            message = parse_message(payload.data, allow_short_body=allow_short_body)
        except SipParseError as exc:
            self._skip(exc.failure, payload.frame, exc.detail)
            return []
        self.stats.messages += 1
        self.stats.methods[message.method or "response"] += 1
        if message.call_id is None:
            self._skip(SkipReason.MISSING_CALL_ID, payload.frame, message.method or "response")
        return self._grouper.add(message, payload)

    def _handle_fast(self, payload: Payload) -> list[TraceCall]:
        """Sketch first; the grouper parses in full only the messages that carry facts."""
        try:
            sketch = sketch_message(payload.data)
            self.stats.messages += 1
            self.stats.methods[sketch.method or "response"] += 1
            if sketch.call_id is None:
                self._skip(SkipReason.MISSING_CALL_ID, payload.frame, sketch.method or "response")
            return self._grouper.add_sketch(sketch, payload)
        except SipParseError as exc:
            self._skip(exc.failure, payload.frame, exc.detail)
            return []



#: A pcap record claiming more than this is a corrupt header, not a packet (no link
#: carries frames near it): dpkt would read the whole rest of the file as one packet.
_MAX_RECORD = 1 << 26


class _BoundedReads:
    """The trace file as dpkt's pcap reader sees it: a read of more than
    :data:`_MAX_RECORD` bytes (a corrupt record length) is refused with ``ValueError``,
    which ends the reading as a truncated file, instead of pulling gigabytes in."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.name = getattr(handle, "name", "<trace>")

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > _MAX_RECORD:
            raise ValueError(f"pcap record of {size} bytes")
        return self._handle.read(size)

    def tell(self) -> int:
        return self._handle.tell()


class _PcapngPackets:
    """The packets of a pcapng file, each with its own interface's link type and clock.

    dpkt's pcapng reader applies the first interface's link type and timestamp
    resolution to every packet, so in a capture from several interfaces (``dumpcap
    -i eth0 -i any``) the packets of the others were decoded as the wrong link and
    timed by the wrong clock. python-pcapng keeps each section's interfaces. Iterating
    gives ``(timestamp, frame)`` and leaves the frame's link type in :attr:`linktype`;
    a corrupt or truncated block raises ``ValueError``.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._blocks = iter(FileScanner(_BoundedReads(handle)))
        self._last_ts = 0.0
        #: The link type of the packet last returned (the decoder starts with the first's).
        self.linktype = 1
        self._first = self._next()

    def _next(self) -> tuple[float, bytes] | None:
        try:
            for block in self._blocks:
                if isinstance(block, EnhancedPacket | ObsoletePacket):
                    interface = block.interface
                    self.linktype = interface.link_type
                    ticks = block.timestamp_high << 32 | block.timestamp_low
                    return ticks / _ticks_per_second(interface) + _tsoffset(interface), \
                        block.packet_data
                if isinstance(block, SimplePacket):
                    # No timestamp of its own, and always on the section's first interface.
                    self.linktype = block.interface.link_type
                    return self._last_ts, block.packet_data
                # Other blocks (interfaces, name resolution, statistics) carry no packets.
        except (PcapngException, KeyError, IndexError, struct.error) as exc:
            # KeyError/IndexError: a packet on an interface no block described.
            raise ValueError(f"pcapng: {type(exc).__name__}: {exc}") from None
        return None

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        record, self._first = self._first, None
        while record is not None:
            self._last_ts = record[0]
            yield record
            record = self._next()


def _ticks_per_second(interface: Any) -> float:
    """From ``if_tsresol`` (default microseconds). Dividing by it, rather than multiplying
    by python-pcapng's resolution (10**-9 is no exact float), keeps 1005.0 s at 1005.0."""
    options = interface.options
    if "if_tsresol" not in options:
        return 1e6
    code = options["if_tsresol"][0]
    return float((2 if code & 0x80 else 10) ** (code & 0x7F))


def _tsoffset(interface: Any) -> float:
    """``if_tsoffset``: seconds to add to the interface's timestamps (rarely set)."""
    options = interface.options
    return float(options["if_tsoffset"]) if "if_tsoffset" in options else 0.0


def read_trace(
    path: str | Path,
    *,
    sip_ports: frozenset[int] = DEFAULT_SIP_PORTS,
    close_grace_s: float = CLOSE_GRACE_S,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
    max_open: int = MAX_OPEN_DIALOGS,
) -> TraceResult:
    """Open a pcap, pcapng or text SIP trace and return its calls as a stream.

    ``sip_ports`` are the ports where non-SIP traffic is reported as skipped
    (SIP on other ports is still found by its content). Raises ``OSError`` if the
    file cannot be opened; everything inside the file that cannot be read is
    reported in :attr:`TraceResult.skipped` instead of raised.
    """
    return TraceResult(
        Path(path),
        sip_ports=sip_ports,
        close_grace_s=close_grace_s,
        idle_timeout_s=idle_timeout_s,
        max_open=max_open,
    )

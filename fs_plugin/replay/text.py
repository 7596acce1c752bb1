"""SIP messages from text logs: SIPp ``-trace_msg`` logs and plain dumps of messages.

A text log is a sequence of SIP messages with some text between them: SIPp's
``----- 2026-11-23 08:32:39.058166`` line and ``UDP message sent (556 bytes):``,
ngrep's ``U 2024/01/02 10:00:00.123 1.2.3.4:5060 -> 5.6.7.8:5060``, or nothing
but blank lines. The reader does not need to know which tool wrote the file: a
SIP start line begins a message; the text before it may give a timestamp, a
direction and addresses, which are kept if found.

A message's body ends at the next marker or start line, or at the first blank
line once Content-Length bytes are collected. Byte counts in a log are only
approximate (line ends are rewritten), so a body shorter than Content-Length is
accepted here.

Timestamps without a zone are read as UTC (SIPp writes the local time of the
machine it ran on, which the log does not record). A log without timestamps
gives every message time 0.0, so its calls carry no timing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from fs_plugin.replay.packets import Payload
from fs_plugin.replay.sip import MAX_MESSAGE_BYTES, looks_like_sip

__all__ = ["TextTooLong", "iter_text_messages"]

_STAMP = re.compile(
    rb"(\d{4})[-/](\d\d)[-/](\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
)
_MARKER = re.compile(
    rb"^(?:-{3,}|={3,}|\*{3,}|#{3,}|(?:UDP|TCP|TLS|SCTP|WSS?) message |[UT] \d{4}/\d\d/\d\d )",
    re.IGNORECASE,
)
_ADDRESSES = re.compile(
    rb"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})\s*-+>\s*"
    rb"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})"
)
_TRANSPORT = re.compile(rb"\b(UDP|TCP|TLS|SCTP|WSS?)\b", re.IGNORECASE)
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", re.IGNORECASE)


class TextTooLong:
    """A message in a text log larger than :data:`MAX_MESSAGE_BYTES` (reported, not kept)."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line


def _stamp(line: bytes) -> float | None:
    match = _STAMP.search(line)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or b"0"
    try:
        when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return float(when.timestamp() + int(fraction) / 10 ** len(fraction))


class _Context:
    __slots__ = ("dport", "dst", "sport", "src", "transport", "ts")

    def __init__(self) -> None:
        self.ts = 0.0
        self.src: str = ""
        self.sport = 0
        self.dst: str = ""
        self.dport = 0
        self.transport = "text"

    def absorb(self, line: bytes) -> None:
        when = _stamp(line)
        if when is not None:
            self.ts = when
        match = _ADDRESSES.search(line)
        if match is not None:
            self.src = match.group(1).strip(b"[]").decode("ascii")
            self.sport = int(match.group(2))
            self.dst = match.group(3).strip(b"[]").decode("ascii")
            self.dport = int(match.group(4))
        kind = _TRANSPORT.search(line)
        if kind is not None:
            self.transport = kind.group(1).decode("ascii").lower()


def iter_text_messages(lines: Iterable[bytes]) -> Iterator[Payload | TextTooLong]:
    """Cut a text log (lines, with or without line ends) into SIP messages.

    Each message comes as a :class:`Payload` whose ``frame`` is the 1-based line
    number of its start line and whose addresses are empty when the log has
    none (``src`` ``""``, ports 0).
    """
    context = _Context()
    head: list[bytes] = []
    body: list[bytes] = []
    in_body = False
    length = -1
    size = 0
    body_size = 0
    start_line = 0
    too_long = False

    def finish() -> Payload | TextTooLong:
        if too_long:
            return TextTooLong(start_line)
        data = b"\r\n".join(head) + b"\r\n\r\n"
        if body:
            data += b"\r\n".join(body) + b"\r\n"
        return Payload(
            context.ts,
            context.src,
            context.sport,
            context.dst,
            context.dport,
            context.transport,
            data,
            start_line,
        )

    number = 0
    for raw in lines:
        number += 1
        line = raw.rstrip(b"\r\n")
        if head:
            starts = looks_like_sip(line)
            if starts or _MARKER.match(line) is not None:
                yield finish()
                head, body, in_body = [], [], False
            elif not in_body:
                if line.strip():
                    size += len(line) + 2
                    too_long = too_long or size > MAX_MESSAGE_BYTES
                    if not too_long:
                        head.append(line)
                    match = _CONTENT_LENGTH.match(line)
                    if match is not None:
                        length = int(match.group(1))
                else:
                    in_body = True
                    if length <= 0:
                        # No body announced: the message is complete at the blank line.
                        yield finish()
                        head, body, in_body = [], [], False
                continue
            else:
                if not line.strip() and body_size >= length:
                    yield finish()
                    head, body, in_body = [], [], False
                else:
                    size += len(line) + 2
                    too_long = too_long or size > MAX_MESSAGE_BYTES
                    if not too_long:
                        body.append(line)
                    body_size += len(line) + 2
                continue
        if looks_like_sip(line):
            head = [line]
            body = []
            in_body = False
            length = -1
            body_size = 0
            size = len(line) + 2
            start_line = number
            too_long = False
            continue
        if line.strip():
            context.absorb(line)
    if head:
        yield finish()

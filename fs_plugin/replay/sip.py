"""A small, strict-enough SIP message parser for replaying captured traffic.

The replay only reads what real trunks put on the wire, so this parser is
tolerant where captures are sloppy (LF-only line ends, folded headers, compact
header names, trailing bytes after a datagram's body) and strict where guessing
would give wrong call facts (no start line, a header line without a colon, a
Content-Length that is not a number). Every refusal is a :class:`SipParseError`
carrying a stable :class:`ParseFailure` code, so the reader can name what it
skipped without looking at message text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from fs_plugin.errors import RemoteProtocolError

__all__ = [
    "COMPACT_HEADERS",
    "MAX_MESSAGE_BYTES",
    "NameAddr",
    "ParseFailure",
    "SipMessage",
    "SipParseError",
    "SipSketch",
    "StreamFramer",
    "looks_like_sip",
    "parse_message",
    "parse_name_addr",
    "sketch_message",
    "uri_user",
]

#: Largest SIP message accepted, head and body. A UDP datagram cannot exceed 64 KiB;
#: over TCP a message with a large body (ISUP, multipart, the 64 KiB test INVITE)
#: still fits, while a runaway stream without a header end cannot eat memory.
MAX_MESSAGE_BYTES = 256 * 1024

#: RFC 3261 §7.3.3 and later RFCs' single-letter header names, expanded on parse.
COMPACT_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "a": "accept-contact",
        "b": "referred-by",
        "c": "content-type",
        "d": "request-disposition",
        "e": "content-encoding",
        "f": "from",
        "i": "call-id",
        "j": "reject-contact",
        "k": "supported",
        "l": "content-length",
        "m": "contact",
        "n": "identity-info",
        "o": "event",
        "r": "refer-to",
        "s": "subject",
        "t": "to",
        "u": "allow-events",
        "v": "via",
        "x": "session-expires",
        "y": "identity",
    }
)


class ParseFailure(StrEnum):
    """Why bytes were not accepted as a SIP message (stable codes for skip reports)."""

    NOT_SIP = "not_sip"
    BAD_START_LINE = "bad_start_line"
    BAD_HEADER = "bad_header"
    BAD_CONTENT_LENGTH = "bad_content_length"
    TRUNCATED_BODY = "truncated_body"
    TOO_LARGE = "too_large"


class SipParseError(RemoteProtocolError):
    """Bytes that are not a usable SIP message. ``failure`` says why, ``detail`` shows where."""

    def __init__(self, failure: ParseFailure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure
        self.detail = detail


_EMPTY_HEADERS: Mapping[str, tuple[str, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One parsed SIP request or response.

    ``headers`` maps lower-case full header names (compact forms expanded) to
    every value in arrival order; a header line holding comma-separated values
    stays one value, because splitting on commas breaks quoted display names.
    """

    method: str
    request_uri: str
    status: int
    reason: str
    headers: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: _EMPTY_HEADERS, hash=False, compare=False
    )
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.status == 0

    def header(self, name: str) -> str | None:
        """First value of a header (any case, compact or full name), or ``None``."""
        values = self.headers.get(name) or self.headers.get(_canonical(name))
        return values[0] if values else None

    def header_values(self, name: str) -> tuple[str, ...]:
        return self.headers.get(_canonical(name), ())

    @property
    def call_id(self) -> str | None:
        return self.header("call-id")

    @property
    def cseq(self) -> tuple[int, str] | None:
        """``(number, METHOD)`` from CSeq, or ``None`` when absent or unreadable."""
        value = self.header("cseq")
        if value is None:
            return None
        number, _, method = value.partition(" ")
        number = number.strip()
        if not (number.isascii() and number.isdigit()):
            return None
        return int(number), method.strip().upper()


def _canonical(name: str) -> str:
    lowered = name.strip().lower()
    return COMPACT_HEADERS.get(lowered, lowered)


_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_FOLD = re.compile(r"\n[ \t]+")
#: Raw header names seen before → canonical name. Trunks use a few dozen spellings;
#: the bound keeps a trace of random names from growing it.
_NAME_CACHE: dict[str, str] = {}
_NAME_CACHE_SIZE = 1024


def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def looks_like_sip(data: bytes) -> bool:
    """Cheap test on the first line: a SIP request line or status line.

    Used before a full parse to tell SIP from RTP, HTTP and junk without
    paying for it on every media packet.
    """
    if data[:8] == b"SIP/2.0 ":
        return True
    first = data[:1]
    if not (b"A" <= first <= b"Z"):
        return False
    end = data.find(b"\n", 0, 2048)
    line = data[:end] if end >= 0 else data[:2048]
    return line.rstrip(b"\r").endswith(b" SIP/2.0")


def _head_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int]:
    """``(end of head, start of body)``; ``(-1, -1)`` when no blank line is there yet."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start, crlf if crlf >= 0 else len(data))
    if crlf >= 0 and lf < 0:
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    return -1, -1


def _parse_start_line(line: str) -> tuple[str, str, int, str]:
    if line.startswith("SIP/2.0 "):
        code, _, reason = line[8:].partition(" ")
        if len(code) != 3 or not (code.isascii() and code.isdigit()) or code[0] == "0":
            raise SipParseError(ParseFailure.BAD_START_LINE, line[:80])
        return "", "", int(code), reason.strip()
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        failure = ParseFailure.BAD_START_LINE if "SIP/2.0" in line else ParseFailure.NOT_SIP
        raise SipParseError(failure, line[:80])
    method, uri = parts[0], parts[1]
    if not _is_token(method) or not uri:
        raise SipParseError(ParseFailure.BAD_START_LINE, line[:80])
    return method.upper(), uri, 0, ""


def parse_message(data: bytes, *, allow_short_body: bool = False) -> SipMessage:
    """Parse one SIP message (a datagram, or one message cut from a stream).

    Bytes after the Content-Length body are ignored (RFC 3261 §18.3 lets a UDP
    receiver discard them). With no Content-Length the body runs to the end.
    ``allow_short_body`` accepts a body shorter than Content-Length: text logs
    re-join lines, so their byte counts are approximate.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(ParseFailure.TOO_LARGE, f"{len(data)} bytes")
    head_end, body_start = _head_end(data)
    if head_end < 0:
        head_end = body_start = len(data)
    # UTF-8 is what SIP carries (display names); undecodable bytes become U+FFFD
    # instead of failing the message, since only a few fields are ever read.
    head = data[:head_end].decode("utf-8", "replace")
    if "\r" in head:
        head = head.replace("\r\n", "\n")
    if "\n " in head or "\n\t" in head:
        # Folded continuation lines join the previous header line (RFC 3261 §7.3.1).
        head = _FOLD.sub(" ", head)
    lines = head.split("\n")
    method, uri, status, reason = _parse_start_line(lines[0].strip())

    headers: dict[str, tuple[str, ...]] = {}
    names = _NAME_CACHE
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        key = names.get(name)
        if key is None:
            if not line.strip():
                continue
            if line[0] in " \t":
                # Only a continuation before the first header gets here.
                raise SipParseError(ParseFailure.BAD_HEADER, line[:80])
            key = name.strip().lower()
            if not colon or _TOKEN.fullmatch(key) is None:
                raise SipParseError(ParseFailure.BAD_HEADER, line[:80])
            key = COMPACT_HEADERS.get(key, key)
            if len(names) < _NAME_CACHE_SIZE:
                names[name] = key
        elif not colon:
            raise SipParseError(ParseFailure.BAD_HEADER, line[:80])
        previous = headers.get(key)
        headers[key] = (value.strip(),) if previous is None else (*previous, value.strip())

    body = data[body_start:]
    lengths = headers.get("content-length")
    if lengths:
        text = lengths[0]
        if not (text.isascii() and text.isdigit()):
            raise SipParseError(ParseFailure.BAD_CONTENT_LENGTH, text[:40])
        length = int(text)
        # A head with bare-LF line ends was rewritten by some tool (HEP generators, log
        # exports) and its Content-Length still counts CRLFs: trust the bytes present.
        rewritten = data[head_end : head_end + 2] == b"\n\n"
        if length > len(body) and not (allow_short_body or rewritten):
            raise SipParseError(
                ParseFailure.TRUNCATED_BODY, f"Content-Length {length}, {len(body)} bytes"
            )
        body = body[:length]
    return SipMessage(method, uri, status, reason, MappingProxyType(headers), bytes(body))


_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)")

_START_LINE = re.compile(
    rb"(?:SIP/2\.0 ([1-9][0-9][0-9])(?:[ \t][^\r\n]*)?"
    rb"|([A-Za-z0-9\-.!%*_+`'~]+) [^ \r\n]+ SIP/2\.0)"
    rb"[ \t]*\r?(?:\n|$)"
)
_KEY_HEADERS = re.compile(
    rb"\n(call-id|i|cseq|content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE
)


# Spellings seen on the wire → 0 Call-ID, 1 CSeq, 2 Content-Length (others: lower-cased).
_SKETCH_NAMES = {
    b"Call-ID": 0,
    b"Call-Id": 0,
    b"call-id": 0,
    b"i": 0,
    b"CSeq": 1,
    b"cseq": 1,
    b"Content-Length": 2,
    b"l": 2,
}


class SipSketch(NamedTuple):
    """The few fields of a message needed to place it in a dialog (see :func:`sketch_message`)."""

    method: str
    status: int
    call_id: str | None
    cseq: int
    cseq_method: str


def sketch_message(data: bytes) -> SipSketch:
    """Read only the start line, Call-ID, CSeq and Content-Length of a message.

    A full parse costs several times more and most messages of a call (100
    Trying, ACK, the 200 to a BYE) only need placing in their dialog. The checks
    made here are the ones :func:`parse_message` makes on those fields, so a
    message refused by one is refused by the other for the same reason; a
    malformed line elsewhere in the head is only noticed by a full parse.
    ``cseq`` is -1 when CSeq is missing or unreadable.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(ParseFailure.TOO_LARGE, f"{len(data)} bytes")
    start = _START_LINE.match(data)
    if start is None:
        line = data[: data.find(b"\n")] if b"\n" in data else data[:80]
        failure = ParseFailure.BAD_START_LINE if b" SIP/2.0" in line else ParseFailure.NOT_SIP
        raise SipParseError(failure, line[:80].decode("utf-8", "replace"))
    code, token = start.groups()
    head_end, body_start = _head_end(data)
    if head_end < 0:
        head_end = body_start = len(data)
    call_id: str | None = None
    cseq = -1
    cseq_method = ""
    length_seen = False
    for name, value in _KEY_HEADERS.findall(data, 0, head_end):
        kind = _SKETCH_NAMES.get(name)
        if kind is None:
            kind = _SKETCH_NAMES.get(name.lower(), 2)
        if kind == 0:
            if call_id is None:
                call_id = value.strip().decode("utf-8", "replace") or None
        elif kind == 1:
            if cseq < 0:
                cseq, cseq_method = _cseq_value(value)
        elif not length_seen:
            length_seen = True
            length = _LENGTH_VALUES.get(value)
            if length is None:
                text = value.strip()
                if not text.isdigit():
                    raise SipParseError(
                        ParseFailure.BAD_CONTENT_LENGTH, text[:40].decode("utf-8", "replace")
                    )
                length = int(text)
                if len(_LENGTH_VALUES) < _VALUE_CACHE_SIZE:
                    _LENGTH_VALUES[value] = length
            if length > len(data) - body_start and data[head_end : head_end + 2] != b"\n\n":
                # (A head with bare-LF line ends was rewritten: see parse_message.)
                raise SipParseError(
                    ParseFailure.TRUNCATED_BODY,
                    f"Content-Length {length}, {len(data) - body_start} bytes",
                )
    if code is not None:
        return SipSketch("", int(code), call_id, cseq, cseq_method)
    return SipSketch(token.decode("ascii").upper(), 0, call_id, cseq, cseq_method)


#: Raw CSeq and Content-Length values seen before, parsed: a trunk sends a handful
#: ('1 INVITE', '2 BYE', '0', the sizes of its SDP), so parsing them once per value
#: saves most of the work; the bound keeps random values from growing the caches.
_CSEQ_VALUES: dict[bytes, tuple[int, str]] = {}
_LENGTH_VALUES: dict[bytes, int] = {}
_VALUE_CACHE_SIZE = 4096


def _cseq_value(value: bytes) -> tuple[int, str]:
    """``(number, METHOD)`` of a raw CSeq value; ``(-1, "")`` when the number is unreadable."""
    parsed = _CSEQ_VALUES.get(value)
    if parsed is None:
        number, _, method = value.strip().partition(b" ")
        if number.isdigit():
            parsed = (int(number), method.strip().decode("ascii", "replace").upper())
        else:
            parsed = (-1, "")
        if len(_CSEQ_VALUES) < _VALUE_CACHE_SIZE:
            _CSEQ_VALUES[value] = parsed
    return parsed


class StreamFramer:
    """Cuts SIP messages out of a reliable byte stream (TCP, reassembled SCTP).

    Messages are framed by Content-Length (mandatory on streams, RFC 3261
    §18.3); a missing one means an empty body. Keep-alive CRLFs between messages
    are dropped. The buffer never holds more than :data:`MAX_MESSAGE_BYTES`.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes | SipParseError]:
        """Add stream bytes; return complete messages and framing errors, in order."""
        buf = self._buffer
        buf += data
        out: list[bytes | SipParseError] = []
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
                skip += 1
            if skip:
                del buf[:skip]
            if not buf:
                return out
            head_end, body_start = _head_end(buf)
            if head_end < 0:
                if len(buf) > MAX_MESSAGE_BYTES:
                    out.append(SipParseError(ParseFailure.TOO_LARGE, "no end of headers"))
                    buf.clear()
                return out
            match = _CONTENT_LENGTH.search(buf, 0, head_end)
            length = 0
            if match is not None:
                text = match.group(1).strip()
                if not text.isdigit():
                    # Without a length the stream cannot be framed any further from here;
                    # drop this head and try again at whatever follows it.
                    out.append(
                        SipParseError(
                            ParseFailure.BAD_CONTENT_LENGTH, text[:40].decode("latin-1")
                        )
                    )
                    del buf[:body_start]
                    continue
                length = int(text)
            end = body_start + length
            if end > MAX_MESSAGE_BYTES:
                out.append(SipParseError(ParseFailure.TOO_LARGE, f"{end} bytes"))
                buf.clear()
                return out
            if len(buf) < end:
                return out
            out.append(bytes(buf[:end]))
            del buf[:end]

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a message."""
        return len(self._buffer)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """The parts of a From/To/P-Asserted-Identity/Diversion value the replay uses."""

    display: str
    uri: str
    user: str
    tag: str | None


def uri_user(uri: str) -> str:
    """User part of a SIP/SIPS/TEL URI, as sofia's ``url_user`` gives it ("" if none)."""
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return ""
    scheme = scheme.strip().lower()
    if scheme in ("sip", "sips"):
        at = rest.rfind("@")
        if at < 0:
            return ""
        user = rest[:at]
        # ``user:password@host``: the password is not part of the user.
        return user.partition(":")[0]
    # tel: and other schemes: the number runs to the first parameter.
    return rest.partition(";")[0].partition("@")[0].strip()


def _unquote(text: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(ch)
    return "".join(out)


# The shape nearly every From/To/P-Asserted-Identity has: an optional quoted display name
# without escapes, <sip:user@host> with neither spaces nor anything to unquote, and no
# header parameters or a tag first. For it, the general walk below comes to these groups.
_PLAIN_NAME_ADDR = re.compile(
    r'(?:"([^"\\]*)"[ \t]*)?<(sips?:([^@:<>"\\\s]*)@[^@<>"\\\s]*)>(?:;tag=([^;,\s]*)(?:;.*)?)?'
)


def parse_name_addr(value: str) -> NameAddr:
    """Split ``"Name" <sip:user@host>;tag=x`` (or a bare ``sip:user@host;tag=x``).

    Only the first of several comma-separated values is read; a display name in
    quotes may itself hold ``<``, ``,`` or ``\\"``.
    """
    text = value.strip()
    plain = _PLAIN_NAME_ADDR.fullmatch(text)
    if plain is not None:
        display, uri, user, tag = plain.groups()
        return NameAddr(display=display or "", uri=uri, user=user, tag=tag)
    return _parse_name_addr(text)


def _parse_name_addr(text: str) -> NameAddr:
    """:func:`parse_name_addr` of a stripped value of any shape."""
    display = ""
    rest = text
    if text.startswith('"'):
        i = 1
        while i < len(text):
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == '"':
                break
            i += 1
        display = _unquote(text[1:i])
        rest = text[i + 1 :]
    lt = rest.find("<")
    if lt >= 0:
        if not display:
            display = rest[:lt].strip()
        gt = rest.find(">", lt)
        uri = rest[lt + 1 : gt] if gt >= 0 else rest[lt + 1 :]
        params = rest[gt + 1 :] if gt >= 0 else ""
    else:
        # addr-spec without brackets: everything after the first ';' is a header param.
        uri, _, params = rest.strip().partition(";")
        uri = uri.partition(",")[0]
        params = ";" + params if params else ""
    tag: str | None = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "tag":
            tag = val.strip().partition(",")[0]
            break
    uri = uri.strip()
    return NameAddr(display=display, uri=uri, user=uri_user(uri), tag=tag)

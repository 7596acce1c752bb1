"""Frames, typed events and the incremental frame splitter.

A FreeSWITCH frame is a header block ended by an empty line, then exactly
``Content-Length`` body bytes when that header is present. Frames are split on raw
bytes *before* anything is decoded, so an encoded ``%0A`` inside a value can never
create a header line; only the values FreeSWITCH URL-encodes (plain-event headers,
channel data, XML event headers) are decoded, and only once the frame is complete.
"""

from __future__ import annotations

import json
import operator
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Generic, Literal, TypeAlias, TypeVar, overload

from fs_plugin.esl._errors import Reason, RemoteEslError
from fs_plugin.esl._urlcode import fs_url_decode, fs_url_decode_bytes

if TYPE_CHECKING:
    from fs_plugin.esl._commands import Command

__all__ = [
    "NEED_DATA",
    "ApiResponse",
    "AuthRequest",
    "BlockSplitter",
    "ChannelData",
    "CommandReply",
    "ConnectionClosed",
    "DisconnectNotice",
    "EslEvent",
    "Event",
    "Frame",
    "FrameSplitter",
    "LogData",
    "NeedData",
    "RudeRejection",
    "UnknownFrame",
]


class NeedData(Enum):
    """Type of the :data:`NEED_DATA` sentinel (an enum member: a typed singleton)."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData.NEED_DATA

Headers: TypeAlias = tuple[tuple[str, str], ...]
P = TypeVar("P")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Frame:
    """One wire frame: every header line in wire order, exactly as sent, and the body.

    Values are *not* URL-decoded here: what FreeSWITCH encodes depends on the frame kind,
    and the typed events below decode what needs decoding.
    """

    headers: Headers
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The first header called ``name`` (case-sensitive, as FreeSWITCH spells it)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def content_type(self) -> str | None:
        return self.get("Content-Type")


@dataclass(frozen=True)
class AuthRequest:
    """``auth/request``: an inbound connection must now send ``auth <password>``."""

    frame: Frame


@dataclass(frozen=True)
class CommandReply:
    """``command/reply``. ``command`` is the command it answers (FIFO correlation)."""

    reply_text: str
    ok: bool
    job_uuid: str | None
    frame: Frame
    command: Command | None = None


@dataclass(frozen=True)
class ApiResponse:
    """``api/response``: the synchronous result of ``api``; ``ok`` is False for ``-ERR``."""

    body: str
    ok: bool
    frame: Frame
    command: Command | None = None


@dataclass(frozen=True)
class ChannelData:
    """The reply to an outbound ``connect``: the channel's headers, URL-decoded.

    ``headers`` holds every header of the frame (the channel's, then ``Content-Type``,
    ``Reply-Text`` = "+OK\\n", ``Socket-Mode``, ``Control``); where a name repeats, the
    last one wins, as for events.
    """

    headers: Mapping[str, str]
    socket_mode: str | None
    control: str | None
    unique_id: str
    frame: Frame
    reply_text: str = ""


@dataclass(frozen=True)
class EslEvent:
    """An event in any of FreeSWITCH's three formats, normalised to the same shape.

    ``headers`` maps each header to its decoded value. Repeated headers: the **last one
    wins**, in every format. That choice is deliberate: when an event has a body,
    FreeSWITCH's serialisers append their own ``Content-Length`` after the event's headers
    (the CUSTOM event in ``in_api_bgapi_responses_plain_xml_json`` carries a user-supplied
    one first), so the last one is the authoritative length. ``header_list`` keeps every
    pair in order for whoever needs the duplicates. JSON arrays (``variable_DP_MATCH``)
    are rendered the way plain events carry them, ``ARRAY::a|:b``.
    """

    name: str
    headers: Mapping[str, str]
    body: str | None
    format: Literal["plain", "json", "xml"]
    frame: Frame
    header_list: Headers = ()


@dataclass(frozen=True)
class DisconnectNotice:
    """``text/disconnect-notice``: FreeSWITCH is letting go (``linger``: not yet)."""

    disposition: str | None
    controlled_session_uuid: str | None
    linger_time: str | None
    body: str
    frame: Frame


@dataclass(frozen=True)
class RudeRejection:
    """``text/rude-rejection``: the switch's ACL refused us before any auth/request."""

    text: str
    frame: Frame


@dataclass(frozen=True)
class LogData:
    """``log/data``: one log line after ``log <level>``."""

    level: str | None
    body: str
    frame: Frame


@dataclass(frozen=True)
class UnknownFrame:
    """A well-framed frame of a content type this codec does not know (kept, not fatal)."""

    frame: Frame


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection and every buffered frame has been returned."""


Event: TypeAlias = (
    AuthRequest
    | CommandReply
    | ApiResponse
    | ChannelData
    | EslEvent
    | DisconnectNotice
    | RudeRejection
    | LogData
    | UnknownFrame
    | ConnectionClosed
)

# ---------------------------------------------------------------------------------------
# Header blocks

_DIGITS = re.compile(rb"[0-9]{1,15}")


# A line is "name: value", split at the first ": " (so a name never starts with ": ").
_HEADER_LINE = re.compile(rb"^(?!: )([^\n]+?): ([^\n]*)$", re.MULTILINE)


_NAME = operator.itemgetter(0)
_SEPARATOR = operator.itemgetter(1)


def parse_header_lines(block: bytes) -> Headers:
    """Split a header block (without its terminating empty line) into (name, value) pairs.

    Lines end with ``\n``; a ``\r`` before it is dropped so ``\r\n`` works too. Names
    must be valid UTF-8 (they are protocol tokens); values are decoded leniently, since
    FreeSWITCH passes some through raw (``getvar`` replies, ``Channel-Name``). The block
    is split on raw bytes; nothing is URL-decoded here.
    """
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if block.endswith(b"\r"):
            block = block[:-1]
    # Fast path: decode to text once, then split. Splitting UTF-8 text on "\n" is the same
    # as splitting the bytes (0x0A never occurs inside a multi-byte sequence), and nothing
    # is URL-decoded here, so a %0A in a value stays inside its line. A replacement
    # character means invalid UTF-8 somewhere: the strict path below decides whether it
    # is in a name (an error) or only in a value (tolerated).
    text = block.decode("utf-8", errors="replace")
    # Comprehensions and C-level membership tests: ~150 lines per channel data, every call.
    parts = [text_line.partition(": ") for text_line in text.split("\n")]
    complete = "" not in map(_SEPARATOR, parts) and "" not in map(_NAME, parts)
    pairs = [(key, value) for key, _, value in parts] if complete else []
    if complete and ("\ufffd" not in text or not any("\ufffd" in k for k, _ in pairs)):
        return tuple(pairs)
    for line in block.split(b"\n"):
        name, sep, _ = line.partition(b": ")
        if not sep:
            raise RemoteEslError(Reason.BAD_HEADER_LINE, f"no ': ' in header line {line!r:.80}")
        if not name:
            raise RemoteEslError(Reason.BAD_HEADER_NAME, f"empty header name: {line!r:.80}")
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteEslError(
                Reason.BAD_HEADER_NAME, f"header name not UTF-8: {name!r:.80}"
            ) from None
    if complete:  # every name is valid UTF-8 (one merely contains U+FFFD itself)
        return tuple(pairs)
    raise RemoteEslError(Reason.BAD_HEADER_LINE, "unparseable header block")


def parse_length(text: str, *, limit: int) -> int:
    """A ``Content-Length`` value: plain ASCII digits, no sign, no spaces, within ``limit``."""
    raw = text.encode("utf-8", errors="replace")
    if not _DIGITS.fullmatch(raw):
        raise RemoteEslError(Reason.BAD_CONTENT_LENGTH, f"bad Content-Length {text!r:.40}")
    length = int(raw)
    if length > limit:
        raise RemoteEslError(Reason.FRAME_TOO_LARGE, f"Content-Length {length} > limit {limit}")
    return length


# ---------------------------------------------------------------------------------------
# Incremental splitting


class BlockSplitter(Generic[P]):
    """Splits a byte stream into (header block, body) units, incrementally, in linear time.

    The end of a header block is searched only in bytes not yet searched (plus two bytes
    of overlap for a terminator that straddles two reads), so feeding one byte at a time
    costs O(1) per byte, and a stream with no terminator fails as soon as it passes
    ``max_header_bytes`` instead of being rescanned forever. Subclasses say how a block
    is parsed and how long its body is.
    """

    def __init__(self, *, max_header_bytes: int, max_frame_size: int) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._parsed: P | None = None  # parsed header block awaiting its body
        self._body_len = 0
        self.max_header_bytes = max_header_bytes
        self.max_frame_size = max_frame_size

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def has_partial(self) -> bool:
        """True when bytes of an unfinished unit are buffered (blank lines don't count)."""
        return self._parsed is not None or bool(self._buf.strip(b"\r\n"))

    def _parse_block(self, block: bytes) -> tuple[P, int]:
        raise NotImplementedError

    def next_unit(self) -> tuple[P, bytes] | None:
        buf = self._buf
        if self._parsed is None:
            # Blank lines between units carry nothing; drop them so they never count
            # toward a header block (h11 does the same between HTTP messages).
            skip = 0
            while skip < len(buf) and buf[skip] in (0x0A, 0x0D):
                skip += 1
            if skip:
                del buf[:skip]
                self._scan_from = 0
            end, after = self._find_block_end()
            if end < 0:
                if len(buf) > self.max_header_bytes:
                    raise RemoteEslError(
                        Reason.HEADER_TOO_LARGE,
                        f"no end of header block within {self.max_header_bytes} bytes",
                    )
                return None
            if end > self.max_header_bytes:
                raise RemoteEslError(
                    Reason.HEADER_TOO_LARGE,
                    f"header block of {end} bytes > {self.max_header_bytes}",
                )
            parsed, length = self._parse_block(bytes(buf[:end]))
            del buf[:after]
            self._scan_from = 0
            self._parsed = parsed
            self._body_len = length
        if len(buf) < self._body_len:
            return None
        body = bytes(buf[: self._body_len])
        del buf[: self._body_len]
        unit = (self._parsed, body)
        self._parsed = None
        self._body_len = 0
        return unit

    def _find_block_end(self) -> tuple[int, int]:
        """(end of the header lines, start of what follows the empty line), or (-1, -1)."""
        buf = self._buf
        start = self._scan_from
        lf = buf.find(b"\n\n", start)
        crlf = buf.find(b"\n\r\n", start)
        if lf < 0 and crlf < 0:
            # Keep two bytes of overlap: "\n\r" + a later "\n" must still be found.
            self._scan_from = max(0, len(buf) - 2)
            return -1, -1
        if crlf < 0 or (0 <= lf < crlf):
            end, after = lf, lf + 2
        else:
            end, after = crlf, crlf + 3
        # The last header line may itself end in "\r\n": drop that "\r" from the block.
        if end > 0 and buf[end - 1] == 0x0D:
            end -= 1
        return end, after


class FrameSplitter(BlockSplitter[Headers]):
    """FreeSWITCH's frames: ``Name: value`` lines; all ``Content-Length`` values agree."""

    def _parse_block(self, block: bytes) -> tuple[Headers, int]:
        headers = parse_header_lines(block)
        lengths = {value for name, value in headers if name == "Content-Length"}
        if len(lengths) > 1:
            raise RemoteEslError(
                Reason.CONFLICTING_CONTENT_LENGTH, f"Content-Length values {sorted(lengths)}"
            )
        length = 0
        if lengths:
            length = parse_length(next(iter(lengths)), limit=self.max_frame_size)
        return headers, length

    def next_frame(self) -> Frame | None:
        unit = self.next_unit()
        if unit is None:
            return None
        return Frame(*unit)


# ---------------------------------------------------------------------------------------
# Typed decoding of complete frames


def decode_reply(frame: Frame, command: Command | None) -> CommandReply:
    text = frame.get("Reply-Text") or ""
    return CommandReply(
        reply_text=text,
        ok=text.startswith("+OK"),
        job_uuid=frame.get("Job-UUID"),
        frame=frame,
        command=command,
    )


def decode_api(frame: Frame, command: Command | None) -> ApiResponse:
    body = frame.body.decode("utf-8", errors="replace")
    return ApiResponse(body=body, ok=not body.startswith("-ERR"), frame=frame, command=command)


class _DecodedHeaders(Mapping[str, str]):
    """Channel-data headers, URL-decoded on first access.

    A connect reply carries ~150 headers and the controller reads about fifteen of them;
    decoding only those keeps the per-call cost down. Repeated names: the last wins, as
    everywhere in this codec.
    """

    __slots__ = ("_cache", "_raw")

    def __init__(self, headers: Headers) -> None:
        self._raw = dict(headers)
        self._cache: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        try:
            return self._cache[name]
        except KeyError:
            value = self._cache[name] = fs_url_decode(self._raw[name])
            return value

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str) -> str: ...
    @overload
    def get(self, name: str, /, default: _T) -> str | _T: ...

    def get(self, name: str, /, default: object = None) -> object:
        # Mapping.get goes through __getitem__ and a KeyError for every absent header;
        # the screening facts ask for a dozen that most calls do not carry.
        value = self._cache.get(name)
        if value is None:
            raw = self._raw.get(name)
            if raw is None:
                return default
            value = self._cache[name] = fs_url_decode(raw)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __repr__(self) -> str:
        return f"_DecodedHeaders({len(self._raw)} headers)"


def decode_channel_data(frame: Frame) -> ChannelData:
    decoded = _DecodedHeaders(frame.headers)
    unique_id = decoded.get("Unique-ID")
    if not unique_id:
        raise RemoteEslError(Reason.BAD_CHANNEL_DATA, "connect reply without Unique-ID")
    return ChannelData(
        headers=decoded,
        socket_mode=decoded.get("Socket-Mode"),
        control=decoded.get("Control"),
        unique_id=unique_id,
        frame=frame,
        reply_text=decoded.get("Reply-Text", ""),
    )


def decode_disconnect(frame: Frame) -> DisconnectNotice:
    return DisconnectNotice(
        disposition=frame.get("Content-Disposition"),
        controlled_session_uuid=frame.get("Controlled-Session-UUID"),
        linger_time=frame.get("Linger-Time"),
        body=frame.body.decode("utf-8", errors="replace"),
        frame=frame,
    )


def _event_from_pairs(
    pairs: Iterable[tuple[str, str]], body: str | None, fmt: Literal["plain", "json", "xml"],
    frame: Frame,
) -> EslEvent:
    header_list = tuple(pairs)
    headers = dict(header_list)  # later pairs overwrite earlier ones: last one wins
    name = headers.get("Event-Name")
    if name is None:
        raise RemoteEslError(Reason.BAD_EVENT_BODY, f"{fmt} event without Event-Name")
    return EslEvent(
        name=name,
        headers=MappingProxyType(headers),
        body=body,
        format=fmt,
        frame=frame,
        header_list=header_list,
    )


def decode_event_plain(frame: Frame) -> EslEvent:
    """Outer body = URL-encoded header lines, an empty line, then the inner body."""
    data = frame.body
    block, found, rest = data.partition(b"\n\n")
    if not found:
        block, rest = data.rstrip(b"\n"), b""
    pairs: list[tuple[str, str]] = []
    inner_length: str | None = None
    for line in block.split(b"\n"):
        name, sep, value = line.partition(b": ")
        if not sep or not name:
            raise RemoteEslError(Reason.BAD_EVENT_BODY, f"plain event line {line!r:.80}")
        try:
            text_name = name.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteEslError(Reason.BAD_EVENT_BODY, f"event header name {name!r:.80}") from None
        text_value = fs_url_decode_bytes(value)
        if text_name == "Content-Length":
            inner_length = text_value  # the serialiser's own length comes last: it wins
        pairs.append((text_name, text_value))
    body: str | None = None
    if inner_length is not None:
        try:
            length = parse_length(inner_length, limit=len(rest))
        except RemoteEslError as exc:
            raise RemoteEslError(Reason.BAD_EVENT_BODY, f"inner length: {exc.detail}") from None
        body = rest[:length].decode("utf-8", errors="replace")
    return _event_from_pairs(pairs, body, "plain", frame)


class _Pairs(list[tuple[str, object]]):
    """A JSON object kept as ordered pairs, so duplicate keys survive parsing."""


def _render_json_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        # FreeSWITCH's plain serialiser writes array headers as ARRAY::a|:b.
        return "ARRAY::" + "|:".join(_render_json_value(item) for item in value)
    if isinstance(value, _Pairs):
        return json.dumps(dict(value), ensure_ascii=False, separators=(",", ":"))
    return json.dumps(value)


def decode_event_json(frame: Frame) -> EslEvent:
    # Bytes above 0x7F can arrive unescaped and not always as valid UTF-8 (caller names
    # from SIP): replace what is invalid rather than fail the whole connection.
    text = frame.body.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text, object_pairs_hook=_Pairs, strict=False)
    except (ValueError, RecursionError) as exc:
        raise RemoteEslError(Reason.BAD_EVENT_BODY, f"event-json: {exc}") from None
    if not isinstance(obj, _Pairs):
        raise RemoteEslError(Reason.BAD_EVENT_BODY, "event-json is not an object")
    pairs: list[tuple[str, str]] = []
    body: str | None = None
    try:
        for key, value in obj:
            if key == "_body":
                body = _render_json_value(value)
            else:
                pairs.append((key, _render_json_value(value)))
    except RecursionError:
        # Rendering nests deeper than parsing did: an array nested a few hundred deep
        # parses, then overflows here. FreeSWITCH never nests values at all.
        raise RemoteEslError(Reason.BAD_EVENT_BODY, "event-json nested too deep") from None
    return _event_from_pairs(pairs, body, "json", frame)


def decode_event_xml(frame: Frame) -> EslEvent:
    data = frame.body
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # FreeSWITCH never sends a DTD; refusing one rules out entity-expansion tricks.
        raise RemoteEslError(Reason.BAD_EVENT_BODY, "event-xml with a DTD")
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, LookupError, ValueError) as exc:
        # An XML declaration naming an unknown, non-text or multi-byte encoding fails
        # with LookupError or ValueError (UnicodeError among them), not ParseError.
        raise RemoteEslError(Reason.BAD_EVENT_BODY, f"event-xml: {exc}") from None
    headers_el = root.find("headers")
    pairs: list[tuple[str, str]] = []
    if headers_el is not None:
        # FreeSWITCH writes an array header as consecutive elements of the same name;
        # join those into the ARRAY:: form plain events use. A repeated name that is not
        # adjacent is a genuine duplicate and stays separate (last one wins, as elsewhere).
        previous: str | None = None
        items: list[str] = []
        for child in headers_el:
            value = fs_url_decode(child.text or "")
            if child.tag == previous:
                items.append(value)
                pairs[-1] = (child.tag, "ARRAY::" + "|:".join(items))
            else:
                previous, items = child.tag, [value]
                pairs.append((child.tag, value))
    body: str | None = None
    length_el = root.find("Content-Length")
    body_el = root.find("body")
    if length_el is not None:
        length_text = fs_url_decode(length_el.text or "")
        pairs.append(("Content-Length", length_text))
        if body_el is not None:
            raw = (body_el.text or "").encode("utf-8")
            try:
                length = parse_length(length_text, limit=len(raw))
            except RemoteEslError as exc:
                raise RemoteEslError(Reason.BAD_EVENT_BODY, f"xml length: {exc.detail}") from None
            # The XML writer indents the closing tag; the length says where the body ends.
            body = raw[:length].decode("utf-8", errors="replace")
    elif body_el is not None:
        body = body_el.text or ""
    return _event_from_pairs(pairs, body, "xml", frame)


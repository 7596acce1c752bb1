"""The switch side: parse client commands and produce FreeSWITCH-shaped frames.

The lab emulator plays FreeSWITCH with these. ``parse_command`` is the inverse of
:func:`encode`; the encoders write frames of the same shape as the captures (header
order, URL-encoding, framing, the 67-byte goodbye body), so a frame the codec parsed
from a capture re-encodes byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from fs_plugin.esl._commands import (
    EVENT_FORMATS,
    Api,
    Auth,
    BgApi,
    Command,
    Connect,
    EventSubscribe,
    Exit,
    Filter,
    Linger,
    Log,
    MyEvents,
    NoEvents,
    NoLinger,
    NoLog,
    RawCommand,
    SendMsg,
)
from fs_plugin.esl._errors import LocalEslError, Reason, RemoteEslError
from fs_plugin.esl._frames import (
    NEED_DATA,
    BlockSplitter,
    ConnectionClosed,
    Headers,
    NeedData,
    parse_length,
)
from fs_plugin.esl._urlcode import fs_url_encode

__all__ = [
    "GOODBYE",
    "SwitchConnection",
    "encode_api_response",
    "encode_auth_request",
    "encode_channel_data",
    "encode_command_reply",
    "encode_disconnect_notice",
    "encode_event_json",
    "encode_event_plain",
    "encode_log_data",
    "encode_rude_rejection",
    "parse_command",
]

GOODBYE: Final = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
RUDE_REJECTION_TEXT: Final = "Access Denied, go away.\n"

# A client command is one line plus a few headers; 64 KiB is far above anything our
# client sends and bounds what a broken client can make the emulator buffer.
DEFAULT_MAX_COMMAND_BYTES: Final = 64 * 1024
DEFAULT_MAX_COMMAND_BODY: Final = 1024 * 1024

_WHITESPACE = frozenset(" \t\r\n\v\f\x00")
_TRUE_WORDS = frozenset({"true", "yes", "on", "t", "y", "enabled", "enable", "active", "allow"})


# ---------------------------------------------------------------------------------------
# Parsing client commands

_Block = tuple[str, Headers]


class _CommandSplitter(BlockSplitter[_Block]):
    """Client commands: a command line, ``name: value`` lines, an empty line, and a body
    when a ``content-length`` header (any case: clients send it lower-case) says so."""

    def _parse_block(self, block: bytes) -> tuple[_Block, int]:
        lines = block.split(b"\n")
        first = lines[0].removesuffix(b"\r").decode("utf-8", errors="replace")
        headers: list[tuple[str, str]] = []
        lengths: set[str] = set()
        for raw in lines[1:]:
            line = raw.removesuffix(b"\r")
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                raise RemoteEslError(Reason.BAD_HEADER_LINE, f"command header {line!r:.80}")
            text_name = name.decode("utf-8", errors="replace")
            text_value = value.removeprefix(b" ").decode("utf-8", errors="replace")
            if text_name.lower() == "content-length":
                lengths.add(text_value)
            headers.append((text_name, text_value))
        if len(lengths) > 1:
            raise RemoteEslError(Reason.CONFLICTING_CONTENT_LENGTH, f"values {sorted(lengths)}")
        length = parse_length(lengths.pop(), limit=self.max_frame_size) if lengths else 0
        return (first, tuple(headers)), length


def _is_token(value: str) -> bool:
    return bool(value) and not _WHITESPACE.intersection(value)


def _number(text: str) -> int | None:
    """Plain ASCII digits as an int, else None. Python refuses to convert more than
    4300 digits (ValueError), and a command line of 64 KiB holds many more."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _sendmsg(line: str, uuid: str | None, headers: Headers, body: bytes) -> Command:
    raw = RawCommand(line, headers, body)
    fields = {name.lower(): value for name, value in headers}
    known = {
        "call-command", "execute-app-name", "execute-app-arg", "hangup-cause", "loops",
        "event-lock", "event-uuid", "content-type", "content-length",
    }  # fmt: skip
    if len(fields) != len(headers) or not known.issuperset(fields):
        return raw  # duplicates or headers SendMsg cannot carry
    call_command = fields.get("call-command")
    app = fields.get("execute-app-name")
    arg = fields.get("execute-app-arg")
    cause = fields.get("hangup-cause")
    event_uuid = fields.get("event-uuid")
    loops_text = fields.get("loops")
    if body:
        if arg is not None or fields.get("content-type", "").lower() != "text/plain":
            return raw
        arg = body.decode("utf-8", errors="replace")
    elif "content-type" in fields:
        return raw
    if call_command is None or not _is_token(call_command):
        return raw
    if any(v is not None and not _is_token(v) for v in (app, cause, event_uuid)):
        return raw
    if call_command == "execute" and app is None:
        return raw
    loops: int | None = None
    if loops_text is not None:
        loops = _number(loops_text)
        if loops is None or loops < 1:
            return raw
    lock = fields.get("event-lock", "").strip().lower()
    # Digits are true unless all zeros (switch_true's atoi), however many there are.
    event_lock = lock in _TRUE_WORDS or (
        lock.isascii() and lock.isdigit() and lock.strip("0") != ""
    )
    return SendMsg(
        uuid=uuid,
        call_command=call_command,
        app=app,
        arg=arg,
        event_uuid=event_uuid,
        event_lock=event_lock,
        loops=loops,
        hangup_cause=cause,
    )


def command_from_block(line: str, headers: Headers, body: bytes) -> Command:
    """The typed command for one parsed block; ``RawCommand`` for anything else.

    Malformed forms of known commands (bare ``event``, ``event bogusformat X``, bare
    ``api``) also come back as ``RawCommand``, so the emulator can answer them the way
    FreeSWITCH does instead of failing.
    """
    raw = RawCommand(line, headers, body)
    verb, sp, rest = line.partition(" ")
    verb = verb.lower()
    bare = not headers and not body
    if "\x00" in line:
        return raw
    if verb == "sendmsg":
        if sp and not _is_token(rest):
            return raw
        return _sendmsg(line, rest if sp else None, headers, body)
    if verb == "bgapi":
        fields = {name.lower(): value for name, value in headers}
        job = fields.get("job-uuid")
        if not rest or body or len(headers) != len(fields) or set(fields) - {"job-uuid"}:
            return raw
        if job is not None and not _is_token(job):
            return raw
        return BgApi(rest, job or "")
    if not bare:
        return raw
    simple: dict[str, Command] = {
        "connect": Connect(), "exit": Exit(), "noevents": NoEvents(),
        "nolinger": NoLinger(), "nolog": NoLog(),
    }  # fmt: skip
    if verb in simple:
        return simple[verb] if not sp else raw
    if not sp:
        if verb == "myevents":
            return MyEvents()
        if verb == "linger":
            return Linger()
        return raw
    if verb == "auth":
        return Auth(rest)
    if verb == "api":
        return Api(rest) if rest else raw
    if verb == "log":
        return Log(rest) if _is_token(rest) else raw
    if verb == "linger":
        seconds = _number(rest)
        return raw if seconds is None else Linger(seconds)
    if verb == "event":
        fmt, *names = rest.split(" ")
        if fmt in EVENT_FORMATS and names and all(_is_token(n) for n in names):
            return EventSubscribe(fmt, tuple(names))
        return raw
    if verb == "filter":
        delete = rest.startswith("delete ")
        header, _, value = rest.removeprefix("delete ").partition(" ")
        if not _is_token(header) or (not delete and header.lower() == "delete"):
            return raw
        return Filter(header, value, delete)
    if verb == "myevents":
        parts = rest.split(" ")
        if not all(_is_token(p) for p in parts) or len(parts) > 2:
            return raw
        if len(parts) == 1:
            if parts[0] in EVENT_FORMATS:
                return MyEvents(format=parts[0])
            return MyEvents(uuid=parts[0]) if parts[0].lower() not in EVENT_FORMATS else raw
        uuid, fmt = parts
        if fmt in EVENT_FORMATS and uuid.lower() not in EVENT_FORMATS:
            return MyEvents(format=fmt, uuid=uuid)
        return raw
    return raw


class SwitchConnection:
    """Switch side of one ESL connection: bytes from the client in, commands out.

    Handles pipelined commands, ``\\r\\n`` line ends and commands split across reads
    (``in_pipelined_and_crlf``). What to answer is the emulator's business.
    """

    def __init__(
        self,
        *,
        max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES,
        max_body_size: int = DEFAULT_MAX_COMMAND_BODY,
    ) -> None:
        self._splitter = _CommandSplitter(
            max_header_bytes=max_command_bytes, max_frame_size=max_body_size
        )
        self._eof = False
        self._error: RemoteEslError | None = None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means EOF."""
        if self._error is not None:
            raise RemoteEslError(self._error.reason, self._error.detail, state="ERROR")
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalEslError(Reason.DATA_AFTER_EOF, "receive_data after EOF")
        self._splitter.feed(data)

    def next_command(self) -> Command | NeedData | ConnectionClosed:
        if self._error is not None:
            raise RemoteEslError(self._error.reason, self._error.detail, state="ERROR")
        try:
            unit = self._splitter.next_unit()
            if unit is None:
                if not self._eof:
                    return NEED_DATA
                if self._splitter.has_partial():
                    raise RemoteEslError(Reason.TRUNCATED_FRAME, "EOF inside a command")
                return ConnectionClosed()
        except RemoteEslError as exc:
            self._error = exc
            raise
        (line, headers), body = unit
        return command_from_block(line, headers, body)


def parse_command(data: bytes) -> Command:
    """Parse exactly one complete command (the inverse of :func:`encode`)."""
    conn = SwitchConnection()
    conn.receive_data(data)
    conn.receive_data(b"")
    command = conn.next_command()
    if not isinstance(command, ConnectionClosed | NeedData) and isinstance(
        conn.next_command(), ConnectionClosed
    ):
        return command
    raise RemoteEslError(Reason.UNEXPECTED_FRAME, "expected exactly one command")


# ---------------------------------------------------------------------------------------
# FreeSWITCH-shaped frames


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def _raw_line(name: str, value: str) -> str:
    for what, text in (("name", name), ("value", value)):
        if "\n" in text or "\r" in text:
            raise LocalEslError(Reason.BAD_VALUE, f"header {what} with a line break: {text!r:.60}")
    return f"{name}: {value}\n"


def _frame(headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    return ("".join(_raw_line(n, v) for n, v in headers) + "\n").encode("utf-8") + body


def encode_auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def encode_command_reply(reply_text: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """``command/reply``; ``extra`` headers follow ``Reply-Text`` (bgapi's ``Job-UUID``)."""
    return _frame([("Content-Type", "command/reply"), ("Reply-Text", reply_text), *extra])


def encode_api_response(body: str | bytes) -> bytes:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return _frame([("Content-Type", "api/response"), ("Content-Length", str(len(data)))], data)


def _serialize(pairs: Iterable[tuple[str, str]], body: str | None) -> bytes:
    """FreeSWITCH's ``switch_event_serialize`` with URL-encoding on.

    An empty value is written ``_undef_``; a non-empty body gets a ``Content-Length``
    after the headers, an empty line, and the body; otherwise the block just ends.
    """
    lines = []
    for name, value in pairs:
        if "\n" in name or "\r" in name or ": " in name:
            raise LocalEslError(Reason.BAD_VALUE, f"bad header name {name!r:.60}")
        lines.append(f"{name}: {fs_url_encode(value) or '_undef_'}\n")
    head = "".join(lines).encode("utf-8")
    data = (body or "").encode("utf-8")
    if data:
        return head + b"Content-Length: %d\n\n" % len(data) + data
    return head + b"\n"


def encode_channel_data(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    socket_mode: str = "static",
    control: str = "full",
) -> bytes:
    """The reply to ``connect``: channel headers first, the reply headers **last**,
    everything URL-encoded (so ``Reply-Text`` is ``%2BOK%0A``), no Content-Length.
    ``static`` is what the synchronous socket app reports; ``async`` the async one."""
    pairs = _pairs(headers)
    pairs += [
        ("Content-Type", "command/reply"),
        ("Reply-Text", "+OK\n"),
        ("Socket-Mode", socket_mode),
        ("Control", control),
    ]
    return _serialize(pairs, None)


def encode_event_plain(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], body: str | None = None
) -> bytes:
    inner = _serialize(_pairs(headers), body)
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


def _json_string(value: str) -> str:
    # cJSON escapes the same characters json.dumps does with ensure_ascii=False
    # (quote, backslash, control characters) and leaves bytes above 0x7F raw.
    return json.dumps(value, ensure_ascii=False)


def encode_event_json(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], body: str | None = None
) -> bytes:
    """``switch_event_serialize_json``: compact, header order kept (duplicates too),
    ``ARRAY::a|:b`` values as JSON arrays, then ``Content-Length`` and ``_body``."""
    members = []
    for name, value in _pairs(headers):
        if value.startswith("ARRAY::"):
            rendered = "[" + ",".join(_json_string(v) for v in value[7:].split("|:")) + "]"
        else:
            rendered = _json_string(value)
        members.append(f"{_json_string(name)}:{rendered}")
    if body is not None:
        members.append(f'"Content-Length":"{len(body.encode("utf-8"))}"')
        members.append(f'"_body":{_json_string(body)}')
    data = ("{" + ",".join(members) + "}").encode("utf-8")
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(data) + data


def encode_disconnect_notice(
    uuid: str | None,
    disposition: str = "disconnect",
    linger_time: int | str | None = None,
    channel_name: str | None = None,
) -> bytes:
    """``text/disconnect-notice``.

    Inbound connections (``uuid=None``) get only the type, the length and the 67-byte
    goodbye. Outbound ones name the session and the disposition; a ``linger`` notice
    adds ``Channel-Name`` and ``Linger-Time`` (``-1`` = until ``exit``) and has no body.
    """
    headers = [("Content-Type", "text/disconnect-notice")]
    body = GOODBYE
    if uuid is not None:
        headers += [("Controlled-Session-UUID", uuid), ("Content-Disposition", disposition)]
    if disposition == "linger":
        body = b""
        if channel_name is not None:
            headers.append(("Channel-Name", channel_name))
        headers.append(("Linger-Time", "-1" if linger_time is None else str(linger_time)))
    headers.append(("Content-Length", str(len(body))))
    return _frame(headers, body)


def encode_rude_rejection(text: str = RUDE_REJECTION_TEXT) -> bytes:
    """What an ACL refusal looks like: sent instead of ``auth/request``."""
    data = text.encode("utf-8")
    headers = [("Content-Type", "text/rude-rejection"), ("Content-Length", str(len(data)))]
    return _frame(headers, data)


def encode_log_data(
    body: str,
    *,
    level: int | str,
    log_file: str,
    log_func: str,
    log_line: int | str,
    text_channel: int | str = 3,
    user_data: str = "",
) -> bytes:
    """``log/data`` with the header order of ``in_log_data``."""
    data = body.encode("utf-8")
    return _frame(
        [
            ("Content-Type", "log/data"),
            ("Content-Length", str(len(data))),
            ("Log-Level", str(level)),
            ("Text-Channel", str(text_channel)),
            ("Log-File", log_file),
            ("Log-Func", log_func),
            ("Log-Line", str(log_line)),
            ("User-Data", user_data),
        ],
        data,
    )

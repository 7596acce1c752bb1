"""Client commands: frozen dataclasses and their exact wire form.

``encode`` is pure (tests and pipelining use it directly); ``Connection.send`` checks the
state machine and then calls it. Wire forms follow what the captures show a client
sending and FreeSWITCH accepting, e.g.::

    sendmsg\\ncall-command: execute\\nexecute-app-name: set\\n
    execute-app-arg: fsp_verdict=pass\\n\\n

Every value goes on one header or command line, so a ``\\r`` or ``\\n`` in it would let a
caller forge extra headers or commands: that raises ``LocalEslError``. The one exception
is an application argument, which may legitimately be multi-line; it is sent as a body
(``content-type: text/plain`` + ``content-length``), as ``out_sendmsg_body_filter_misc``
shows FreeSWITCH accepts. Raw UTF-8 in values is fine (``out_sync_pass``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, TypeAlias

from fs_plugin.esl._errors import LocalEslError, Reason

__all__ = [
    "EVENT_FORMATS",
    "Api",
    "Auth",
    "BgApi",
    "Command",
    "Connect",
    "EventSubscribe",
    "Exit",
    "Filter",
    "Linger",
    "Log",
    "MyEvents",
    "NoEvents",
    "NoLinger",
    "NoLog",
    "RawCommand",
    "SendMsg",
    "command_verb",
    "encode",
    "execute",
    "hangup",
]

EVENT_FORMATS: Final = frozenset({"plain", "json", "xml"})

# Characters a value may not contain: a search scans in C without building a set of
# the value's characters (values are checked on every command of every call).
_LINE_BREAKING_RE = re.compile("[\r\n\x00]")
_WHITESPACE_RE = re.compile("[ \t\r\n\v\f\x00]")


@dataclass(frozen=True)
class Connect:
    """Outbound only, and first: ask FreeSWITCH for the channel data."""


@dataclass(frozen=True)
class Auth:
    """Inbound only, answering ``auth/request``."""

    password: str


@dataclass(frozen=True)
class EventSubscribe:
    """``event <format> <names...>`` (``CUSTOM`` subclasses are names too)."""

    format: str = "json"
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filter:
    """``filter <header> <value>`` or, with ``delete``, ``filter delete <header> <value>``."""

    header: str
    value: str
    delete: bool = False


@dataclass(frozen=True)
class NoEvents:
    """``noevents``: drop every subscription."""


@dataclass(frozen=True)
class MyEvents:
    """``myevents [format]`` (outbound) or ``myevents <uuid> [format]`` (inbound)."""

    format: str | None = None
    uuid: str | None = None


@dataclass(frozen=True)
class Linger:
    """``linger [seconds]``: keep the socket open after the call hangs up."""

    seconds: int | None = None


@dataclass(frozen=True)
class NoLinger:
    """``nolinger``."""


@dataclass(frozen=True)
class Api:
    """``api <command>``: synchronous; answered by ``api/response``."""

    command: str


@dataclass(frozen=True)
class BgApi:
    """``bgapi <command>`` with our own ``Job-UUID`` header, so we can correlate the
    ``BACKGROUND_JOB`` event without waiting for the reply. An empty ``job_uuid`` sends
    no header and lets FreeSWITCH choose (what a parsed client command without the header
    turns into)."""

    command: str
    job_uuid: str


@dataclass(frozen=True)
class SendMsg:
    """``sendmsg [uuid]``: run an application on, or hang up, a channel."""

    uuid: str | None = None
    call_command: str = "execute"
    app: str | None = None
    arg: str | None = None
    event_uuid: str | None = None
    event_lock: bool = False
    loops: int | None = None
    hangup_cause: str | None = None


@dataclass(frozen=True)
class Exit:
    """``exit``: FreeSWITCH answers ``+OK bye``, sends a disconnect notice and closes."""


@dataclass(frozen=True)
class Log:
    """``log <level>``: receive ``log/data`` frames."""

    level: str


@dataclass(frozen=True)
class NoLog:
    """``nolog``."""


@dataclass(frozen=True)
class RawCommand:
    """Any other command (``getvar``, ``sendevent``, ``nixevent`` ...), forward compatible.

    ``headers`` are sent as ``name: value`` lines; a non-empty ``body`` gets a
    ``content-length`` header unless ``headers`` already carries a matching one.
    """

    line: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


Command: TypeAlias = (
    Connect
    | Auth
    | EventSubscribe
    | Filter
    | NoEvents
    | MyEvents
    | Linger
    | NoLinger
    | Api
    | BgApi
    | SendMsg
    | Exit
    | Log
    | NoLog
    | RawCommand
)


def execute(
    app: str,
    arg: str | None = None,
    *,
    uuid: str | None = None,
    event_uuid: str | None = None,
    event_lock: bool = False,
    loops: int | None = None,
) -> SendMsg:
    """``sendmsg`` with ``call-command: execute``."""
    return SendMsg(
        uuid=uuid, app=app, arg=arg, event_uuid=event_uuid, event_lock=event_lock, loops=loops
    )


def hangup(cause: str, uuid: str | None = None) -> SendMsg:
    """``sendmsg`` with ``call-command: hangup`` and ``hangup-cause``."""
    return SendMsg(uuid=uuid, call_command="hangup", hangup_cause=cause)


# ---------------------------------------------------------------------------------------
# Validation


def _line(value: str, what: str, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise LocalEslError(Reason.BAD_VALUE, f"{what} must be a str, not {type(value).__name__}")
    if not empty_ok and not value:
        raise LocalEslError(Reason.BAD_VALUE, f"{what} must not be empty")
    if _LINE_BREAKING_RE.search(value):
        raise LocalEslError(Reason.BAD_VALUE, f"{what} contains a line break or NUL: {value!r:.60}")
    return value


def _token(value: str, what: str) -> str:
    _line(value, what, empty_ok=False)
    if _WHITESPACE_RE.search(value):
        raise LocalEslError(Reason.BAD_VALUE, f"{what} must not contain whitespace: {value!r:.60}")
    return value


def _count(value: int, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LocalEslError(Reason.BAD_VALUE, f"{what} must be an int >= {minimum}: {value!r}")
    return value


def _format(value: str, what: str) -> str:
    if value not in EVENT_FORMATS:
        raise LocalEslError(Reason.BAD_VALUE, f"{what} must be one of {sorted(EVENT_FORMATS)}")
    return value


# ---------------------------------------------------------------------------------------
# Encoding


def _block(first: str, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
    text = first + "\n"
    if headers:
        text += "".join(f"{name}: {value}\n" for name, value in headers)
    return (text + "\n").encode("utf-8") + body


def _encode_sendmsg(cmd: SendMsg) -> bytes:
    first = "sendmsg" if cmd.uuid is None else f"sendmsg {_token(cmd.uuid, 'uuid')}"
    headers = [("call-command", _token(cmd.call_command, "call_command"))]
    if cmd.app is not None:
        headers.append(("execute-app-name", _token(cmd.app, "app")))
    elif cmd.call_command == "execute":
        raise LocalEslError(Reason.BAD_VALUE, "call-command execute needs an app")
    body = b""
    if cmd.arg is not None:
        if not isinstance(cmd.arg, str):
            raise LocalEslError(Reason.BAD_VALUE, "arg must be a str")
        if _LINE_BREAKING_RE.search(cmd.arg):
            if "\x00" in cmd.arg:
                raise LocalEslError(Reason.BAD_VALUE, "arg contains NUL")
            # A multi-line argument cannot be a header: send it as the body instead.
            body = cmd.arg.encode("utf-8")
        else:
            headers.append(("execute-app-arg", cmd.arg))
    if cmd.hangup_cause is not None:
        headers.append(("hangup-cause", _token(cmd.hangup_cause, "hangup_cause")))
    if cmd.loops is not None:
        headers.append(("loops", str(_count(cmd.loops, "loops", minimum=1))))
    if cmd.event_lock:
        headers.append(("event-lock", "true"))
    if cmd.event_uuid is not None:
        headers.append(("Event-UUID", _token(cmd.event_uuid, "event_uuid")))
    if body:
        headers.append(("content-type", "text/plain"))
        headers.append(("content-length", str(len(body))))
    return _block(first, headers, body)


def _encode_raw(cmd: RawCommand) -> bytes:
    _line(cmd.line, "line", empty_ok=False)
    if cmd.line[0] in " \t":
        raise LocalEslError(Reason.BAD_VALUE, "line must not start with whitespace")
    headers: list[tuple[str, str]] = []
    declared: str | None = None
    for name, value in cmd.headers:
        _line(name, "header name", empty_ok=False)
        if ":" in name or name[0] in " \t":
            raise LocalEslError(Reason.BAD_VALUE, f"bad header name {name!r:.60}")
        _line(value, f"header {name}")
        if name.lower() == "content-length":
            declared = value
        headers.append((name, value))
    if declared is not None and declared != str(len(cmd.body)):
        raise LocalEslError(Reason.BAD_VALUE, "content-length header does not match the body")
    if cmd.body and declared is None:
        headers.append(("content-length", str(len(cmd.body))))
    return _block(cmd.line, headers, cmd.body)


def encode(command: Command) -> bytes:
    """The exact bytes of ``command`` (pure: no state is checked or changed)."""
    if type(command) is SendMsg:  # most commands of a call: skip the pattern matching
        return _encode_sendmsg(command)
    match command:
        case Connect():
            return b"connect\n\n"
        case Auth(password):
            return _block(f"auth {_line(password, 'password')}")
        case EventSubscribe(fmt, names):
            _format(fmt, "format")
            if not names:
                raise LocalEslError(Reason.BAD_VALUE, "event needs at least one name")
            return _block(" ".join(["event", fmt, *(_token(n, "event name") for n in names)]))
        case Filter(header, value, delete):
            _token(header, "header")
            if not delete and header.lower() == "delete":
                raise LocalEslError(Reason.BAD_VALUE, "a filter on a header named delete")
            parts = ["filter", *(["delete"] if delete else []), header]
            if _line(value, "value"):
                parts.append(value)
            return _block(" ".join(parts))
        case NoEvents():
            return b"noevents\n\n"
        case MyEvents(fmt, uuid):
            parts = ["myevents"]
            if uuid is not None:
                if _token(uuid, "uuid").lower() in EVENT_FORMATS:
                    raise LocalEslError(Reason.BAD_VALUE, "uuid reads as a format")
                parts.append(uuid)
            if fmt is not None:
                parts.append(_format(fmt, "format"))
            return _block(" ".join(parts))
        case Linger(seconds):
            if seconds is None:
                return b"linger\n\n"
            return _block(f"linger {_count(seconds, 'seconds', minimum=0)}")
        case NoLinger():
            return b"nolinger\n\n"
        case Api(cmd):
            return _block(f"api {_line(cmd, 'command', empty_ok=False)}")
        case BgApi(cmd, job_uuid):
            first = f"bgapi {_line(cmd, 'command', empty_ok=False)}"
            if job_uuid == "":
                return _block(first)
            return _block(first, [("Job-UUID", _token(job_uuid, "job_uuid"))])
        case SendMsg():
            return _encode_sendmsg(command)
        case Exit():
            return b"exit\n\n"
        case Log(level):
            return _block(f"log {_token(level, 'level')}")
        case NoLog():
            return b"nolog\n\n"
        case RawCommand():
            return _encode_raw(command)
    raise LocalEslError(Reason.BAD_VALUE, f"not a command: {command!r:.60}")


#: The fixed command word of each command class (a dict lookup: this runs for every
#: command sent, and class patterns in a ``match`` are tried one by one).
_VERBS: Final[dict[type, str]] = {
    Connect: "connect", Auth: "auth", Exit: "exit", Api: "api", BgApi: "bgapi",
    EventSubscribe: "event", Filter: "filter", NoEvents: "noevents", MyEvents: "myevents",
    Linger: "linger", NoLinger: "nolinger", SendMsg: "sendmsg", Log: "log", NoLog: "nolog",
}


def command_verb(command: Command) -> str:
    """The command word FreeSWITCH dispatches on (lower case), also for ``RawCommand``."""
    if isinstance(command, RawCommand):
        return command.line.split(" ", 1)[0].lower()
    verb = _VERBS.get(type(command))
    if verb is not None:
        return verb
    for cls, word in _VERBS.items():  # a subclass of a command class
        if isinstance(command, cls):
            return word
    raise LocalEslError(Reason.BAD_VALUE, f"not a command: {command!r:.60}")

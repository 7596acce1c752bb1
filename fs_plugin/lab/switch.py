"""The lab switch: plays FreeSWITCH on both ESL roles, byte-faithful to the captures.

Outbound role: for each call it connects to the controller exactly as the
synchronous ``socket HOST:PORT full`` app does, waits for ``connect``, sends the
channel data, applies the ``sendmsg`` commands it receives (``set``/``export``
variables, ``hangup`` with a cause, ``pre_answer``/``playback``) and, when the
controller lets go, runs the dialplan's continuation: the fail-safe when no verdict
was set, else routing (the call is answered). It reports per call the verdict and
the SIP response a real FreeSWITCH would send (``fs_plugin.causes``).

Inbound role: an event socket (auth, ``event json|plain``, ``api``, ``exit``) that
emits ``CHANNEL_HANGUP_COMPLETE`` for every call it placed, with the variables
FreeSWITCH puts there (disposition, progress/answer/end µs, billsec).

Call durations are virtual: ringing and talk time are written into the outcome
timestamps, never waited for, so a lab run of thousands of calls takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import structlog

from fs_plugin import esl
from fs_plugin.causes import sip_status_for
from fs_plugin.errors import ProtocolError
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.sofia import ChannelIdentity, channel_data_headers, hangup_complete_headers

__all__ = ["CallResult", "LabSwitch"]

log = structlog.get_logger(__name__)

#: What FreeSWITCH does with a call whose dialplan application does not exist
#: (fixtures ``out_api_bgapi_errors``: the caller saw 502).
_UNKNOWN_APP_CAUSE = "DESTINATION_OUT_OF_ORDER"
_KNOWN_APPS = frozenset({"set", "export", "hangup", "pre_answer", "playback", "answer", "log",
                         "multiset", "unset", "sleep"})


@dataclass(frozen=True, slots=True)
class CallResult:
    call: LabCall
    uuid: str
    #: ``pass`` | ``warn`` | ``block`` as the controller set it, or ``fallback`` when the
    #: dialplan's fail-safe decided (controller refused, wedged or silent).
    verdict: str
    sip_status: int
    cause: str | None
    rule: str | None
    reason: str | None
    label: str | None
    #: Why the dialplan fell back (``refused``, ``socket_error``, ``no_verdict``), else None.
    fallback: str | None
    post_dial_delay_ms: float
    #: From the channel data written to the controller's first command read: the
    #: decision latency as FreeSWITCH sees it (None when no channel data was sent).
    decision_ms: float | None = None
    announcement: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    #: The channel the call ran on (UUID, Call-ID, creation time): what an outcome
    #: emitted later, by a SIP front that saw the call end, is built from.
    identity: ChannelIdentity | None = None

    @property
    def expectation_errors(self) -> list[str]:
        errs = []
        exp = self.call.expect
        if "verdict" in exp and exp["verdict"] != self.verdict:
            errs.append(f"verdict {self.verdict} != expected {exp['verdict']}")
        if "sip" in exp and int(exp["sip"]) != self.sip_status:
            errs.append(f"SIP {self.sip_status} != expected {exp['sip']}")
        if "rule" in exp and exp["rule"] != self.rule:
            errs.append(f"rule {self.rule} != expected {exp['rule']}")
        return errs


@dataclass(slots=True)
class _Channel:
    call: LabCall
    ident: ChannelIdentity
    variables: dict[str, str] = field(default_factory=dict)
    hangup_cause: str | None = None
    announcement: str | None = None
    early_media: bool = False
    data_sent_at: float | None = None
    first_command_at: float | None = None


class LabSwitch:
    def __init__(
        self,
        controller_host: str = "127.0.0.1",
        controller_port: int = 8084,
        *,
        socket_timeout_s: float = 25.0,
        read_size: int = 65536,
    ) -> None:
        self.controller_host = controller_host
        self.controller_port = controller_port
        #: FreeSWITCH's socket app has no timeout of its own; a silent controller held a
        #: real call ~24.4 s before "Socket Error!" (fixtures README 11b). Tests shorten it.
        self.socket_timeout_s = socket_timeout_s
        self.read_size = read_size
        self._seq = itertools.count(1)
        self._subscribers: set[_EventSubscriber] = set()
        self._esl_server: asyncio.Server | None = None
        self._esl_tasks: set[asyncio.Task[None]] = set()
        self.esl_password = "ClueCon"
        self.esl_port: int | None = None

    # -- outbound: placing calls ---------------------------------------------------

    async def place(self, call: LabCall) -> CallResult:
        """Screen a call and report its outcome with virtual ring and talk times."""
        result = await self.screen(call)
        self._emit_outcome(result)
        return result

    def next_sequence(self) -> int:
        """The switch's next channel sequence number (``Event-Sequence``, ``session_id``)."""
        return next(self._seq)

    async def screen(self, call: LabCall, identity: ChannelIdentity | None = None) -> CallResult:
        """Run the socket app and the dialplan's continuation; emit no outcome.

        The caller of this method knows how the call ends (a SIP front: answered,
        cancelled, rejected) and reports it with :meth:`emit_outcome`. The result's
        ``sip_status`` for a call let through is what the dialplan alone would give
        (200, or 487 for a ``ring_s`` call); a SIP front replaces it with what it sent.
        """
        if identity is None:
            identity = ChannelIdentity.new(time.time_ns() // 1000, next(self._seq))
        chan = _Channel(call, identity)
        started = time.perf_counter()
        fallback: str | None = None
        try:
            fallback = await asyncio.wait_for(self._socket_app(chan), self.socket_timeout_s)
        except (ConnectionRefusedError, OSError) as exc:
            fallback = "refused" if isinstance(exc, ConnectionRefusedError) else "socket_error"
        except TimeoutError:
            fallback = "socket_error"
        except ProtocolError as exc:
            # A controller that sends garbage or closes inside a command: the socket app
            # fails like on a broken socket, and the dialplan's fail-safe decides.
            log.warning("lab_controller_protocol_error", uuid=identity.uuid, error=str(exc))
            fallback = "socket_error"
        pdd_ms = (time.perf_counter() - started) * 1e3
        return self._continue_dialplan(chan, fallback, pdd_ms)

    async def place_all(self, calls: Iterable[LabCall], concurrency: int = 50) -> list[CallResult]:
        """Place calls with at most ``concurrency`` in flight; results in the calls' order."""
        sem = asyncio.Semaphore(concurrency)

        async def one(c: LabCall) -> CallResult:
            async with sem:
                return await self.place(c)

        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _socket_app(self, chan: _Channel) -> str | None:
        """The synchronous ``socket … full`` app. Returns a fallback reason or None."""
        reader, writer = await asyncio.open_connection(self.controller_host, self.controller_port)
        parser = esl.SwitchConnection()
        try:
            command = await _next_command(parser, reader, self.read_size)
            if not isinstance(command, esl.Connect):
                return "socket_error"
            controller = f"{self.controller_host}:{self.controller_port}"
            headers = channel_data_headers(chan.call, chan.ident, chan.ident.created_us, controller)
            writer.write(esl.encode_channel_data(headers, socket_mode="static", control="full"))
            chan.data_sent_at = time.perf_counter()
            while True:
                command = await _next_command(parser, reader, self.read_size)
                if chan.first_command_at is None:
                    chan.first_command_at = time.perf_counter()
                if isinstance(command, esl.ConnectionClosed):
                    return None  # controller let go: the socket app returns
                if isinstance(command, esl.Exit):
                    writer.write(esl.encode_command_reply("+OK bye"))
                    writer.write(esl.encode_disconnect_notice(chan.ident.uuid))
                    await writer.drain()
                    return None
                if isinstance(command, esl.SendMsg):
                    self._apply(chan, command)
                    writer.write(esl.encode_command_reply("+OK"))
                    if chan.hangup_cause is not None:
                        # The channel is gone: FreeSWITCH says goodbye and closes at once.
                        writer.write(esl.encode_disconnect_notice(chan.ident.uuid))
                        await writer.drain()
                        return None
                elif isinstance(command, esl.Api):
                    writer.write(esl.encode_api_response("-ERR lab switch runs no api\n"))
                else:
                    writer.write(esl.encode_command_reply("+OK"))
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _apply(self, chan: _Channel, msg: esl.SendMsg) -> None:
        if msg.call_command == "hangup":
            chan.hangup_cause = msg.hangup_cause or "NORMAL_CLEARING"
            return
        if msg.call_command != "execute" or msg.app is None:
            return
        app, arg = msg.app, msg.arg or ""
        if app not in _KNOWN_APPS:
            chan.hangup_cause = _UNKNOWN_APP_CAUSE
        elif app in ("set", "export"):
            name, _, value = arg.partition("=")
            chan.variables[name] = value
        elif app == "hangup":
            chan.hangup_cause = arg or "NORMAL_CLEARING"
        elif app == "pre_answer":
            chan.early_media = True
        elif app == "playback":
            chan.announcement = arg

    def _continue_dialplan(self, chan: _Channel, fallback: str | None, pdd_ms: float) -> CallResult:
        v = chan.variables
        verdict = v.get("fsp_verdict")
        cause = chan.hangup_cause
        if cause is None and fallback is None and not verdict:
            fallback = "no_verdict"
        if cause is None and (fallback is not None or verdict == "fallback"):
            # The dialplan's explicit fail-safe after the socket app (dialplan/README.md).
            verdict = "fallback"
            if chan.call.on_error == "block":
                cause = "CALL_REJECTED"
        if cause is not None:
            status = sip_status_for(cause)
            verdict = verdict if verdict in ("block", "fallback") else "block"
        else:
            status = 487 if chan.call.ring_s is not None else 200
            verdict = verdict or "pass"
        return CallResult(
            call=chan.call, uuid=chan.ident.uuid, verdict=verdict, sip_status=status,
            cause=cause, rule=v.get("fsp_rule") or None, reason=v.get("fsp_reason") or None,
            label=v.get("effective_caller_id_name"), fallback=fallback,
            post_dial_delay_ms=pdd_ms, announcement=chan.announcement, variables=dict(v),
            decision_ms=None if chan.data_sent_at is None or chan.first_command_at is None
            else (chan.first_command_at - chan.data_sent_at) * 1e3,
            identity=chan.ident,
        )

    # -- inbound: the event socket --------------------------------------------------

    async def start_event_socket(
        self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon"
    ) -> int:
        self.esl_password = password
        self._esl_server = await asyncio.start_server(self._esl_client, host, port)
        self.esl_port = int(self._esl_server.sockets[0].getsockname()[1])
        return self.esl_port

    async def stop(self) -> None:
        server, self._esl_server = self._esl_server, None
        if server is not None:
            server.close()
        for task in list(self._esl_tasks):
            task.cancel()
        if self._esl_tasks:
            await asyncio.wait(set(self._esl_tasks))
        if server is not None:
            # Connections are closed by now; bounded anyway, a stop must never hang.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)

    def _esl_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sub = _EventSubscriber(self, reader, writer)
        task = asyncio.get_running_loop().create_task(sub.run())
        self._esl_tasks.add(task)
        task.add_done_callback(self._esl_tasks.discard)

    def _emit_outcome(self, result: CallResult) -> None:
        """The outcome of a placed call, with ring and talk time written in, not waited for."""
        ident = result.identity
        if ident is None or not self._subscribers:
            return
        created = ident.created_us
        decided = created + int(result.post_dial_delay_ms * 1000)
        progress = answer = 0
        if result.cause is not None:
            disposition, end, cause = "send_refuse", decided, result.cause
        elif result.call.ring_s is not None:
            progress = decided
            end = progress + int(result.call.ring_s * 1e6)
            disposition, cause = "recv_cancel", "ORIGINATOR_CANCEL"
        else:
            progress = decided
            answer = progress + 2_000_000
            end = answer + int(result.call.talk_s * 1e6)
            disposition, cause = "recv_bye", "NORMAL_CLEARING"
        self.emit_outcome(
            result, cause=cause, disposition=disposition, progress_us=progress,
            answer_us=answer, end_us=end,
        )

    def emit_outcome(
        self,
        result: CallResult,
        *,
        cause: str,
        disposition: str,
        progress_us: int,
        answer_us: int,
        end_us: int,
    ) -> None:
        """Publish ``CHANNEL_HANGUP_COMPLETE`` for a screened call to every subscriber.

        Times are µs since the epoch (0: never reached), as in ``variable_*_uepoch``;
        ``disposition`` is sofia's ``sip_hangup_disposition`` (``send_refuse``,
        ``recv_cancel``, ``recv_bye``, ``send_bye``).
        """
        ident = result.identity
        if ident is None or not self._subscribers:
            return
        headers = hangup_complete_headers(
            result.call, ident, cause=cause, disposition=disposition, progress_us=progress_us,
            answer_us=answer_us, end_us=end_us, channel_vars=result.variables,
        )
        for sub in list(self._subscribers):
            sub.publish("CHANNEL_HANGUP_COMPLETE", headers)


class _EventSubscriber:
    """One inbound ESL client of the lab switch."""

    def __init__(
        self, switch: LabSwitch, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.switch = switch
        self.reader = reader
        self.writer = writer
        self.format: str | None = None
        self.names: frozenset[str] = frozenset()

    def publish(self, name: str, headers: Sequence[tuple[str, str]]) -> None:
        if self.format is None or not ({name, "ALL"} & self.names):
            return
        if self.format == "json":
            self.writer.write(esl.encode_event_json(headers))
        else:
            self.writer.write(esl.encode_event_plain(headers))

    async def run(self) -> None:
        parser = esl.SwitchConnection()
        w = self.writer
        w.write(esl.encode_auth_request())
        authed = False
        try:
            while True:
                cmd = await _next_command(parser, self.reader, self.switch.read_size)
                if isinstance(cmd, esl.ConnectionClosed):
                    return
                if isinstance(cmd, esl.Auth):
                    if cmd.password != self.switch.esl_password:
                        w.write(esl.encode_command_reply("-ERR invalid"))
                        w.write(esl.encode_disconnect_notice(None))
                        await w.drain()
                        return
                    authed = True
                    w.write(esl.encode_command_reply("+OK accepted"))
                elif not authed:
                    w.write(esl.encode_command_reply("-ERR command not found"))
                elif isinstance(cmd, esl.EventSubscribe):
                    self.format = cmd.format
                    self.names = self.names | frozenset(cmd.names)
                    self.switch._subscribers.add(self)
                    w.write(esl.encode_command_reply(f"+OK event listener enabled {cmd.format}"))
                elif isinstance(cmd, esl.Exit):
                    w.write(esl.encode_command_reply("+OK bye"))
                    w.write(esl.encode_disconnect_notice(None))
                    await w.drain()
                    return
                elif isinstance(cmd, esl.Api):
                    w.write(esl.encode_api_response("-ERR lab switch runs no api\n"))
                else:
                    w.write(esl.encode_command_reply("-ERR command not found"))
                await w.drain()
        except (ConnectionError, ProtocolError):
            return
        finally:
            self.switch._subscribers.discard(self)
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


async def _next_command(parser: object, reader: asyncio.StreamReader, size: int) -> object:
    while True:
        command = parser.next_command()  # type: ignore[attr-defined]
        if command is not esl.NEED_DATA:
            return command
        parser.receive_data(await reader.read(size))  # type: ignore[attr-defined]

"""The client side: a sans-I/O ESL connection (h11 style).

The transport runs one loop: read bytes → ``receive_data`` → call ``next_event`` until
it returns ``NEED_DATA``; and writes what ``send`` returns. Nothing here does I/O,
sleeps or knows about asyncio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from fs_plugin.esl._commands import Api, Command, command_verb, encode
from fs_plugin.esl._errors import LocalEslError, Reason, RemoteEslError
from fs_plugin.esl._frames import (
    NEED_DATA,
    AuthRequest,
    ConnectionClosed,
    Event,
    Frame,
    FrameSplitter,
    LogData,
    NeedData,
    RudeRejection,
    UnknownFrame,
    decode_api,
    decode_channel_data,
    decode_disconnect,
    decode_event_json,
    decode_event_plain,
    decode_event_xml,
    decode_reply,
)
from fs_plugin.esl._state import INITIAL_STATE, Input, Role, State, next_state

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "DEFAULT_MAX_HEADER_BYTES", "Connection"]

# A channel-data header block is 5–10 KB in the captures (150–250 variables); 256 KiB
# leaves ample room for calls with SDP, many custom variables and long SIP headers,
# while a peer that never ends its header block costs at most this much memory.
DEFAULT_MAX_HEADER_BYTES: Final = 256 * 1024
# Events are 2–10 KB; the largest bodies are api responses such as `show channels`
# on a busy switch (a few KB per call). 16 MiB bounds memory per connection while
# leaving room for thousands of calls in one response.
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024

_CONTENT_TYPES_EVENT = {
    "text/event-plain": decode_event_plain,
    "text/event-json": decode_event_json,
    "text/event-xml": decode_event_xml,
}
_SEND_INPUTS: Final = {
    "connect": Input.SEND_CONNECT,
    "auth": Input.SEND_AUTH,
    "exit": Input.SEND_EXIT,
}


class Connection:
    """One ESL connection, client side. ``role`` says who connected to whom."""

    def __init__(
        self,
        role: Role,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> None:
        self.role = role
        self._state = INITIAL_STATE[role]
        self._splitter = FrameSplitter(
            max_header_bytes=max_header_bytes, max_frame_size=max_frame_size
        )
        # Commands sent and not yet answered, oldest first: FreeSWITCH answers every
        # command exactly once and in order, so the head is what the next reply answers.
        # Bounded by what the caller sends; a reply never adds to it.
        self._pending: deque[Command] = deque()
        self._eof = False
        self._error: RemoteEslError | None = None

    # -- introspection --------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def states(self) -> Mapping[Role, State]:
        """h11-style view: our role → current state (one combined machine here)."""
        return MappingProxyType({self.role: self._state})

    @property
    def pending(self) -> int:
        """How many commands sent are still waiting for their reply."""
        return len(self._pending)

    @property
    def pending_commands(self) -> tuple[Command, ...]:
        return tuple(self._pending)

    # -- sending --------------------------------------------------------------

    @staticmethod
    def _send_input(command: Command) -> Input:
        return _SEND_INPUTS.get(command_verb(command), Input.SEND_COMMAND)

    def can_send(self, command: Command) -> bool:
        """Whether :meth:`send` would accept ``command`` in the current state."""
        if self._state is State.ERROR:
            return False
        try:
            next_state(self.role, self._state, self._send_input(command))
        except LocalEslError:
            return False
        return True

    def send(self, command: Command) -> bytes:
        """Check ``command`` against the state machine and return its bytes.

        On ``LocalEslError`` nothing was produced and the state is unchanged, so the
        connection stays usable (there is nothing half-written to recover from).
        """
        new_state = next_state(self.role, self._state, self._send_input(command))
        data = encode(command)  # validates values before the state changes
        self._state = new_state
        self._pending.append(command)
        return data

    # -- receiving ------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; ``b""`` means EOF."""
        if self._error is not None:
            raise RemoteEslError(self._error.reason, self._error.detail, state=State.ERROR.value)
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalEslError(Reason.DATA_AFTER_EOF, "receive_data after EOF")
        self._splitter.feed(data)

    def next_event(self) -> Event | NeedData:
        """The next event, ``NEED_DATA``, or ``ConnectionClosed`` (repeatedly) after EOF."""
        if self._error is not None:
            raise RemoteEslError(self._error.reason, self._error.detail, state=State.ERROR.value)
        try:
            return self._next_event()
        except RemoteEslError as exc:
            self._error = exc
            self._state = State.ERROR
            raise

    def _next_event(self) -> Event | NeedData:
        frame = self._splitter.next_frame()
        if frame is None:
            if not self._eof:
                return NEED_DATA
            if self._splitter.has_partial():
                raise RemoteEslError(
                    Reason.TRUNCATED_FRAME,
                    f"EOF inside a frame ({self._splitter.buffered} bytes buffered)",
                )
            self._state = next_state(self.role, self._state, Input.RECV_EOF)
            return ConnectionClosed()
        return self._classify(frame)

    def _classify(self, frame: Frame) -> Event:
        content_type = frame.content_type
        head = self._pending[0] if self._pending else None
        event: Event
        if content_type == "command/reply":
            if head is None:
                reply = decode_reply(frame, None)
                move = Input.RECV_UNMATCHED_REPLY if reply.ok else Input.RECV_UNMATCHED_ERROR_REPLY
                self._state = next_state(self.role, self._state, move)
                return reply
            verb = command_verb(head)
            if verb == "connect":
                event = decode_channel_data(frame)
                move = Input.RECV_CHANNEL_DATA
            else:
                event = decode_reply(frame, head)
                move = Input.RECV_REPLY
                if verb == "auth":
                    move = Input.RECV_AUTH_ACCEPTED if event.ok else Input.RECV_AUTH_REJECTED
            self._state = next_state(self.role, self._state, move)
            self._pending.popleft()
            return event
        if content_type == "api/response":
            if head is None:
                move = Input.RECV_UNMATCHED_REPLY
            elif isinstance(head, Api) or command_verb(head) == "api":
                move = Input.RECV_REPLY
            else:
                move = Input.RECV_MISMATCHED_REPLY
            self._state = next_state(self.role, self._state, move)
            self._pending.popleft()
            return decode_api(frame, head)
        decoder = _CONTENT_TYPES_EVENT.get(content_type or "")
        if decoder is not None:
            # Check the state first: an event where none can be is a protocol error
            # even when its body would not parse.
            self._state = next_state(self.role, self._state, Input.RECV_EVENT)
            return decoder(frame)
        if content_type == "text/disconnect-notice":
            notice = decode_disconnect(frame)
            linger = notice.disposition == "linger"
            move = Input.RECV_LINGER_NOTICE if linger else Input.RECV_DISCONNECT_NOTICE
            self._state = next_state(self.role, self._state, move)
            return notice
        if content_type == "auth/request":
            self._state = next_state(self.role, self._state, Input.RECV_AUTH_REQUEST)
            return AuthRequest(frame)
        if content_type == "text/rude-rejection":
            self._state = next_state(self.role, self._state, Input.RECV_RUDE_REJECTION)
            return RudeRejection(frame.body.decode("utf-8", errors="replace"), frame)
        if content_type == "log/data":
            self._state = next_state(self.role, self._state, Input.RECV_LOG)
            body = frame.body.decode("utf-8", errors="replace")
            return LogData(frame.get("Log-Level"), body, frame)
        self._state = next_state(self.role, self._state, Input.RECV_UNKNOWN)
        return UnknownFrame(frame)


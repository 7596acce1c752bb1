"""The ESL connection state machine: every allowed transition, in one table.

Inputs are what we send (by command kind) and what we receive (by frame kind, refined by
the command a reply answers). A (role, state, input) triple missing from
:data:`TRANSITIONS` is a protocol error: ``LocalEslError`` for something we tried to
send (nothing is sent and the state does not change), ``RemoteEslError`` for something
FreeSWITCH sent (the connection moves to ERROR for good).

The entries that may look lenient are each backed by a capture:

- ``AUTH_REQUESTED`` + ``RECV_UNMATCHED_ERROR_REPLY``: FreeSWITCH answers a pre-auth
  command with ``-ERR command not found`` and keeps the socket open
  (``in_preauth_and_unknown_commands``); we never send one, but bytes written by
  someone else on the socket must not kill it.
- ``AUTHENTICATING`` + ``SEND_COMMAND``/``SEND_EXIT``: commands pipelined behind
  ``auth`` in one write are answered in order (``in_pipelined_and_crlf``,
  ``in_auth_exit_pipelined``).
- ``READY`` + ``RECV_DISCONNECT_NOTICE`` while replies are still pending, and
  ``CLOSING`` + ``SEND_EXIT``: the disconnect notice often arrives before the reply to
  our ``exit`` or instead of it, and an ``exit`` after the notice goes nowhere
  (``out_block_unwanted``, ``out_api_bgapi_errors``) — neither is an error.
- ``RECV_LINGER_NOTICE`` (``Content-Disposition: linger``) keeps an outbound socket
  READY: events keep coming until we send ``exit`` (``out_hangup_call_rejected``).
"""

from __future__ import annotations

from enum import Enum

from fs_plugin.esl._errors import LocalEslError, Reason, RemoteEslError

__all__ = ["INITIAL_STATE", "TRANSITIONS", "Input", "Role", "State", "next_state"]


class Role(Enum):
    """Which side of FreeSWITCH's event socket we are."""

    INBOUND = "inbound"  # we connected to FreeSWITCH's :8021 and must authenticate
    OUTBOUND = "outbound"  # the dialplan's socket app connected to us; we send connect


class State(Enum):
    AWAIT_AUTH_REQUEST = "AWAIT_AUTH_REQUEST"  # inbound: connected, nothing received yet
    AUTH_REQUESTED = "AUTH_REQUESTED"  # inbound: auth/request received; send auth
    AUTHENTICATING = "AUTHENTICATING"  # inbound: auth sent, its reply not yet received
    AWAIT_CONNECT = "AWAIT_CONNECT"  # outbound: accepted; we must send connect first
    AWAIT_CHANNEL_DATA = "AWAIT_CHANNEL_DATA"  # outbound: connect sent
    READY = "READY"
    CLOSING = "CLOSING"  # exit sent or disconnect notice received: only EOF is left
    CLOSED = "CLOSED"  # EOF received
    ERROR = "ERROR"  # the peer broke the protocol; every further call raises


class Input(Enum):
    SEND_CONNECT = "SEND_CONNECT"
    SEND_AUTH = "SEND_AUTH"
    SEND_EXIT = "SEND_EXIT"
    SEND_COMMAND = "SEND_COMMAND"  # any other command
    RECV_AUTH_REQUEST = "RECV_AUTH_REQUEST"
    RECV_AUTH_ACCEPTED = "RECV_AUTH_ACCEPTED"  # +OK reply to auth
    RECV_AUTH_REJECTED = "RECV_AUTH_REJECTED"  # -ERR reply to auth
    RECV_CHANNEL_DATA = "RECV_CHANNEL_DATA"  # command/reply answering connect
    RECV_REPLY = "RECV_REPLY"  # command/reply or api/response answering a pending command
    RECV_UNMATCHED_ERROR_REPLY = "RECV_UNMATCHED_ERROR_REPLY"  # -ERR, nothing pending
    RECV_UNMATCHED_REPLY = "RECV_UNMATCHED_REPLY"  # any other reply with nothing pending
    RECV_MISMATCHED_REPLY = "RECV_MISMATCHED_REPLY"  # api/response to a non-api command
    RECV_EVENT = "RECV_EVENT"
    RECV_LOG = "RECV_LOG"
    RECV_LINGER_NOTICE = "RECV_LINGER_NOTICE"  # disconnect notice, disposition linger
    RECV_DISCONNECT_NOTICE = "RECV_DISCONNECT_NOTICE"  # any other disconnect notice
    RECV_RUDE_REJECTION = "RECV_RUDE_REJECTION"
    RECV_UNKNOWN = "RECV_UNKNOWN"  # well framed, unknown content type
    RECV_EOF = "RECV_EOF"


_I = Role.INBOUND
_O = Role.OUTBOUND
S = State
In = Input

# (role, state, input) -> next state. Absent means forbidden.
TRANSITIONS: dict[tuple[Role, State, Input], State] = {
    # ---------------- inbound ----------------
    (_I, S.AWAIT_AUTH_REQUEST, In.RECV_AUTH_REQUEST): S.AUTH_REQUESTED,
    (_I, S.AWAIT_AUTH_REQUEST, In.RECV_RUDE_REJECTION): S.CLOSING,
    (_I, S.AWAIT_AUTH_REQUEST, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_I, S.AWAIT_AUTH_REQUEST, In.RECV_EOF): S.CLOSED,
    (_I, S.AUTH_REQUESTED, In.SEND_AUTH): S.AUTHENTICATING,
    (_I, S.AUTH_REQUESTED, In.RECV_UNMATCHED_ERROR_REPLY): S.AUTH_REQUESTED,
    (_I, S.AUTH_REQUESTED, In.RECV_DISCONNECT_NOTICE): S.CLOSING,  # idle timeout
    (_I, S.AUTH_REQUESTED, In.RECV_EOF): S.CLOSED,
    (_I, S.AUTHENTICATING, In.SEND_COMMAND): S.AUTHENTICATING,  # pipelined behind auth
    (_I, S.AUTHENTICATING, In.SEND_EXIT): S.CLOSING,
    (_I, S.AUTHENTICATING, In.RECV_AUTH_ACCEPTED): S.READY,
    (_I, S.AUTHENTICATING, In.RECV_AUTH_REJECTED): S.CLOSING,
    (_I, S.AUTHENTICATING, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_I, S.AUTHENTICATING, In.RECV_EOF): S.CLOSED,
    (_I, S.READY, In.SEND_COMMAND): S.READY,
    (_I, S.READY, In.SEND_EXIT): S.CLOSING,
    (_I, S.READY, In.RECV_REPLY): S.READY,
    (_I, S.READY, In.RECV_EVENT): S.READY,
    (_I, S.READY, In.RECV_LOG): S.READY,
    (_I, S.READY, In.RECV_UNKNOWN): S.READY,
    (_I, S.READY, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_I, S.READY, In.RECV_EOF): S.CLOSED,
    (_I, S.CLOSING, In.SEND_EXIT): S.CLOSING,
    (_I, S.CLOSING, In.RECV_AUTH_ACCEPTED): S.CLOSING,  # exit pipelined behind auth
    (_I, S.CLOSING, In.RECV_AUTH_REJECTED): S.CLOSING,
    (_I, S.CLOSING, In.RECV_REPLY): S.CLOSING,
    (_I, S.CLOSING, In.RECV_EVENT): S.CLOSING,
    (_I, S.CLOSING, In.RECV_LOG): S.CLOSING,
    (_I, S.CLOSING, In.RECV_UNKNOWN): S.CLOSING,
    (_I, S.CLOSING, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_I, S.CLOSING, In.RECV_EOF): S.CLOSED,
    (_I, S.CLOSED, In.SEND_EXIT): S.CLOSED,
    (_I, S.CLOSED, In.RECV_EOF): S.CLOSED,
    # ---------------- outbound ----------------
    (_O, S.AWAIT_CONNECT, In.SEND_CONNECT): S.AWAIT_CHANNEL_DATA,
    (_O, S.AWAIT_CONNECT, In.RECV_EOF): S.CLOSED,
    (_O, S.AWAIT_CHANNEL_DATA, In.RECV_CHANNEL_DATA): S.READY,
    (_O, S.AWAIT_CHANNEL_DATA, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_O, S.AWAIT_CHANNEL_DATA, In.RECV_EOF): S.CLOSED,
    (_O, S.READY, In.SEND_COMMAND): S.READY,
    (_O, S.READY, In.SEND_EXIT): S.CLOSING,
    (_O, S.READY, In.RECV_REPLY): S.READY,
    (_O, S.READY, In.RECV_EVENT): S.READY,
    (_O, S.READY, In.RECV_LOG): S.READY,
    (_O, S.READY, In.RECV_UNKNOWN): S.READY,
    (_O, S.READY, In.RECV_LINGER_NOTICE): S.READY,
    (_O, S.READY, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_O, S.READY, In.RECV_EOF): S.CLOSED,
    (_O, S.CLOSING, In.SEND_EXIT): S.CLOSING,
    (_O, S.CLOSING, In.RECV_REPLY): S.CLOSING,
    (_O, S.CLOSING, In.RECV_EVENT): S.CLOSING,
    (_O, S.CLOSING, In.RECV_LOG): S.CLOSING,
    (_O, S.CLOSING, In.RECV_UNKNOWN): S.CLOSING,
    (_O, S.CLOSING, In.RECV_LINGER_NOTICE): S.CLOSING,
    (_O, S.CLOSING, In.RECV_DISCONNECT_NOTICE): S.CLOSING,
    (_O, S.CLOSING, In.RECV_EOF): S.CLOSED,
    (_O, S.CLOSED, In.SEND_EXIT): S.CLOSED,
    (_O, S.CLOSED, In.RECV_EOF): S.CLOSED,
}

INITIAL_STATE: dict[Role, State] = {
    Role.INBOUND: State.AWAIT_AUTH_REQUEST,
    Role.OUTBOUND: State.AWAIT_CONNECT,
}


def next_state(role: Role, state: State, event: Input) -> State:
    """The state after ``event``; raises the right error type when it is not allowed."""
    try:
        return TRANSITIONS[(role, state, event)]
    except KeyError:
        pass
    detail = f"{event.value} not allowed in {role.value} state {state.value}"
    if event.name.startswith("SEND_"):
        reason = Reason.CONNECTION_ERRORED if state is State.ERROR else Reason.COMMAND_NOT_ALLOWED
        raise LocalEslError(reason, detail, state=state.value)
    raise RemoteEslError(Reason.UNEXPECTED_FRAME, detail, state=state.value)

"""The state table, exhaustively and through a real Connection (h2-style)."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_plugin import esl
from fs_plugin.errors import LocalProtocolError
from fs_plugin.esl import Input, Role, State
from fs_plugin.esl._state import next_state

TRIPLES = list(itertools.product(Role, State, Input))


@settings(max_examples=400)
@given(st.sampled_from(TRIPLES))
def test_every_role_state_input(triple: tuple[Role, State, Input]) -> None:
    role, state, event = triple
    expected = esl.TRANSITIONS.get(triple)
    if expected is not None:
        assert next_state(role, state, event) is expected
    elif event.name.startswith("SEND_"):
        with pytest.raises(esl.LocalEslError):
            next_state(role, state, event)
    else:
        with pytest.raises(esl.RemoteEslError) as info:
            next_state(role, state, event)
        assert info.value.reason is esl.Reason.UNEXPECTED_FRAME


def test_table_shape() -> None:
    for role, state, event in esl.TRANSITIONS:
        assert state not in (State.ERROR,), "nothing leaves ERROR"
        if role is Role.INBOUND:
            assert event not in (Input.SEND_CONNECT, Input.RECV_CHANNEL_DATA)
        else:
            assert event not in (Input.SEND_AUTH, Input.RECV_AUTH_REQUEST)
    # EOF is always accepted until the connection has failed
    for role, state in itertools.product(Role, State):
        assert ((role, state, Input.RECV_EOF) in esl.TRANSITIONS) is (state is not State.ERROR) or (
            role is Role.INBOUND and state in (State.AWAIT_CONNECT, State.AWAIT_CHANNEL_DATA)
        ) or (role is Role.OUTBOUND and state in (
            State.AWAIT_AUTH_REQUEST, State.AUTH_REQUESTED, State.AUTHENTICATING))


# ---------------------------------------------------------------------------------------
# Random walks through a real Connection against a model built from the table

SENDS: dict[str, esl.Command] = {
    "connect": esl.Connect(),
    "auth": esl.Auth("ClueCon"),
    "exit": esl.Exit(),
    "api": esl.Api("status"),
    "bgapi": esl.BgApi("status", "j-1"),
    "sendmsg": esl.execute("set", "a=b"),
    "event": esl.EventSubscribe("json", ("ALL",)),
}
RECVS = [
    "auth_request", "reply_ok", "reply_err", "api", "event_plain", "event_json", "log",
    "notice_linger", "notice_disconnect", "rude", "unknown", "eof",
]  # fmt: skip

CHANNEL = [("Event-Name", "CHANNEL_DATA"), ("Unique-ID", "u-1")]
EVENT = [("Event-Name", "HEARTBEAT")]


def _recv(kind: str, head: esl.Command | None) -> tuple[bytes, Input]:
    if kind in ("reply_ok", "reply_err"):
        ok = kind == "reply_ok"
        if isinstance(head, esl.Connect):
            return esl.encode_channel_data(CHANNEL), Input.RECV_CHANNEL_DATA
        data = esl.encode_command_reply("+OK" if ok else "-ERR no")
        if head is None:
            return data, Input.RECV_UNMATCHED_REPLY if ok else Input.RECV_UNMATCHED_ERROR_REPLY
        if isinstance(head, esl.Auth):
            return data, Input.RECV_AUTH_ACCEPTED if ok else Input.RECV_AUTH_REJECTED
        return data, Input.RECV_REPLY
    if kind == "api":
        data = esl.encode_api_response("+OK\n")
        if head is None:
            return data, Input.RECV_UNMATCHED_REPLY
        return data, Input.RECV_REPLY if isinstance(head, esl.Api) else Input.RECV_MISMATCHED_REPLY
    table = {
        "auth_request": (esl.encode_auth_request(), Input.RECV_AUTH_REQUEST),
        "event_plain": (esl.encode_event_plain(EVENT), Input.RECV_EVENT),
        "event_json": (esl.encode_event_json(EVENT), Input.RECV_EVENT),
        "log": (esl.encode_log_data("x\n", level=7, log_file="f.c", log_func="f", log_line=1),
                Input.RECV_LOG),
        "notice_linger": (esl.encode_disconnect_notice("u-1", "linger"), Input.RECV_LINGER_NOTICE),
        "notice_disconnect": (esl.encode_disconnect_notice("u-1"), Input.RECV_DISCONNECT_NOTICE),
        "rude": (esl.encode_rude_rejection(), Input.RECV_RUDE_REJECTION),
        "unknown": (b"Content-Type: text/future\n\n", Input.RECV_UNKNOWN),
    }  # fmt: skip
    return table[kind]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(Role),
    st.lists(st.sampled_from(sorted(SENDS)) | st.sampled_from(RECVS), max_size=25),
)
def test_random_walks_follow_the_table(role: Role, actions: list[str]) -> None:
    conn = esl.Connection(role)
    state = conn.state
    pending: deque[esl.Command] = deque()
    for action in actions:
        if action in SENDS:
            command = SENDS[action]
            move = {"connect": Input.SEND_CONNECT, "auth": Input.SEND_AUTH,
                    "exit": Input.SEND_EXIT}.get(action, Input.SEND_COMMAND)  # fmt: skip
            expected = esl.TRANSITIONS.get((role, state, move))
            assert conn.can_send(command) is (expected is not None)
            if expected is None:
                with pytest.raises(esl.LocalEslError):
                    conn.send(command)
                assert conn.state is state  # a refused command changes nothing
            else:
                assert conn.send(command) == esl.encode(command)
                pending.append(command)
                state = expected
            assert conn.state is state and conn.pending == len(pending)
            continue
        head = pending[0] if pending else None
        if action == "eof":
            conn.receive_data(b"")
            move = Input.RECV_EOF
        else:
            if state is State.CLOSED:
                continue  # nothing can arrive after EOF
            data, move = _recv(action, head)
            conn.receive_data(data)
        expected = esl.TRANSITIONS.get((role, state, move))
        if expected is None:
            with pytest.raises(esl.RemoteEslError):
                conn.next_event()
            assert conn.state is State.ERROR
            with pytest.raises(esl.RemoteEslError):
                conn.next_event()  # and it stays failed
            with pytest.raises(LocalProtocolError):
                conn.send(esl.Exit())
            return
        event = conn.next_event()
        assert not isinstance(event, esl.NeedData)
        if move in (Input.RECV_REPLY, Input.RECV_AUTH_ACCEPTED, Input.RECV_AUTH_REJECTED,
                    Input.RECV_CHANNEL_DATA):  # fmt: skip
            answered = pending.popleft()
            if not isinstance(event, esl.ChannelData):
                assert isinstance(event, esl.CommandReply | esl.ApiResponse)
                assert event.command == answered
        state = expected
        assert conn.state is state and conn.pending == len(pending)
        if move is Input.RECV_EOF:
            assert isinstance(event, esl.ConnectionClosed)
            assert isinstance(conn.next_event(), esl.ConnectionClosed)  # repeatedly


def test_api_before_auth_and_anything_before_connect_are_refused() -> None:
    inbound = esl.Connection(Role.INBOUND)
    inbound.receive_data(esl.encode_auth_request())
    assert isinstance(inbound.next_event(), esl.AuthRequest)
    with pytest.raises(esl.LocalEslError) as info:
        inbound.send(esl.Api("status"))
    assert info.value.reason is esl.Reason.COMMAND_NOT_ALLOWED
    outbound = esl.Connection(Role.OUTBOUND)
    for command in (esl.execute("set", "a=b"), esl.Exit(), esl.Auth("x")):
        with pytest.raises(esl.LocalEslError):
            outbound.send(command)
    assert outbound.send(esl.Connect()) == b"connect\n\n"
    assert outbound.state is State.AWAIT_CHANNEL_DATA


def test_event_before_auth_is_a_remote_error() -> None:
    conn = esl.Connection(Role.INBOUND)
    conn.receive_data(esl.encode_auth_request() + esl.encode_event_json(EVENT))
    assert isinstance(conn.next_event(), esl.AuthRequest)
    with pytest.raises(esl.RemoteEslError) as info:
        conn.next_event()
    assert info.value.reason is esl.Reason.UNEXPECTED_FRAME
    assert info.value.state == "AUTH_REQUESTED"

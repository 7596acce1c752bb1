"""Input that once escaped the codec as something other than its protocol errors."""

from __future__ import annotations

import pytest

from fs_plugin import esl


def _ready_inbound() -> esl.Connection:
    conn = esl.Connection(esl.Role.INBOUND)
    conn.receive_data(esl.encode_auth_request())
    conn.next_event()
    conn.send(esl.Auth("ClueCon"))
    conn.receive_data(esl.encode_command_reply("+OK accepted"))
    conn.next_event()
    conn.send(esl.EventSubscribe("json", ("ALL",)))
    conn.receive_data(esl.encode_command_reply("+OK event listener enabled json"))
    conn.next_event()
    assert conn.state is esl.State.READY
    return conn


def _event_frame(content_type: bytes, body: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(body), content_type) + body


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # Parses (json's limit is ~1000 levels), then overflowed the renderer.
        (b"text/event-json", b'{"Event-Name":"X","a":' + b"[" * 600 + b"]" * 600 + b"}"),
        (b"text/event-json", b'{"Event-Name":"X","a":' + b'{"a":' * 600 + b"1" + b"}" * 601),
        # ElementTree raises LookupError / ValueError for these declarations.
        (b"text/event-xml", b'<?xml version="1.0" encoding="bogus"?><event/>'),
        (b"text/event-xml", b'<?xml version="1.0" encoding="rot13"?><event/>'),
        (b"text/event-xml", b'<?xml version="1.0" encoding="shift_jis"?><event/>'),
        (b"text/event-xml", b'<?xml version="1.0" encoding="idna"?><event/>'),
    ],
    ids=["json-deep-array", "json-deep-object", "xml-unknown-encoding",
         "xml-non-text-codec", "xml-multibyte-encoding", "xml-idna"],
)
def test_hostile_event_bodies_are_bad_event_body(content_type: bytes, body: bytes) -> None:
    conn = _ready_inbound()
    conn.receive_data(_event_frame(content_type, body))
    with pytest.raises(esl.RemoteEslError) as info:
        conn.next_event()
    assert info.value.reason is esl.Reason.BAD_EVENT_BODY
    assert conn.state is esl.State.ERROR


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # More digits than int() converts (4300): a malformed command, answered as such.
        (b"linger " + b"9" * 5000 + b"\n\n", esl.RawCommand("linger " + "9" * 5000)),
        (b"sendmsg\ncall-command: execute\nexecute-app-name: set\nloops: " + b"9" * 5000
         + b"\n\n", None),
        (b"sendmsg\ncall-command: execute\nexecute-app-name: set\nevent-lock: " + b"9" * 5000
         + b"\n\n", esl.SendMsg(app="set", event_lock=True)),
        (b"sendmsg\ncall-command: execute\nexecute-app-name: set\nevent-lock: " + b"0" * 5000
         + b"\n\n", esl.SendMsg(app="set")),
    ],
    ids=["linger", "loops", "event-lock", "event-lock-zeros"],
)
def test_overlong_numbers_in_client_commands(data: bytes, expected: esl.Command | None) -> None:
    command = esl.parse_command(data)
    if expected is None:
        assert isinstance(command, esl.RawCommand)
    else:
        assert command == expected

"""The SIP parser: forms seen on real trunks, and refusals that are always SipParseError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_plugin.errors import RemoteProtocolError
from fs_plugin.replay.sip import (
    ParseFailure,
    SipParseError,
    StreamFramer,
    parse_message,
    parse_name_addr,
    sketch_message,
    uri_user,
)

INVITE = (
    b"INVITE sip:13900001111@10.0.0.1 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK2\r\n"
    b'f: "\\"arik\\"" <sip:02088886666@10.0.0.2>;tag=abc\r\n'
    b"t: <sip:13900001111@10.0.0.1>\r\n"
    b"i: call-1@10.0.0.2\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Subject: first part\r\n"
    b"   second part\r\n"
    b"P-Asserted-Identity: <sip:02088886666@x;user=phone>, <tel:02088886666>\r\n"
    b"l: 5\r\n"
    b"\r\n"
    b"v=0\r\nextra-bytes-ignored"
)


def test_compact_folded_and_repeated_headers() -> None:
    m = parse_message(INVITE)
    assert (m.method, m.request_uri, m.status, m.is_request) == (
        "INVITE",
        "sip:13900001111@10.0.0.1",
        0,
        True,
    )
    assert m.call_id == "call-1@10.0.0.2"
    assert m.header("CALL-ID") == m.header("i") == "call-1@10.0.0.2"
    assert m.header_values("via") == (
        "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1",
        "SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK2",
    )
    assert m.header("subject") == "first part second part"
    assert m.cseq == (7, "INVITE")
    assert m.body == b"v=0\r\n"
    sender = parse_name_addr(m.header("from") or "")
    assert (sender.display, sender.user, sender.tag) == ('"arik"', "02088886666", "abc")


def test_response_and_lf_only_lines() -> None:
    m = parse_message(b"SIP/2.0 183 Session Progress\nCall-ID: x\nCSeq: 1 INVITE\n\n")
    assert (m.status, m.reason, m.is_request) == (183, "Session Progress", False)
    assert m.cseq == (1, "INVITE")


def test_sketch_agrees_with_parse() -> None:
    sketch = sketch_message(INVITE)
    assert sketch == ("INVITE", 0, "call-1@10.0.0.2", 7, "INVITE")


@pytest.mark.parametrize(
    ("data", "failure"),
    [
        (b"\x00\x00\x00\x00", ParseFailure.NOT_SIP),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ParseFailure.NOT_SIP),
        (b"SIP/2.0 abc Bad\r\n\r\n", ParseFailure.BAD_START_LINE),
        (b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", ParseFailure.BAD_HEADER),
        (b"INVITE sip:a@b SIP/2.0\r\nContent-Length: bad\r\n\r\n", ParseFailure.BAD_CONTENT_LENGTH),
        (b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc", ParseFailure.TRUNCATED_BODY),
    ],
)
def test_refusals_name_their_reason(data: bytes, failure: ParseFailure) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.failure is failure
    assert isinstance(info.value, RemoteProtocolError)


def test_sketch_refuses_bad_content_length_like_parse() -> None:
    with pytest.raises(SipParseError) as info:
        sketch_message(b"SIP/2.0 200 OK\r\nCall-ID: a\r\nContent-Length: xyz\r\n\r\n")
    assert info.value.failure is ParseFailure.BAD_CONTENT_LENGTH


@pytest.mark.parametrize(
    ("value", "user", "tag"),
    [
        ('"A, <b>" <sip:123@h;user=phone>;tag=9', "123", "9"),
        ("sip:456@h;tag=t1", "456", "t1"),
        ("<tel:9171969136;phone-context=+7>", "9171969136", None),
        ("<sip:@maxus.lan>", "", None),
        ("<sip:invalid.unknown.domain>", "", None),
        ("<sip:u:secret@h>", "u", None),
    ],
)
def test_name_addr_users(value: str, user: str, tag: str | None) -> None:
    parsed = parse_name_addr(value)
    assert (parsed.user, parsed.tag) == (user, tag)


def test_uri_user_schemes() -> None:
    assert uri_user("sips:+8613900001111@h") == "+8613900001111"
    assert uri_user("no-scheme") == ""


def test_stream_framer_any_split_gives_same_messages() -> None:
    one = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 3\r\n\r\nabc"
    two = b"SIP/2.0 200 OK\r\nCall-ID: 1\r\nl: 0\r\n\r\n"
    stream = b"\r\n" + one + two + one
    for cut in range(len(stream) + 1):
        framer = StreamFramer()
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert out == [one, two, one], cut
        assert framer.pending == 0


def test_stream_framer_bad_length_resyncs() -> None:
    framer = StreamFramer()
    good = b"SIP/2.0 200 OK\r\nCall-ID: 1\r\n\r\n"
    out = framer.feed(b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n" + good)
    assert isinstance(out[0], SipParseError)
    assert out[0].failure is ParseFailure.BAD_CONTENT_LENGTH
    assert out[1:] == [good]


_sipish = st.builds(
    lambda start, lines, body: start + b"\r\n".join(lines) + b"\r\n\r\n" + body,
    st.sampled_from([b"INVITE sip:a@b SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"", b"SIP/2.0 "]),
    st.lists(st.binary(max_size=40), max_size=6),
    st.binary(max_size=40),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=300), _sipish))
def test_random_bytes_raise_only_the_documented_error(data: bytes) -> None:
    for parse in (parse_message, sketch_message):
        with contextlib.suppress(SipParseError):
            parse(data)
    framer = StreamFramer()
    for item in framer.feed(data):
        assert isinstance(item, bytes | SipParseError)

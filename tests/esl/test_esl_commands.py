"""Commands: exact wire forms, refusal of values that would break framing, and the
switch-side parser as the inverse of ``encode`` (pipelining, CRLF, split writes)."""

from __future__ import annotations

import pytest
from esl_capture_support import MORE_CAPTURES, load
from hypothesis import given
from hypothesis import strategies as st

from fs_plugin import esl

WIRE = [
    (esl.Connect(), b"connect\n\n"),
    (esl.Auth("ClueCon"), b"auth ClueCon\n\n"),
    (esl.EventSubscribe("json", ("CHANNEL_CREATE", "BACKGROUND_JOB")),
     b"event json CHANNEL_CREATE BACKGROUND_JOB\n\n"),
    (esl.EventSubscribe("plain", ("CUSTOM", "lab::test")), b"event plain CUSTOM lab::test\n\n"),
    (esl.Filter("Event-Name", "CHANNEL_PARK"), b"filter Event-Name CHANNEL_PARK\n\n"),
    (esl.Filter("Unique-ID", "x", delete=True), b"filter delete Unique-ID x\n\n"),
    (esl.NoEvents(), b"noevents\n\n"),
    (esl.MyEvents(), b"myevents\n\n"),
    (esl.MyEvents("json"), b"myevents json\n\n"),
    (esl.MyEvents("plain", uuid="u-1"), b"myevents u-1 plain\n\n"),
    (esl.Linger(), b"linger\n\n"),
    (esl.Linger(5), b"linger 5\n\n"),
    (esl.NoLinger(), b"nolinger\n\n"),
    (esl.Api("uuid_getvar u sip_from_user"), b"api uuid_getvar u sip_from_user\n\n"),
    (esl.BgApi("status", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
     b"bgapi status\nJob-UUID: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\n\n"),
    (esl.BgApi("status", ""), b"bgapi status\n\n"),
    (esl.execute("set", "fsp_verdict=pass"),
     b"sendmsg\ncall-command: execute\nexecute-app-name: set\n"
     b"execute-app-arg: fsp_verdict=pass\n\n"),
    (esl.execute("set", "fsp_verdict=pass", event_lock=True,
                 event_uuid="11111111-2222-3333-4444-555555555555"),
     b"sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: fsp_verdict=pass\n"
     b"event-lock: true\nEvent-UUID: 11111111-2222-3333-4444-555555555555\n\n"),
    (esl.execute("playback", "tone_stream://%(200,0,500)", uuid="u-1", loops=1),
     b"sendmsg u-1\ncall-command: execute\nexecute-app-name: playback\n"
     b"execute-app-arg: tone_stream://%(200,0,500)\nloops: 1\n\n"),
    (esl.hangup("CALL_REJECTED"),
     b"sendmsg\ncall-command: hangup\nhangup-cause: CALL_REJECTED\n\n"),
    (esl.execute("set", "a=b\nc"),
     b"sendmsg\ncall-command: execute\nexecute-app-name: set\n"
     b"content-type: text/plain\ncontent-length: 5\n\na=b\nc"),
    (esl.execute("set", "effective_caller_id_name=疑似骚扰"),
     "sendmsg\ncall-command: execute\nexecute-app-name: set\n"
     "execute-app-arg: effective_caller_id_name=疑似骚扰\n\n".encode()),
    (esl.Exit(), b"exit\n\n"),
    (esl.Log("info"), b"log info\n\n"),
    (esl.NoLog(), b"nolog\n\n"),
    (esl.RawCommand("getvar lab_space"), b"getvar lab_space\n\n"),
    (esl.RawCommand("sendevent CUSTOM", (("Event-Subclass", "lab::test"),), b"hi"),
     b"sendevent CUSTOM\nEvent-Subclass: lab::test\ncontent-length: 2\n\nhi"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "wire"), WIRE)
def test_wire_form(command: esl.Command, wire: bytes) -> None:
    assert esl.encode(command) == wire
    assert esl.parse_command(wire) == (
        # a bodyless RawCommand gains nothing; one with a body gains its content-length
        esl.RawCommand(command.line, (*command.headers, ("content-length", "2")), command.body)
        if isinstance(command, esl.RawCommand) and command.body
        else command
    )


def test_capture_client_bytes_match_our_encoder() -> None:
    """Our encoder writes what the recorded clients wrote, command for command."""
    for key in ("top/out_sync_pass", "top/out_myevents_linger_plain", "top/out_api_bgapi_errors"):
        capture = load(key)
        commands = [c for _, cmds in capture.schedule for c in cmds]
        assert b"".join(esl.encode(c) for c in commands) == capture.client


@pytest.mark.parametrize(
    "command",
    [
        esl.Auth("a\nb"),
        esl.Api("status\n\nexit"),
        esl.Api(""),
        esl.BgApi("status", "a b"),
        esl.EventSubscribe("json", ()),
        esl.EventSubscribe("yaml", ("ALL",)),
        esl.EventSubscribe("json", ("A B",)),
        esl.Filter("Event-Name", "x\r\ny"),
        esl.Filter("delete", "x"),
        esl.MyEvents(uuid="json"),
        esl.Linger(-1),
        esl.execute("set", "x", event_uuid="u\n"),
        esl.execute("se t", "x"),
        esl.SendMsg(app=None),
        esl.execute("set", "a\x00b"),
        esl.hangup("CALL REJECTED"),
        esl.Log("7\n"),
        esl.RawCommand("getvar x\nexit"),
        esl.RawCommand("x", (("content-length", "3"),), b"ab"),
        esl.RawCommand("x", (("Bad:Name", "v"),)),
    ],
)
def test_values_that_would_break_framing_are_refused(command: esl.Command) -> None:
    with pytest.raises(esl.LocalEslError) as info:
        esl.encode(command)
    assert info.value.reason is esl.Reason.BAD_VALUE


# ---------------------------------------------------------------------------------------
# Hypothesis: parse_command(encode(cmd)) == cmd

_line_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=30
)
_token = st.text(
    st.characters(codec="utf-8", exclude_categories=["Zs", "Zl", "Zp", "Cc"]),
    min_size=1,
    max_size=20,
).filter(lambda s: not set(s) & set(" \t\r\n\v\f\x00"))
_fmt = st.sampled_from(sorted(esl.EVENT_FORMATS))
_any_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))

commands = st.one_of(
    st.just(esl.Connect()),
    st.builds(esl.Auth, _line_text),
    st.builds(esl.EventSubscribe, _fmt, st.lists(_token, min_size=1, max_size=4).map(tuple)),
    st.builds(
        esl.Filter, _token.filter(lambda t: t.lower() != "delete"), _line_text, st.booleans()
    ),
    st.just(esl.NoEvents()),
    st.builds(
        esl.MyEvents,
        st.none() | _fmt,
        st.none() | _token.filter(lambda t: t.lower() not in esl.EVENT_FORMATS),
    ),
    st.builds(esl.Linger, st.none() | st.integers(0, 10**6)),
    st.just(esl.NoLinger()),
    st.builds(esl.Api, _line_text.filter(bool)),
    st.builds(esl.BgApi, _line_text.filter(bool), st.just("") | _token),
    st.builds(
        esl.SendMsg,
        uuid=st.none() | _token,
        call_command=st.just("execute"),
        app=_token,
        arg=st.none() | _any_text,
        event_uuid=st.none() | _token,
        event_lock=st.booleans(),
        loops=st.none() | st.integers(1, 100),
    ),
    st.builds(esl.hangup, _token, st.none() | _token),
    st.just(esl.Exit()),
    st.builds(esl.Log, _token),
    st.just(esl.NoLog()),
    st.builds(
        esl.RawCommand,
        st.sampled_from(["getvar", "resume", "nixevent", "divert_events", "sendevent"]).flatmap(
            lambda verb: _line_text.map(lambda rest: f"{verb} {rest}".rstrip(" "))
        ),
    ),
)


@given(commands)
def test_parse_is_the_inverse_of_encode(command: esl.Command) -> None:
    assert esl.parse_command(esl.encode(command)) == command


@given(st.lists(commands, min_size=1, max_size=8), st.data())
def test_pipelined_commands_split_anywhere(cmds: list[esl.Command], data: st.DataObject) -> None:
    wire = b"".join(esl.encode(c) for c in cmds)
    if data.draw(st.booleans()):
        wire = wire.replace(b"\n", b"\r\n")  # FreeSWITCH accepts CRLF; so must the emulator
        cmds = [c for c in cmds if not (isinstance(c, esl.SendMsg) and c.arg and "\n" in c.arg)]
        wire = b"".join(
            esl.encode(c).replace(b"\n", b"\r\n") if not _has_body(c) else esl.encode(c)
            for c in cmds
        )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    parser = esl.SwitchConnection()
    got: list[esl.Command] = []
    pos = 0
    for cut in [*cuts, len(wire)]:
        if cut > pos:
            parser.receive_data(wire[pos:cut])
            pos = cut
        while not isinstance(cmd := parser.next_command(), esl.NeedData):
            assert not isinstance(cmd, esl.ConnectionClosed)
            got.append(cmd)
    parser.receive_data(b"")
    assert isinstance(parser.next_command(), esl.ConnectionClosed)
    assert got == cmds


def _has_body(command: esl.Command) -> bool:
    return isinstance(command, esl.SendMsg | esl.RawCommand) and b"content-length" in esl.encode(
        command
    )


# ---------------------------------------------------------------------------------------
# What the recorded clients sent, as the switch-side parser reads it

CLIENT_COMMANDS: dict[str, list[esl.Command]] = {
    "in_pipelined_and_crlf": [
        esl.Auth("ClueCon"), esl.Api("version"), esl.Api("global_getvar switch_serial"),
        esl.Api("version"), esl.Api("version"), esl.Api("version"), esl.Exit(),
    ],
    "in_auth_exit_pipelined": [esl.Auth("ClueCon"), esl.Exit(), esl.Api("version")],
    "in_json_park_bgapi_transfer": [
        esl.Auth("ClueCon"),
        esl.EventSubscribe("json", ("CHANNEL_CREATE", "CHANNEL_PARK", "CHANNEL_ANSWER",
                                    "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB")),
        esl.BgApi("uuid_transfer 794a3161-7d34-4ffb-82ca-0795860eea35 xfer2 XML lab", ""),
        esl.BgApi("uuid_getvar 794a3161-7d34-4ffb-82ca-0795860eea35 lab_mode",
                  "aaaaaaaa-bbbb-cccc-dddd-000000000001"),
        esl.Exit(),
    ],
    "in_sendmsg_uuid_answer_playback_hangup": [
        esl.Auth("ClueCon"),
        esl.EventSubscribe("plain", (
            "CHANNEL_PARK", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
        )),
        esl.execute("answer", uuid="17f00e27-71cf-49d0-a18c-b81b699b760e", event_lock=True),
        esl.execute("playback", "tone_stream://%(200,0,500)",
                    uuid="17f00e27-71cf-49d0-a18c-b81b699b760e", loops=1),
        esl.hangup("USER_BUSY", "17f00e27-71cf-49d0-a18c-b81b699b760e"),
        esl.execute("answer", uuid="00000000-0000-0000-0000-000000000000"),
        esl.Exit(),
    ],
    "out_sendmsg_body_filter_misc": [
        esl.Connect(), esl.RawCommand("getvar lab_space"),
        esl.RawCommand("getvar no_such_variable"), esl.RawCommand("resume"),
        esl.MyEvents("plain"), esl.Filter("Event-Name", "CHANNEL_EXECUTE_COMPLETE"),
        esl.Linger(), esl.RawCommand("foo bar"),
        esl.execute("set", "lab_body_var=set via body", event_lock=True),
        esl.Api("uuid_dump 903d4a7c-e7bc-447f-8b4f-3d39ea706c1e"),
        esl.execute("hangup", "NO_ANSWER"), esl.Exit(),
    ],
    "out_answer_playback_setvar_transfer": [
        esl.Connect(), esl.MyEvents(), esl.Linger(5), esl.execute("answer", event_lock=True),
        esl.Api("uuid_setvar 9811a723-b19e-4e56-852f-74532d030649 lab_from_esl hello%20world"),
        esl.Api("uuid_getvar 9811a723-b19e-4e56-852f-74532d030649 lab_from_esl"),
        esl.execute("playback", "tone_stream://%(300,100,440);loops=1", event_lock=True,
                    event_uuid="11111111-2222-3333-4444-555555555555"),
        esl.execute("transfer", "xfer1 XML lab"),
    ],
    "in_preauth_and_unknown_commands": [
        esl.Api("status"), esl.Auth("ClueCon"), esl.RawCommand("foobar"), esl.Api("foobar"),
        esl.Api("foobar with args"), esl.BgApi("foobar", ""),
        esl.EventSubscribe("plain", ("NOT_AN_EVENT",)),
        esl.RawCommand("event bogusformat CHANNEL_CREATE"), esl.RawCommand("event"),
        esl.RawCommand("nixevent CHANNEL_CREATE"), esl.NoEvents(), esl.NoEvents(),
        esl.MyEvents(), esl.Linger(), esl.execute("answer"),
        esl.Api("uuid_kill 00000000-0000-0000-0000-000000000000"), esl.RawCommand("api"),
        esl.Log("7"), esl.NoLog(), esl.Filter("Unique-ID", "00000000-0000-0000-0000-000000000000"),
        esl.Filter("Unique-ID", "00000000-0000-0000-0000-000000000000", delete=True),
        esl.RawCommand("divert_events on"), esl.RawCommand("getvar foo"), esl.Exit(),
    ],
    "in_api_bgapi_responses_plain_xml_json": [
        esl.Auth("ClueCon"), esl.Api("status"), esl.Api("version"),
        esl.Api("show channels as json"), esl.Api("eval ${ascii_example}x"),
        esl.Api("global_getvar hostname"), esl.EventSubscribe("plain", ("BACKGROUND_JOB",)),
        esl.BgApi("status", ""), esl.BgApi("uuid_kill 00000000-0000-0000-0000-000000000000", ""),
        esl.NoEvents(), esl.EventSubscribe("xml", ("BACKGROUND_JOB",)), esl.BgApi("version", ""),
        esl.EventSubscribe("json", ("BACKGROUND_JOB",)), esl.BgApi("version", ""),
        esl.EventSubscribe("plain", ("CUSTOM", "lab::test")),
        esl.RawCommand(
            "sendevent CUSTOM",
            (("Event-Subclass", "lab::test"), ("X-Lab-Header", "a b&c"),
             ("Content-Type", "text/plain"), ("Content-Length", "16")),
            b"hello body\nline2",
        ),
        esl.Exit(),
    ],
}  # fmt: skip


def _parse_all(data: bytes) -> list[esl.Command]:
    parser = esl.SwitchConnection()
    parser.receive_data(data)
    parser.receive_data(b"")
    out: list[esl.Command] = []
    while not isinstance(cmd := parser.next_command(), esl.ConnectionClosed):
        assert not isinstance(cmd, esl.NeedData)
        out.append(cmd)
    return out


@pytest.mark.parametrize("name", MORE_CAPTURES)
def test_recorded_client_bytes_parse(name: str) -> None:
    capture = load(f"more/{name}")
    commands = _parse_all(capture.client)
    if name in CLIENT_COMMANDS:
        assert commands == CLIENT_COMMANDS[name]
    # nothing the recorded clients sent is garbage: every command re-encodes
    for command in commands:
        esl.encode(command)
    first = commands[0] if commands else None
    if name.startswith("out_"):
        assert first == esl.Connect()
    elif commands and name != "in_preauth_and_unknown_commands":
        assert isinstance(first, esl.Auth)


def test_split_command_and_crlf_like_the_capture() -> None:
    parser = esl.SwitchConnection()
    got = []
    for chunk in (b"api version\r\n\r\n", b"api ver", b"sion\n", b"\n"):
        parser.receive_data(chunk)
        while not isinstance(cmd := parser.next_command(), esl.NeedData):
            got.append(cmd)
    assert got == [esl.Api("version"), esl.Api("version")]


def test_switch_parser_errors() -> None:
    parser = esl.SwitchConnection()
    parser.receive_data(b"sendmsg\nno colon here\n\n")
    with pytest.raises(esl.RemoteEslError) as info:
        parser.next_command()
    assert info.value.reason is esl.Reason.BAD_HEADER_LINE
    with pytest.raises(esl.RemoteEslError):
        parser.next_command()  # stays failed
    truncated = esl.SwitchConnection()
    truncated.receive_data(b"api stat")
    truncated.receive_data(b"")
    with pytest.raises(esl.RemoteEslError) as info:
        truncated.next_command()
    assert info.value.reason is esl.Reason.TRUNCATED_FRAME
    big = esl.SwitchConnection(max_command_bytes=100)
    big.receive_data(b"api " + b"x" * 200)
    with pytest.raises(esl.RemoteEslError) as info:
        big.next_command()
    assert info.value.reason is esl.Reason.HEADER_TOO_LARGE

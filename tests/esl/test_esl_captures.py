"""Every real capture parses exactly, however its bytes are split, and re-encodes exactly."""

from __future__ import annotations

import pytest
from esl_capture_support import ALL_CAPTURES, Capture, load, replay, signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fs_plugin import esl

# The expected sequence of every capture: what each frame is and, for replies, which of
# our commands it answers (FIFO correlation). Compare with the fixture READMEs.
EXPECTED: dict[str, list[str]] = {
    "top/in_auth_wrong": [
        'auth-request',
        'reply[auth] -ERR invalid',
        'notice None',
        'closed',
    ],
    "top/in_events_json_park_kill": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled json',
        'json CHANNEL_CREATE',
        'json CHANNEL_PARK',
        'api[api] ok',
        'json CHANNEL_HANGUP_COMPLETE',
        'reply[bgapi] +OK Job-UUID: 12345678-1234-1234-1234-123456789abc',
        'json BACKGROUND_JOB',
        'reply[frobnicate] -ERR command not found',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "top/in_events_plain_park_transfer": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled plain',
        'reply[filter] +OK filter added. [Event-Name]=[CHANNEL_PARK]',
        'plain CHANNEL_PARK',
        'reply[filter] +OK filter added. [Event-Name]=[CHANNEL_HANGUP_COMPLETE]',
        'reply[filter] +OK filter added. [Event-Name]=[BACKGROUND_JOB]',
        'reply[bgapi] +OK Job-UUID: bafadf8d-a438-41c8-a746-9f41fbe76901',
        'plain BACKGROUND_JOB',
        'plain CHANNEL_HANGUP_COMPLETE',
        'api[api] ok',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "top/in_ring_once_cancel_json": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled json',
        'json CHANNEL_CREATE',
        'json CHANNEL_PROGRESS',
        'json CHANNEL_HANGUP_COMPLETE',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "top/out_api_bgapi_errors": [
        'channel-data async/full',
        'api[api] ok',
        'api[api] err',
        'reply[bgapi] +OK Job-UUID: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
        'reply[frobnicate] -ERR command not found',
        'reply[sendmsg] +OK',
        'notice disconnect',
        'closed',
    ],
    "top/out_block_callcommand_hangup": [
        'channel-data async/full',
        'reply[sendmsg] +OK',
        'notice disconnect',
        'closed',
    ],
    "top/out_block_unwanted": [
        'channel-data async/full',
        *['reply[sendmsg] +OK'] * 3,
        'notice disconnect',
        'closed',
    ],
    "top/out_myevents_json": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[sendmsg] +OK',
        'json CHANNEL_EXECUTE',
        'json CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'json CHANNEL_EXECUTE',
        'json CHANNEL_HANGUP',
        'json CHANNEL_EXECUTE_COMPLETE',
        'json CHANNEL_UNPARK',
        'json CHANNEL_EXECUTE_COMPLETE',
        *['json CHANNEL_STATE'] * 2,
        'json CHANNEL_HANGUP_COMPLETE',
        'notice disconnect',
        'closed',
    ],
    "top/out_myevents_linger_plain": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[linger] +OK will linger',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_UNPARK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_HANGUP_COMPLETE',
        'notice linger',
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "top/out_sync_block_unwanted": [
        'channel-data static/full',
        *['reply[sendmsg] +OK'] * 2,
        'notice disconnect',
        'closed',
    ],
    "top/out_sync_pass": [
        'channel-data static/full',
        *['reply[sendmsg] +OK'] * 2,
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "top/out_warn_label": [
        'channel-data async/full',
        *['reply[sendmsg] +OK'] * 3,
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "more/in_acl_rude_rejection": [
        'rude-rejection',
        'notice None',
        'closed',
    ],
    "more/in_api_bgapi_responses_plain_xml_json": [
        'auth-request',
        'reply[auth] +OK accepted',
        *['api[api] ok'] * 5,
        'reply[event] +OK event listener enabled plain',
        'reply[bgapi] +OK Job-UUID: 4f885da4-d967-4ba2-b569-3716377e1a41',
        'plain BACKGROUND_JOB',
        'reply[bgapi] +OK Job-UUID: 81651c66-be7c-474d-96ca-90a41eb70496',
        'plain BACKGROUND_JOB',
        'reply[noevents] +OK no longer listening for events',
        'reply[event] +OK event listener enabled xml',
        'reply[bgapi] +OK Job-UUID: 3991d99a-cefb-439a-ba18-3915578191d7',
        'xml BACKGROUND_JOB',
        'reply[event] +OK event listener enabled json',
        'reply[bgapi] +OK Job-UUID: 2754a4c0-3c3b-4de9-8801-0480d27bbb44',
        'json BACKGROUND_JOB',
        'reply[event] +OK event listener enabled plain',
        'reply[sendevent] +OK d18b822f-b21b-4151-a136-bd5565c25c3b',
        'plain CUSTOM',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_auth_exit_pipelined": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_idle_no_auth_timeout": [
        'auth-request',
        'notice None',
        'closed',
    ],
    "more/in_json_park_bgapi_transfer": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled json',
        'json CHANNEL_CREATE',
        'json CHANNEL_PARK',
        'reply[bgapi] +OK Job-UUID: f0ad018f-474f-4d34-a1e3-12b3773b1143',
        'json BACKGROUND_JOB',
        'reply[bgapi] +OK Job-UUID: aaaaaaaa-bbbb-cccc-dddd-000000000001',
        'json BACKGROUND_JOB',
        'json CHANNEL_ANSWER',
        'json CHANNEL_HANGUP_COMPLETE',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_log_data": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[log] +OK log level info [6]',
        'api[api] ok',
        'log 5',
        'reply[nolog] +OK no longer logging',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_pipelined_and_crlf": [
        'auth-request',
        'reply[auth] +OK accepted',
        'api[api] ok',
        'api[api] err',
        *['api[api] ok'] * 3,
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_plain_ALL_one_call": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled plain',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_CREATE',
        'plain CHANNEL_CALLSTATE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_PARK',
        'api[api] ok',
        'plain CHANNEL_HANGUP',
        'plain API',
        'plain CHANNEL_UNPARK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_STATE',
        'plain CHANNEL_CALLSTATE',
        'plain CHANNEL_STATE',
        'plain CHANNEL_HANGUP_COMPLETE',
        'plain CHANNEL_DESTROY',
        'plain CHANNEL_STATE',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_plain_park_uuid_kill_call_rejected": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled plain',
        'plain CHANNEL_CREATE',
        'plain CHANNEL_PARK',
        'api[api] ok',
        'plain CHANNEL_HANGUP_COMPLETE',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_preauth_and_unknown_commands": [
        'auth-request',
        'reply[-] -ERR command not found',
        'reply[auth] +OK accepted',
        'reply[foobar] -ERR command not found',
        *['api[api] err'] * 2,
        'reply[bgapi] +OK Job-UUID: 5e074174-af41-4985-9aac-4387e91130a0',
        'reply[event] -ERR no keywords supplied',
        'reply[event] +OK event listener enabled plain',
        'reply[event] -ERR no keywords supplied',
        'reply[nixevent] +OK events nixed',
        'reply[noevents] +OK no longer listening for events',
        'reply[noevents] -ERR not listening for events',
        'reply[myevents] -ERR command not found',
        'reply[linger] -ERR not controlling a session',
        'reply[sendmsg] -ERR invalid session id []',
        'api[api] err',
        'reply[api] -ERR command not found',
        'reply[log] +OK log level 7 [7]',
        'reply[nolog] +OK no longer logging',
        'reply[filter] +OK filter added. [Unique-ID]=[00000000-0000-0000-0000-000000000000]',
        'reply[filter] +OK filter deleted. [Unique-ID][00000000-0000-0000-0000-000000000000]',
        'reply[divert_events] -ERR not controlling a session.',
        'reply[getvar] -ERR command not found',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_sendmsg_uuid_answer_playback_hangup": [
        'auth-request',
        'reply[auth] +OK accepted',
        'reply[event] +OK event listener enabled plain',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_PARK',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_ANSWER',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_HANGUP_COMPLETE',
        'reply[sendmsg] -ERR invalid session id [00000000-0000-0000-0000-000000000000]',
        'reply[exit] +OK bye',
        'notice None',
        'closed',
    ],
    "more/in_wrong_password": [
        'auth-request',
        'reply[auth] -ERR invalid',
        'notice None',
        'closed',
    ],
    "more/out_answer_playback_setvar_transfer": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[linger] +OK will linger 5 seconds',
        'reply[sendmsg] +OK',
        'plain CHANNEL_PARK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_PROGRESS_MEDIA',
        'plain CHANNEL_ANSWER',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['api[api] ok'] * 2,
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_UNPARK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_HANGUP_COMPLETE',
        'notice linger',
        'notice disconnect',
        'closed',
    ],
    "more/out_answered_myevents_json": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[linger] +OK will linger',
        'reply[sendmsg] +OK',
        'json CHANNEL_EXECUTE',
        'json CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'json CHANNEL_EXECUTE',
        'json CHANNEL_HANGUP',
        'json CHANNEL_EXECUTE_COMPLETE',
        'json CHANNEL_UNPARK',
        'json CHANNEL_EXECUTE_COMPLETE',
        *['json CHANNEL_STATE'] * 2,
        'json CHANNEL_HANGUP_COMPLETE',
        'notice linger',
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "more/out_client_closes_early": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'closed',
    ],
    "more/out_hangup_call_rejected": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[linger] +OK will linger',
        'reply[sendmsg] +OK',
        'plain CHANNEL_PARK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_UNPARK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_HANGUP_COMPLETE',
        'notice linger',
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "more/out_hangup_nolinger_user_busy": [
        'channel-data async/full',
        'reply[myevents] +OK Events Enabled',
        'reply[sendmsg] +OK',
        'plain CHANNEL_PARK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'plain CHANNEL_UNPARK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        *['plain CHANNEL_STATE'] * 2,
        'plain CHANNEL_HANGUP_COMPLETE',
        'notice disconnect',
        'closed',
    ],
    "more/out_sendmsg_body_filter_misc": [
        'channel-data async/full',
        'reply[getvar] hello world & more=stuff%/ü',
        'reply[getvar] -ERR command not found',
        'reply[resume] +OK',
        'reply[myevents] +OK Events Enabled',
        'reply[filter] +OK filter added. [Event-Name]=[CHANNEL_EXECUTE_COMPLETE]',
        'reply[linger] +OK will linger',
        'reply[foo] -ERR command not found',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'api[api] ok',
        'reply[sendmsg] +OK',
        *['plain CHANNEL_EXECUTE_COMPLETE'] * 2,
        'notice linger',
        'reply[exit] +OK bye',
        'notice disconnect',
        'closed',
    ],
    "more/out_sync_socket_not_full": [
        'channel-data static/single-channel',
        'reply[myevents] +OK Events Enabled',
        'reply[api] -ERR command not found',
        'reply[sendmsg] +OK',
        'plain CHANNEL_PROGRESS_MEDIA',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'reply[sendmsg] +OK',
        'plain CHANNEL_EXECUTE',
        'plain CHANNEL_HANGUP',
        'plain CHANNEL_EXECUTE_COMPLETE',
        'notice disconnect',
        'closed',
    ],
}

# Commands our Connection refuses to send, that the recorded client sent anyway, and why.
REFUSED: dict[str, list[esl.Command]] = {
    # a sendmsg after FreeSWITCH's disconnect notice goes nowhere
    "top/out_api_bgapi_errors": [esl.execute("hangup", "NORMAL_CLEARING")],
    # FreeSWITCH ignores what follows exit in the same write
    "more/in_auth_exit_pipelined": [esl.Api("version")],
    # api before auth (FreeSWITCH answers -ERR command not found, a reply we still accept)
    "more/in_preauth_and_unknown_commands": [esl.Api("status")],
}

# Captures up to this size, and the synchronous-pass call (channel data + the whole
# decision flow), are tested with every 2-way split; byte-by-byte feeding covers the rest.
SMALL = 2500
ALL_SPLITS = [k for k in ALL_CAPTURES if len(load(k).fs) <= SMALL] + ["top/out_sync_pass"]


def _sigs(events: list[esl.Event]) -> list[str]:
    return [signature(e) for e in events]


def test_every_capture_is_covered() -> None:
    assert sorted(EXPECTED) == sorted(ALL_CAPTURES)
    assert len(ALL_CAPTURES) == 31


@pytest.mark.parametrize("key", ALL_CAPTURES)
def test_capture_parses_exactly(key: str) -> None:
    result = replay(load(key))
    assert _sigs(result.events) == EXPECTED[key]
    assert result.refused == REFUSED.get(key, [])
    assert result.conn.state is esl.State.CLOSED
    # every disconnect notice that says goodbye carries the 67-byte body
    for event in result.events:
        if isinstance(event, esl.DisconnectNotice) and event.disposition != "linger":
            assert event.body.encode() == esl.GOODBYE
            assert len(esl.GOODBYE) == 67


@pytest.mark.parametrize("key", ALL_CAPTURES)
def test_byte_by_byte_gives_the_same_events(key: str) -> None:
    capture = load(key)
    whole = replay(capture).events
    assert replay(capture, range(1, len(capture.fs))).events == whole


@pytest.mark.parametrize("key", ALL_SPLITS)
def test_every_two_way_split_gives_the_same_events(key: str) -> None:
    capture = load(key)
    whole = replay(capture).events
    for cut in range(1, len(capture.fs)):
        assert replay(capture, [cut]).events == whole, cut


@pytest.mark.parametrize("key", [k for k in ALL_CAPTURES if len(load(k).fs) > 8 * 1024])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_multi_splits_of_large_captures(key: str, data: st.DataObject) -> None:
    capture = load(key)
    cuts = data.draw(st.lists(st.integers(1, len(capture.fs) - 1), max_size=60))
    assert replay(capture, cuts).events == replay(capture).events


# ---------------------------------------------------------------------------------------
# Key values


def _events(key: str) -> list[esl.Event]:
    return replay(load(key)).events


def _named(key: str, name: str) -> list[esl.EslEvent]:
    return [e for e in _events(key) if isinstance(e, esl.EslEvent) and e.name == name]


def test_ring_once_cancel_outcome() -> None:
    (done,) = _named("top/in_ring_once_cancel_json", "CHANNEL_HANGUP_COMPLETE")
    h = done.headers
    assert h["variable_sip_hangup_disposition"] == "recv_cancel"
    assert h["Hangup-Cause"] == "ORIGINATOR_CANCEL"
    assert h["variable_answer_uepoch"] == "0"
    ring_s = (int(h["variable_end_uepoch"]) - int(h["variable_progress_uepoch"])) / 1e6
    assert 1.1 < ring_s < 1.35
    assert h["Caller-Caller-ID-Number"] == "17012345678"
    assert h["variable_DP_MATCH"].startswith("ARRAY::")


def test_channel_data_is_decoded() -> None:
    events = _events("top/out_sync_pass")
    data = events[0]
    assert isinstance(data, esl.ChannelData)
    h = data.headers
    assert data.unique_id == "10571825-f1d5-4550-a75e-3015a9e05d16"
    assert (data.socket_mode, data.control, data.reply_text) == ("static", "full", "+OK\n")
    assert h["Reply-Text"] == "+OK\n" and h["Content-Type"] == "command/reply"
    assert h["variable_sip_P-Asserted-Identity"] == "02088886666"
    assert h["variable_fsp_trunk"] == "ent-1"
    assert h["Channel-Name"] == "sofia/trunks/02088886666@127.0.0.1:5602"
    assert h["variable_sip_full_from"] == (
        '"02088886666" <sip:02088886666@127.0.0.1:5602>;tag=927SIPpTag001'
    )
    assert h["variable_DP_MATCH"] == "ARRAY::813900001111|:13900001111"
    assert h["variable_switch_r_sdp"].startswith("v=0\r\no=user1 ")
    # the raw frame keeps the wire form, and the reply headers come last
    assert data.frame.get("Reply-Text") == "%2BOK%0A"
    assert [n for n, _ in data.frame.headers[-4:]] == [
        "Content-Type", "Reply-Text", "Socket-Mode", "Control",
    ]  # fmt: skip
    notice = events[-2]
    assert isinstance(notice, esl.DisconnectNotice)
    assert notice.controlled_session_uuid == data.unique_id
    assert notice.disposition == "disconnect"


def test_bgapi_job_uuid_correlates() -> None:
    for key, job in [
        ("top/in_events_json_park_kill", "12345678-1234-1234-1234-123456789abc"),
        ("more/in_json_park_bgapi_transfer", "aaaaaaaa-bbbb-cccc-dddd-000000000001"),
        ("top/out_api_bgapi_errors", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
    ]:
        events = _events(key)
        replies = [e for e in events if isinstance(e, esl.CommandReply) and e.job_uuid == job]
        assert len(replies) == 1, key
        assert replies[0].command == esl.BgApi(replies[0].command.command, job)  # type: ignore[union-attr]
        assert replies[0].reply_text == f"+OK Job-UUID: {job}"
        jobs = [e for e in events if isinstance(e, esl.EslEvent) and e.name == "BACKGROUND_JOB"]
        if key != "top/out_api_bgapi_errors":  # that call ended before the job's event
            assert job in [e.headers["Job-UUID"] for e in jobs]


def test_api_responses_correlate_and_flag_errors() -> None:
    events = _events("top/out_api_bgapi_errors")
    ok, err = [e for e in events if isinstance(e, esl.ApiResponse)]
    assert ok.ok and ok.body == "02088886666"
    assert isinstance(ok.command, esl.Api) and ok.command.command.endswith("sip_from_user")
    assert not err.ok and err.body == "-ERR No such channel!\n"


def test_rude_rejection_and_log_data() -> None:
    rude = _events("more/in_acl_rude_rejection")[0]
    assert isinstance(rude, esl.RudeRejection) and rude.text == "Access Denied, go away.\n"
    (log,) = [e for e in _events("more/in_log_data") if isinstance(e, esl.LogData)]
    assert log.level == "5"
    assert log.body.endswith("[NOTICE] mod_commands.c:7200 hello from esl %20 & stuff\n")
    assert log.frame.get("User-Data") == ""


def test_custom_event_with_two_content_lengths() -> None:
    (custom,) = _named("more/in_api_bgapi_responses_plain_xml_json", "CUSTOM")
    lengths = [v for n, v in custom.header_list if n == "Content-Length"]
    assert lengths == ["16", "16"]
    assert custom.body == "hello body\nline2"
    assert custom.headers["X-Lab-Header"] == "a b&c"
    assert custom.headers["Event-Subclass"] == "lab::test"
    assert custom.headers["Content-Type"] == "text/plain"


def test_background_job_in_three_formats_agree() -> None:
    jobs = _named("more/in_api_bgapi_responses_plain_xml_json", "BACKGROUND_JOB")
    assert [j.format for j in jobs] == ["plain", "plain", "xml", "json"]
    xml, js = jobs[2], jobs[3]
    assert xml.body == js.body and js.body is not None and js.body.startswith("FreeSWITCH Version")
    assert list(xml.headers) == list(js.headers)  # same names, same order
    assert xml.headers["FreeSWITCH-IPv6"] == js.headers["FreeSWITCH-IPv6"] == "fd00::2"
    assert jobs[0].body is not None and jobs[0].body.startswith("UP 0 years")


def test_plain_and_json_render_arrays_alike() -> None:
    (plain,) = _named("top/in_events_plain_park_transfer", "CHANNEL_PARK")
    (js,) = _named("top/in_events_json_park_kill", "CHANNEL_PARK")
    assert plain.headers["variable_DP_MATCH"] == js.headers["variable_DP_MATCH"]
    assert js.headers["variable_DP_MATCH"] == "ARRAY::9100|:100"
    gmt = plain.headers["Event-Date-GMT"]
    assert gmt.endswith(" GMT") and "%" not in gmt


def test_event_uuid_comes_back_and_linger_notice() -> None:
    events = _events("top/out_myevents_linger_plain")
    execs = [e for e in events if isinstance(e, esl.EslEvent) and e.name == "CHANNEL_EXECUTE"]
    assert execs[0].headers["Application-UUID"] == "11111111-2222-3333-4444-555555555555"
    notices = [e for e in events if isinstance(e, esl.DisconnectNotice)]
    (linger,) = [e for e in notices if e.disposition == "linger"]
    assert linger.linger_time == "-1" and linger.body == ""
    assert linger.frame.get("Channel-Name") == "sofia/trunks/02088886666@127.0.0.1:5078"


def test_getvar_reply_text_is_raw_utf8() -> None:
    reply = _events("more/out_sendmsg_body_filter_misc")[1]
    assert isinstance(reply, esl.CommandReply)
    assert reply.reply_text == "hello world & more=stuff%/ü"
    assert reply.ok is False  # a value, not +OK: the caller reads reply_text


# ---------------------------------------------------------------------------------------
# Re-encoding with the switch-side encoders reproduces the captures byte for byte


def _without_final_length(
    pairs: tuple[tuple[str, str], ...], body: str | None
) -> list[tuple[str, str]]:
    out = list(pairs)
    if body:
        index = max(i for i, (n, _) in enumerate(out) if n == "Content-Length")
        del out[index]
    return out


def _reencode(event: esl.Event) -> bytes:
    match event:
        case esl.AuthRequest():
            return esl.encode_auth_request()
        case esl.ChannelData():
            pairs = [(n, esl.fs_url_decode(v)) for n, v in event.frame.headers[:-4]]
            return esl.encode_channel_data(pairs, event.socket_mode or "", event.control or "")
        case esl.CommandReply():
            return esl.encode_command_reply(event.reply_text, extra=event.frame.headers[2:])
        case esl.ApiResponse():
            return esl.encode_api_response(event.frame.body)
        case esl.EslEvent(format="plain"):
            pairs = _without_final_length(event.header_list, event.body)
            return esl.encode_event_plain(pairs, event.body)
        case esl.EslEvent(format="json"):
            pairs = _without_final_length(event.header_list, event.body)
            return esl.encode_event_json(pairs, event.body)
        case esl.DisconnectNotice():
            return esl.encode_disconnect_notice(
                event.controlled_session_uuid,
                event.disposition or "disconnect",
                event.linger_time,
                event.frame.get("Channel-Name"),
            )
        case esl.RudeRejection():
            return esl.encode_rude_rejection(event.text)
        case esl.LogData():
            f = event.frame
            return esl.encode_log_data(
                event.body,
                level=f.get("Log-Level") or "",
                text_channel=f.get("Text-Channel") or "",
                log_file=f.get("Log-File") or "",
                log_func=f.get("Log-Func") or "",
                log_line=f.get("Log-Line") or "",
                user_data=f.get("User-Data") or "",
            )
        case esl.ConnectionClosed():
            return b""
    # no XML encoder: the frame itself, as received
    assert not isinstance(event, esl.ConnectionClosed)
    head = "".join(f"{n}: {v}\n" for n, v in event.frame.headers) + "\n"
    return head.encode() + event.frame.body


@pytest.mark.parametrize("key", ALL_CAPTURES)
def test_switch_encoders_reproduce_the_capture(key: str) -> None:
    capture: Capture = load(key)
    events = replay(capture).events
    assert b"".join(_reencode(e) for e in events) == capture.fs

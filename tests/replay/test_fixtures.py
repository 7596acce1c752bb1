"""Every shared SIP capture and SIPp log reads, and shows what its MANIFEST/README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from fs_plugin.replay import EndedBy, TraceCall, TraceResult, read_trace


def _sip(shared_dir: Path, name: str) -> Path:
    return shared_dir / "fixtures" / "sip" / name


def _read(path: Path) -> tuple[list[TraceCall], TraceResult]:
    with read_trace(path) as result:
        calls = list(result)
    return calls, result


def _by_id(calls: list[TraceCall]) -> dict[str, TraceCall]:
    return {c.call_id: c for c in calls}


def _captures(shared: Path) -> list[Path]:
    return sorted(p for p in (shared / "fixtures" / "sip").iterdir() if p.suffix != ".md")


def test_every_capture_reads(shared_dir: Path) -> None:
    paths = _captures(shared_dir)
    assert len(paths) == 20
    for path in paths:
        calls, result = _read(path)
        assert result.stats.frames > 0, path.name
        assert all(c.call_id for c in calls), path.name


def test_aaa_four_dialogs_short_ring_cancels(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "wireshark_aaa_register_invite_cancel.pcap"))
    assert len(calls) == 4
    assert result.stats.methods["INVITE"] == 11
    assert result.stats.methods["CANCEL"] == 11
    assert result.stats.methods["REGISTER"] == 18
    assert {c.from_user for c in calls} == {"816666", "voi18062", "35104723"}
    assert "0097239287044" in {c.callee for c in calls}
    assert {c.final_status for c in calls} <= {407, 403, 480, 408}
    assert any(c.ended_by is EndedBy.CALLER and c.caller_cancelled for c in calls)
    assert all(c.pai is None and c.diversion is None for c in calls)
    assert all(c.user_agent == "Nero SIPPS IP Phone Version 2.0.51.16" for c in calls)
    # Whitespace keep-alives on 5060 are expected traffic, not skips.
    assert result.skip_counts.get("not_sip", 0) == 0


def test_tcp_segmented_37_calls_with_pai(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "heplify_tcp_segmented_37calls_pai.pcap"))
    assert len(calls) == 37
    assert not result.skipped
    assert all(c.transport == "tcp" and c.dst_port == 6060 for c in calls)
    # The capture cuts into a busy trunk: the 486 and one of the two 487s answer
    # INVITEs sent before it started, so per Call-ID the 37 dialogs end like this.
    finals = [c.final_status for c in calls]
    assert finals.count(200) == 32
    assert finals.count(487) == 1
    assert finals.count(403) == 1
    assert finals.count(None) == 3
    assert result.stats.methods["CANCEL"] == 2
    cancelled = [c for c in calls if c.caller_cancelled]
    assert len(cancelled) == 1
    assert all(c.ring_time_s is not None and c.ring_time_s >= 0 for c in cancelled)
    assert "" in {c.from_user for c in calls}  # the one empty From user
    assert "79263776264" in {c.from_user for c in calls}
    assert {"79325324632", "402446"} <= {c.pai for c in calls}
    assert {c.callee for c in calls} >= {"699800", "699818", "699820"}


def test_ws_and_udp_legs(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "heplify_ws_udp_e164_us.pcap"))
    assert len(calls) == 2
    assert {c.transport for c in calls} == {"ws", "udp"}
    assert {c.callee for c in calls} == {"+12263382742", "9998112263382742"}
    udp = next(c for c in calls if c.transport == "udp")
    assert udp.from_user == "+12675941249"
    assert udp.final_status == 200
    assert result.stats.methods["INVITE"] == 5


def test_ipv6_call_found(shared_dir: Path) -> None:
    calls, _ = _read(_sip(shared_dir, "heplify_ipv6_udp_call.pcap"))
    (call,) = calls
    assert (call.from_user, call.callee) == ("9876", "4321")
    assert call.src_ip == "fe80::21a:a0ff:fe07:32e0"
    # The capture's timestamps jump by years between packets, so the dialog is
    # handed out on idle timeout before its responses: the grouping stays bounded.
    assert call.final_status is None


def test_sctp_fragmented_invite_pai_tel(shared_dir: Path) -> None:
    calls, _ = _read(_sip(shared_dir, "heplify_sctp_403_pai_tel.pcap"))
    (call,) = calls
    assert (call.from_user, call.callee, call.final_status) == ("9171969136", "9275890000", 403)
    assert call.pai == "9171969136"
    assert call.transport == "sctp"
    assert call.user_agent is None  # OpenSIPS names itself only in its responses
    facts = call.to_facts()
    assert facts.pai == "9171969136"
    assert facts.trunk_hint is None


def test_ipip_raw_ip_intl_probe(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "heplify_ipip_rawip_intl_403.pcap"))
    (call,) = calls
    assert (call.from_user, call.callee, call.user_agent) == (
        "18121862248",
        "+3908351673002",
        "SonicSIP",
    )
    assert result.stats.methods["REGISTER"] == 3
    # The 403 in this capture carries another Call-ID (and From user): it is not this call's.
    assert call.final_status is None


def test_tcp_retransmissions_deduplicated(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "heplify_sll_tcp_retrans_register.pcap"))
    assert calls == []
    assert result.stats.methods["REGISTER"] == 4
    assert result.stats.methods["response"] == 4


def test_fax_anonymous_and_reinvites(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "heplify_fax_t38_anonymous_488.pcap"))
    assert len(calls) == 2
    assert result.stats.methods["INVITE"] == 16
    assert {c.from_user for c in calls} == {"unavailable"}
    # 488 answers the T.38 re-INVITEs, not the initial INVITEs.
    assert all(c.final_status == 200 for c in calls)
    assert not result.skipped


def test_ipv6_fragments_prack_update(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "sngrep_ipv6frag_prack_update_pai.pcap"))
    (call,) = calls
    assert (call.from_user, call.pai, call.callee) == ("sipp", "08019200026", "08019200028")
    assert call.final_status == 200
    assert call.ringing_time is not None
    assert call.end_method == "BYE"
    assert result.stats.methods["PRACK"] >= 1
    assert result.stats.methods["UPDATE"] >= 1


def test_ipip_tcp_call(shared_dir: Path) -> None:
    (call,), _ = _read(_sip(shared_dir, "sngrep_ipip_tcp_call.pcap"))
    assert call.from_user == "1bdaa608131517540000"
    assert (call.final_status, call.end_method, call.transport) == (200, "BYE", "tcp")


def test_cloudshark_empty_from_user(shared_dir: Path) -> None:
    calls, _ = _read(_sip(shared_dir, "suricata_cloudshark_sip_s0.pcap"))
    assert len(calls) == 2
    assert {c.from_user for c in calls} == {"", "5514540002"}
    assert {c.callee for c in calls} == {"francisco"}
    assert all(c.src_ip == "200.57.7.195" for c in calls)


def test_compact_form_invite(shared_dir: Path) -> None:
    (call,), _ = _read(_sip(shared_dir, "suricata_compact_form_invite.pcap"))
    assert (call.from_user, call.callee) == ("816666", "97239287044")
    assert call.from_display == '\\"arik\\"'  # an unquoted token with backslashes


def test_null_loopback_tcp_64k_body(shared_dir: Path) -> None:
    (call,), result = _read(_sip(shared_dir, "suricata_null_tcp_64k_body.pcap"))
    assert (call.from_user, call.callee, call.src_ip) == ("alice", "bob", "127.0.0.1")
    assert not result.skipped


def test_http_on_5060_is_named_not_sip(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "ndpi_http_on_port_5060_negative.pcapng"))
    assert calls == []
    assert result.stats.messages == 0
    assert result.skip_counts["not_sip"] >= 1
    prefix = "ndpi_http_on_port_5060_negative.pcapng#"
    assert all(s.where.startswith(prefix) for s in result.skipped)


def test_invalid_content_length_is_named(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "zeek_invalid_content_length.pcap"))
    assert calls == []
    reasons = [(s.reason, s.where, s.detail) for s in result.skipped]
    assert ("bad_content_length", "zeek_invalid_content_length.pcap#1", "bad") in reasons


def test_junk_and_headerless_register_are_named(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "zeek_junk_before_register.pcap"))
    assert calls == []
    assert [s.reason for s in result.skipped] == ["not_sip", "missing_call_id"]


@pytest.mark.parametrize(
    ("name", "registers"),
    [("ndpi_register_huawei.pcapng", 4), ("suricata_tcp_register_kamailio.pcap", 1)],
)
def test_register_only_captures(shared_dir: Path, name: str, registers: int) -> None:
    calls, result = _read(_sip(shared_dir, name))
    assert calls == []
    assert result.stats.methods["REGISTER"] == registers


def test_raw_ipv4_long_via(shared_dir: Path) -> None:
    calls, result = _read(_sip(shared_dir, "zeek_rawip4_long_via.pcap"))
    assert calls == []
    assert result.stats.methods["OPTIONS"] == 1
    assert not result.skipped


def test_hep3_encapsulated(shared_dir: Path) -> None:
    (call,), result = _read(_sip(shared_dir, "hepwireshark_hep3_encapsulated.pcap"))
    assert call.transport == "hep"
    assert call.user_agent == "HEPGEN-UAC"
    # Addresses and time come from the HEP header, not the UDP packet that carried it.
    assert (call.src_ip, call.dst_ip) == ("192.168.1.1", "192.168.1.2")
    assert call.final_status == 407
    assert result.stats.methods["OPTIONS"] == 1
    assert not result.skipped


# -- SIPp text logs beside the ESL captures ---------------------------------------------

_FINALS = {
    "in_events_json_park_kill.sip.txt": 603,
    "in_events_plain_park_transfer.sip.txt": 607,
    "in_ring_once_cancel_json.sip.txt": 487,
    "out_api_bgapi_errors.sip.txt": 502,
    "out_block_callcommand_hangup.sip.txt": 603,
    "out_block_unwanted.sip.txt": 607,
    "out_myevents_json.sip.txt": 486,
    "out_myevents_linger_plain.sip.txt": 603,
    "out_sync_block_unwanted.sip.txt": 607,
    "out_sync_pass.sip.txt": 200,
    "out_warn_label.sip.txt": 200,
    "more/in_json_park_bgapi_transfer.sip.log": 200,
    "more/in_plain_ALL_one_call.sip.log": 480,
    "more/in_plain_park_uuid_kill_call_rejected.sip.log": 603,
    "more/in_sendmsg_uuid_answer_playback_hangup.sip.log": 200,
    "more/out_answer_playback_setvar_transfer.sip.log": 200,
    "more/out_answered_myevents_json.sip.log": 200,
    "more/out_client_closes_early.sip.log": 480,
    "more/out_hangup_call_rejected.sip.log": 603,
    "more/out_hangup_nolinger_user_busy.sip.log": 486,
    "more/out_sendmsg_body_filter_misc.sip.log": 480,
    "more/out_sync_socket_not_full.sip.log": 603,
}


@pytest.mark.parametrize(("name", "final"), sorted(_FINALS.items()))
def test_sipp_logs_final_codes(shared_dir: Path, name: str, final: int) -> None:
    calls, result = _read(shared_dir / "fixtures" / "esl" / name)
    assert result.format == "text"
    (call,) = calls
    assert call.final_status == final
    assert not result.skipped
    assert call.invite_time > 1_700_000_000
    assert call.src_ip == "127.0.0.1"  # from the top Via: a log has no packet addresses
    assert call.where.endswith(":4")  # the INVITE start line, after the SIPp markers


def test_all_sipp_logs_are_covered(shared_dir: Path) -> None:
    esl = shared_dir / "fixtures" / "esl"
    found = {str(p.relative_to(esl)) for p in esl.glob("*.sip.txt")}
    found |= {str(p.relative_to(esl)) for p in esl.glob("more/*.sip.log")}
    assert found == set(_FINALS)


def test_ring_once_log_timing(shared_dir: Path) -> None:
    (call,), _ = _read(shared_dir / "fixtures" / "esl" / "in_ring_once_cancel_json.sip.txt")
    assert (call.from_user, call.pai, call.callee) == ("17012345678", "17012345678", "613900002222")
    assert call.caller_cancelled and call.ended_by is EndedBy.CALLER
    assert call.ring_time_s == pytest.approx(1.2035, abs=0.001)
    assert not call.answered


def test_answered_log_who_hung_up(shared_dir: Path) -> None:
    esl = shared_dir / "fixtures" / "esl"
    (by_switch,), _ = _read(esl / "more" / "out_answered_myevents_json.sip.log")
    assert by_switch.end_method == "BYE" and by_switch.ended_by is EndedBy.CALLEE
    assert by_switch.duration_s is not None and by_switch.duration_s > 0
    (by_caller,), _ = _read(esl / "out_sync_pass.sip.txt")
    assert by_caller.ended_by is EndedBy.CALLER
    facts = by_switch.to_facts()
    assert (facts.from_user, facts.destination, facts.caller_id_name) == (
        "02088886666",
        "713800138003",
        "Lab Caller",
    )
    assert facts.user_agent == "SIPp-lab"
    assert facts.variables["sip_req_user"] == "713800138003"

"""The lab switch's SIP front, driven by a hand-written SIP caller (no SIPp needed):
what the caller is answered, what the controller saw, what the event socket reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lab_sip import Caller, SipLab, in_dialog, invite, make_lab

from fs_plugin.lab.sip_front import SipListener
from fs_plugin.replay.sip import SipMessage


@pytest.fixture
def policy_dir(repo_dir: Path) -> Path:
    return repo_dir / "policies"


@pytest.fixture
async def lab(policy_dir: Path) -> AsyncIterator[SipLab]:
    lab = await make_lab(policy_dir, answer_after_s=0.2, t1_s=0.05, ack_timeout_s=1.0)
    try:
        yield lab
    finally:
        await lab.stop()


async def _call(
    caller: Caller, lab: SipLab, frm: str, to: str, *, pai: str | None = None,
    trunk: str | None = "ent-1",
) -> tuple[str, bytes, list[int], SipMessage]:
    call_id, request = invite(frm, to, port=lab.front.port, local_port=caller.local_port,
                              transport=caller.transport, pai=pai, trunk=trunk)
    caller.send(request)
    provisional, final = await caller.until_final()
    return call_id, request, provisional, final


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_legitimate_call_rings_is_answered_and_ends_with_bye(
    lab: SipLab, transport: str
) -> None:
    caller = await (Caller.udp if transport == "udp" else Caller.tcp)(lab.front.port)
    try:
        call_id, request, provisional, final = await _call(
            caller, lab, "02088881234", "13900001111", pai="02088881234"
        )
        assert provisional == [100, 180]
        assert final.status == 200
        assert final.header("content-type") == "application/sdp"
        assert ";tag=" in (final.header("to") or "")
        caller.send(in_dialog("ACK", request, final, 1))
        caller.send(in_dialog("BYE", request, final, 2))
        bye_ok = await caller.recv()
        assert (bye_ok.status, bye_ok.cseq) == (200, (2, "BYE"))
        assert await lab.front.wait_records(1, 5.0)
        await lab.wait_outcomes(1)
    finally:
        await caller.close()
    record = lab.front.records[0]
    assert (record.call_id, record.transport, record.sip_status) == (call_id, transport, 200)
    assert record.answered and record.verdict == "pass" and record.disposition == "recv_bye"
    facts = lab.records[0].facts
    # What sofia would have put on the channel, as the controller read it.
    assert (facts.from_user, facts.destination, facts.pai) == (
        "02088881234", "13900001111", "02088881234")
    assert (facts.call_id, facts.trunk_hint, facts.network_ip) == (call_id, "ent-1", "127.0.0.1")
    assert facts.variables.get("variable_sip_via_protocol") == transport
    outcome = lab.outcomes[0]
    assert outcome.answered and outcome.disposition == "recv_bye"
    assert outcome.hangup_cause == "NORMAL_CLEARING"


async def test_spoofed_caller_gets_607_with_sofias_reason(lab: SipLab) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request, provisional, final = await _call(
            caller, lab, "02155551234", "13900001111", pai="02155551234"
        )
        assert provisional == [100]
        assert (final.status, final.reason) == (607, "Unwanted")
        assert final.header("reason") == 'SIP;cause=819;text="UNWANTED"'
        caller.send(in_dialog("ACK", request, final, 1))
        await lab.wait_outcomes(1)
    finally:
        await caller.close()
    assert lab.records[0].decision.rule == "cid.not_allowed"
    outcome = lab.outcomes[0]
    assert (outcome.hangup_cause, outcome.disposition, outcome.answered) == (
        "UNWANTED", "send_refuse", False)


async def test_fake_plus86_on_international_trunk_gets_603_with_q850_reason(lab: SipLab) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request, _prov, final = await _call(
            caller, lab, "+8613812345678", "13900001111", trunk="intl-gw"
        )
        caller.send(in_dialog("ACK", request, final, 1))
    finally:
        await caller.close()
    assert (final.status, final.reason) == (603, "Decline")
    assert final.header("reason") == 'Q.850;cause=21;text="CALL_REJECTED"'
    assert lab.records[0].decision.rule == "cid.fake_plus86"


async def test_cancel_while_ringing_gives_200_and_487_and_a_ring_once_outcome(
    policy_dir: Path,
) -> None:
    lab = await make_lab(policy_dir, answer_after_s=5.0, ack_timeout_s=1.0)
    caller = await Caller.udp(lab.front.port)
    try:
        call_id, request = invite("+37322123456", "13900002222", port=lab.front.port,
                                  local_port=caller.local_port, trunk="intl-gw")
        caller.send(request)
        assert (await caller.recv()).status == 100
        ringing = await caller.recv()
        assert ringing.status == 180
        caller.send(in_dialog("CANCEL", request, ringing, 1))
        replies = {(m.status, m.cseq) for m in (await caller.recv(), await caller.recv())}
        assert replies == {(200, (1, "CANCEL")), (487, (1, "INVITE"))}
        caller.send(in_dialog("ACK", request, ringing, 1))
        await lab.wait_outcomes(1)
    finally:
        await caller.close()
        await lab.stop()
    record = lab.front.records[0]
    assert (record.call_id, record.sip_status, record.cancelled) == (call_id, 487, True)
    outcome = lab.outcomes[0]
    assert outcome.caller_cancelled and outcome.hangup_cause == "ORIGINATOR_CANCEL"
    assert outcome.ring_time_s is not None and 0 <= outcome.ring_time_s < 5


async def test_retransmitted_invite_is_answered_again_not_screened_again(lab: SipLab) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request, _prov, final = await _call(caller, lab, "abc", "13900001111")
        assert final.status == 607
        caller.send(request)  # the caller did not hear us: same INVITE again
        again = await caller.recv()
        assert (again.status, again.header("to")) == (
            607, final.header("to"))
        caller.send(in_dialog("ACK", request, final, 1))
        assert await lab.front.wait_records(1, 5.0)
    finally:
        await caller.close()
    assert len(lab.records) == 1 and lab.front.stats["invites"] == 1


async def test_final_response_is_retransmitted_over_udp_until_ack(lab: SipLab) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request, _prov, final = await _call(caller, lab, "abc", "13900001111")
        repeat = await caller.recv(1.0)  # no ACK yet: T1 (50 ms here) later it comes again
        assert repeat.status == 607
        caller.send(in_dialog("ACK", request, final, 1))
        assert await lab.front.wait_records(1, 5.0)
        while not caller.inbox.empty():
            caller.inbox.get_nowait()
        with pytest.raises(TimeoutError):
            await caller.recv(0.3)  # ACKed: silence
    finally:
        await caller.close()


async def test_trunk_comes_from_the_listening_port_unless_the_header_names_one(
    policy_dir: Path,
) -> None:
    lab = await make_lab(policy_dir, listeners=(SipListener(), SipListener(trunk="intl-gw")),
                         answer_after_s=0.1, ack_timeout_s=1.0)
    intl_port = lab.front.bound[1][0]
    caller = await Caller.udp(intl_port)
    try:
        for trunk, expected in ((None, 603), ("ent-1", 607)):
            call_id, request = invite("+8613812345678", "13900001111", port=intl_port,
                                      local_port=caller.local_port, trunk=trunk)
            caller.send(request)
            _prov, final = await caller.until_final()
            caller.send(in_dialog("ACK", request, final, 1))
            assert final.status == expected, (trunk, call_id)
    finally:
        await caller.close()
        await lab.stop()
    assert [r.facts.trunk_hint for r in lab.records] == ["intl-gw", "ent-1"]
    assert lab.front.bound[1][1] == "intl-gw" and lab.front.bound[0][1] == "ent-1"


@pytest.mark.parametrize(("trunk", "status"), [("ent-1", 200), ("mkt-1", 603)])
async def test_controller_down_applies_the_trunks_on_error(
    policy_dir: Path, trunk: str, status: int
) -> None:
    lab = await make_lab(policy_dir, controller=False, answer_after_s=0.05, ack_timeout_s=1.0)
    caller = await Caller.udp(lab.front.port)
    try:
        _cid, request = invite("02088881234", "13900001111", port=lab.front.port,
                               local_port=caller.local_port, trunk=trunk)
        caller.send(request)
        _prov, final = await caller.until_final()
        caller.send(in_dialog("ACK", request, final, 1))
        if final.status == 200:
            caller.send(in_dialog("BYE", request, final, 2))
        assert await lab.front.wait_records(1, 5.0)
    finally:
        await caller.close()
        await lab.stop()
    assert final.status == status
    record = lab.front.records[0]
    assert record.verdict == "fallback" and record.result is not None
    assert record.result.fallback == "refused"


async def test_bad_requests_are_refused_or_dropped_and_the_front_keeps_working(
    lab: SipLab,
) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        caller.send(b"\x00\x01garbage that is not SIP\r\n\r\n")
        caller.send(b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9"
                    b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1@127.0.0.1>\r\n\r\n")
        no_call_id = await caller.recv()
        assert no_call_id.status == 400
        caller.send(b"BYE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9b\r\n"
                    b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@127.0.0.1>;tag=x\r\n"
                    b"Call-ID: nobody\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
        assert (await caller.recv()).status == 481
        caller.send(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9o"
                    b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
                    b"Call-ID: ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        assert (await caller.recv()).status == 200
        _cid, request, _prov, final = await _call(caller, lab, "abc", "13900001111")
        assert final.status == 607
        caller.send(in_dialog("ACK", request, final, 1))
    finally:
        await caller.close()
    assert lab.front.stats["malformed"] == 2


async def test_too_many_calls_in_progress_get_503(policy_dir: Path) -> None:
    lab = await make_lab(policy_dir, max_calls=1, answer_after_s=5.0, ack_timeout_s=1.0)
    caller = await Caller.udp(lab.front.port)
    try:
        _first, request = invite("02088881234", "13900001111", port=lab.front.port,
                                 local_port=caller.local_port)
        caller.send(request)
        assert [(await caller.recv()).status, (await caller.recv()).status] == [100, 180]
        _second, other = invite("02088881234", "13900001112", port=lab.front.port,
                                local_port=caller.local_port)
        caller.send(other)
        assert (await caller.recv()).status == 503
    finally:
        await caller.close()
        await lab.stop()
    assert lab.front.stats["refused_busy"] == 1
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("content_length", "body"),
    [(b"50", b"v=0\r\n"), (b"abc", b""), (b"-1", b"")],
    ids=["body-past-the-datagram", "not-a-number", "negative"],
)
async def test_udp_request_with_bad_body_framing_gets_400(
    lab: SipLab, content_length: bytes, body: bytes
) -> None:
    caller = await Caller.udp(lab.front.port)
    try:
        caller.send(b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9c"
                    b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1@127.0.0.1>\r\nCall-ID: framing\r\n"
                    b"CSeq: 7 INVITE\r\nContent-Length: " + content_length + b"\r\n\r\n" + body)
        refused = await caller.recv()
        assert (refused.status, refused.call_id, refused.cseq) == (400, "framing", (7, "INVITE"))
        # Not a call: nothing was screened, and the front still takes calls.
        _cid, request, _prov, final = await _call(caller, lab, "abc", "13900001111")
        assert final.status == 607
        caller.send(in_dialog("ACK", request, final, 1))
    finally:
        await caller.close()
    assert lab.front.stats["malformed"] == 1 and lab.front.stats["invites"] == 1

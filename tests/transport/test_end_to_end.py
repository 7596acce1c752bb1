"""The demo's calls end to end: lab switch → TCP → real controller → verdict on the wire."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fsp_rig import Rig

from fs_plugin.lab.calls import LabCall, load_calls


async def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_demo_calls_meet_their_expectations(rig: Rig, repo_dir: Path) -> None:
    calls = load_calls(repo_dir / "lab/calls/demo.yaml")
    results = await rig.switch.place_all(calls, concurrency=8)
    failures = {r.call.name: r.expectation_errors for r in results if r.expectation_errors}
    assert failures == {}
    verdicts = {r.verdict for r in results}
    assert verdicts == {"pass", "warn", "block"}
    # Every verdict reached the channel, as the switch's CDRs will carry it.
    for r in results:
        assert r.variables["fsp_verdict"] == r.verdict
        assert r.variables["fsp_rule"] == (r.rule or "")
        assert r.fallback is None


async def test_blocked_call_hears_607_and_switch_reports_outcome(rig: Rig) -> None:
    call = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
    result = await rig.switch.place(call)
    assert (result.verdict, result.sip_status, result.cause) == ("block", 607, "UNWANTED")
    assert result.rule == "cid.not_allowed"
    await _wait_for(lambda: len(rig.outcomes) >= 1)
    outcome = rig.outcomes[0]
    assert outcome.uuid == result.uuid
    assert outcome.disposition == "send_refuse"
    assert outcome.hangup_cause == "UNWANTED"
    assert not outcome.answered


async def test_warned_call_carries_label_to_callee(rig: Rig) -> None:
    call = LabCall(from_user="02088887777", to="13900001120", trunk="ent-1")
    result = await rig.switch.place(call)
    assert (result.verdict, result.sip_status) == ("warn", 200)
    assert result.label == "疑似骚扰:房产中介"
    assert result.variables["sip_cid_type"] == "pid"
    assert result.variables["sip_h_X-Fsp-Verdict"] == "warn"


async def test_ring_once_outcome_has_ring_time(rig: Rig) -> None:
    call = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1", ring_s=1.2)
    result = await rig.switch.place(call)
    assert result.sip_status == 487
    await _wait_for(lambda: len(rig.outcomes) >= 1)
    outcome = rig.outcomes[0]
    assert outcome.caller_cancelled
    assert outcome.ring_time_s is not None and abs(outcome.ring_time_s - 1.2) < 0.01


async def test_decisions_reach_listeners_with_latency(rig: Rig) -> None:
    calls = [LabCall(from_user="02088881234", to=f"1390000{i:04d}", trunk="ent-1")
             for i in range(50)]
    results = await rig.switch.place_all(calls, concurrency=25)
    assert all(r.verdict == "pass" for r in results)
    assert len(rig.records) == 50
    assert {rec.facts.uuid for rec in rig.records} == {r.uuid for r in results}
    assert all(0 < rec.latency_s < 1 for rec in rig.records)

"""Caps and nuisance patterns end to end: lab switch → TCP → controller → counter store.

Each verdict flips at exactly the configured threshold and back once the window has
passed. Time is a ManualClock shared by the controller and the memory store: windows
are passed by advancing it, never by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fsp_rig import Rig, make_rig

from fs_plugin.clock import ManualClock
from fs_plugin.counters import open_store
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult
from fs_plugin.screening.model import Outcome

POLICY = Path(__file__).parent / "caps_policy"
#: A Monday morning in the trunks' time zone.
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
DAY = 86400.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def _rig(clock: ManualClock, *, inbound: bool = True) -> Rig:
    return await make_rig(POLICY, clock=clock, counters=open_store("memory://", clock=clock),
                          inbound=inbound)


@pytest.fixture
async def rig(clock: ManualClock) -> AsyncIterator[Rig]:
    r = await _rig(clock)
    try:
        yield r
    finally:
        await r.service.stop()
        await r.switch.stop()


async def _call(rig: Rig, **kw: object) -> CallResult:
    result = await rig.switch.place(LabCall(**kw))  # type: ignore[arg-type]
    # The hang-up travels back over the event socket; let its statistics land.
    await rig.service.drain_outcomes()
    return result


async def _verdicts(rig: Rig, calls: list[dict[str, object]]) -> list[tuple[str, str | None]]:
    out = []
    for kw in calls:
        r = await _call(rig, **kw)
        out.append((r.verdict, r.rule))
    return out


PASS = ("pass", None)


async def test_rate_caller_per_minute(rig: Rig, clock: ManualClock) -> None:
    calls = [dict(from_user="02088881234", to=f"1390000{i:04d}", trunk="t-caller")
             for i in range(5)]
    assert await _verdicts(rig, calls) == [PASS, PASS, PASS, ("block", "rate.caller"),
                                           ("block", "rate.caller")]
    # Refused calls did not consume quota; a minute later (plus the counter's 10 %
    # sub-bucket granularity) the caller may call again.
    clock.advance(67)
    assert await _verdicts(rig, calls[:1]) == [PASS]


async def test_rate_trunk_cps(rig: Rig, clock: ManualClock) -> None:
    calls = [dict(from_user="02088881234", to=f"1390000{i:04d}", trunk="t-cps")
             for i in range(3)]
    results = [await _call(rig, **kw) for kw in calls]
    assert [(r.verdict, r.rule, r.sip_status) for r in results] == [
        ("pass", None, 200), ("pass", None, 200), ("block", "rate.trunk_cps", 603)]
    clock.advance(1.2)
    assert await _verdicts(rig, calls[:1]) == [PASS]


async def test_rate_callee_per_day(rig: Rig, clock: ManualClock) -> None:
    calls = [dict(from_user=f"020888800{i:02d}", to="13900005555", trunk="t-callee")
             for i in range(3)]
    assert await _verdicts(rig, calls) == [PASS, PASS, ("block", "rate.callee")]
    clock.advance(DAY * 1.11)
    assert await _verdicts(rig, calls[:1]) == [PASS]


async def test_rate_pair_per_day(rig: Rig, clock: ManualClock) -> None:
    call = dict(from_user="02088881234", to="13900006666", trunk="t-pair")
    other = dict(from_user="02088881234", to="13900006667", trunk="t-pair")
    assert await _verdicts(rig, [call, call, other]) == [PASS, ("block", "rate.pair"), PASS]
    clock.advance(DAY * 1.11)
    assert await _verdicts(rig, [call]) == [PASS]


async def test_concurrency_lease_released_by_hangup_or_expiry(clock: ManualClock) -> None:
    # No event socket: hang-ups are delivered by hand, so calls stay "up".
    rig = await _rig(clock, inbound=False)
    try:
        calls = [dict(from_user="02088881234", to=f"1390000{i:04d}", trunk="t-conc")
                 for i in range(4)]
        results = [await _call(rig, **kw) for kw in calls[:3]]
        assert [(r.verdict, r.rule) for r in results] == [PASS, PASS,
                                                          ("block", "rate.concurrency")]
        first = results[0]
        await rig.service.process_outcome(Outcome(
            uuid=first.uuid, hangup_cause="NORMAL_CLEARING", disposition="recv_bye",
            answered=True, ring_time_s=None, duration_s=30.0, billsec=28,
            from_user="02088881234", destination=first.call.to, trunk_hint="t-conc",
            switch=None, end_timestamp_us=int(clock.time() * 1e6),
        ))
        assert await _verdicts(rig, [calls[3]]) == [PASS]  # the hang-up freed a slot
        assert await _verdicts(rig, [calls[0]]) == [("block", "rate.concurrency")]
        # Hang-ups lost (switch restart): leases expire after max_call_s, nothing leaks.
        clock.advance(601)
        assert await _verdicts(rig, [calls[0], calls[1]]) == [PASS, PASS]
    finally:
        await rig.service.stop()
        await rig.switch.stop()


async def test_bombing_from_one_caller(rig: Rig, clock: ManualClock) -> None:
    call = dict(from_user="02088881234", to="13900002222", trunk="t-open")
    results = [await _call(rig, **call) for _ in range(6)]
    assert [(r.verdict, r.rule) for r in results] == [PASS] * 4 + [
        ("block", "pattern.bombing")] * 2
    assert results[4].sip_status == 607
    assert results[4].reason is not None and "呼死你" in results[4].reason
    # Another callee is not affected.
    assert await _verdicts(rig, [{**call, "to": "13900002223"}]) == [PASS]
    clock.advance(3600 + 661)  # flag period and window over
    assert await _verdicts(rig, [call]) == [PASS]


async def test_bombing_from_many_callers(rig: Rig) -> None:
    calls = [dict(from_user=f"0208888{i:04d}", to="13900004444", trunk="t-open")
             for i in range(8)]
    assert await _verdicts(rig, calls) == [PASS] * 6 + [("block", "pattern.bombing")] * 2


async def test_wangiri_ring_once_caller_is_flagged(rig: Rig, clock: ManualClock) -> None:
    ring_once = [dict(from_user="02088885555", to=f"139000030{i:02d}", trunk="t-open",
                      ring_s=1.0) for i in range(6)]
    results = [await _call(rig, **kw) for kw in ring_once]
    assert [r.sip_status for r in results[:4]] == [487] * 4  # rang, caller cancelled
    assert [(r.verdict, r.rule) for r in results] == [PASS] * 4 + [
        ("block", "pattern.wangiri")] * 2
    # Answered calls and long rings do not count.
    normal = [dict(from_user="02088886666", to=f"139000031{i:02d}", trunk="t-open")
              for i in range(6)]
    assert await _verdicts(rig, normal) == [PASS] * 6
    clock.advance(DAY * 1.11)
    assert await _verdicts(rig, ring_once[:1]) == [PASS]


async def test_shadow_rule_is_recorded_not_enforced(clock: ManualClock, tmp_path: Path) -> None:
    for f in POLICY.glob("*.yaml"):
        text = f.read_text("utf-8").replace(
            "pattern.bombing: {mode: enforce", "pattern.bombing: {mode: shadow")
        tmp_path.joinpath(f.name).write_text(text, "utf-8")
    rig = await make_rig(tmp_path, clock=clock, counters=open_store("memory://", clock=clock))
    try:
        call = dict(from_user="02088881234", to="13900002222", trunk="t-open")
        results = [await _call(rig, **call) for _ in range(6)]
        assert [r.verdict for r in results] == ["pass"] * 6
        shadow = [rec.decision.shadow_hits for rec in rig.records]
        assert [bool(s) for s in shadow] == [False] * 4 + [True] * 2
        assert shadow[4][0].rule == "pattern.bombing"
    finally:
        await rig.service.stop()
        await rig.switch.stop()

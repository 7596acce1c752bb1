"""rate.* caps and region.strict through the real counter protocol (MemoryStore)."""

from __future__ import annotations

from pathlib import Path

import pytest
from screening_counted import Counted, outcome

from fs_plugin.counters.ops import Acquire, Hit, Release
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, Mode, Verdict, decide, plan_counters

POLICY = """
trunks:
  - id: t1
    kind: enterprise
    customer: c1
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: t2
    kind: enterprise
    customer: c2
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: t3
    kind: enterprise
    customer: c3
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: ic
    kind: interconnect
customers:
  - id: c1
    industry: finance
    contract:
      caps:
        caller: {per_minute: 3}
        trunk_cps: 5
        concurrency: 100
        callee: {per_day: 4}
        pair: {per_hour: 2}
  - id: c2
    industry: finance
  - id: c3
    contract:
      caps: {concurrency: 2, max_call_s: 600}
industries:
  finance:
    caps:
      caller: {per_minute: 10, per_day: 50}
key_regions:
  - id: hainan
    regions: ["0898", 海南]
    factor: 0.5
    caps: {caller: {per_hour: 4}}
"""


def snap(tmp_path: Path, extra: str = "") -> PolicySnapshot:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + extra, encoding="utf-8")
    return load_policy(path)


def call(caller: str = "02088880001", callee: str = "13900002222", trunk: str = "t1",
         uuid: str = "u") -> CallFacts:
    return CallFacts(uuid, caller, callee, trunk_hint=trunk)


def fired(d: object, rule: str) -> bool:
    return any(r.rule == rule and r.fired for r in d.trail)  # type: ignore[attr-defined]


async def test_caller_cap_lets_n_through_and_blocks_n_plus_1(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    for i in range(3):
        d = await c.call(call(callee=f"1390000{i:04d}", uuid=f"u{i}"))
        assert d.verdict is Verdict.PASS, d.reason
    d = await c.call(call(callee="13900009000", uuid="u3"))
    assert (d.verdict, d.rule, d.sip_status) == (Verdict.BLOCK, "rate.caller", 603)
    assert "3 calls per minute" in d.reason and "4th" in d.reason


async def test_refused_call_does_not_consume_quota_and_window_passes(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    for i in range(3):
        await c.call(call(callee=f"1390000{i:04d}", uuid=f"u{i}"))
    for i in range(5):  # refused calls keep being refused, but do not add to the count
        assert (await c.call(call(callee=f"1391000{i:04d}", uuid=f"r{i}"))).rule == "rate.caller"
    c.clock.advance(67)  # a sliding minute (plus the counter's 10 % sub-bucket slack)
    d = await c.call(call(callee="13900008888", uuid="later"))
    assert d.verdict is Verdict.PASS, d.reason


async def test_contract_caps_override_industry_value_by_value(tmp_path: Path) -> None:
    s = snap(tmp_path)
    assert s.contracts["c1"].caps.caller == ((60.0, 3), (86400.0, 50))
    assert s.contracts["c2"].caps.caller == ((60.0, 10), (86400.0, 50))


async def test_trunk_cps(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    verdicts = []
    for i in range(6):
        d = await c.call(call(caller=f"0208888{i:04d}", callee=f"1390000{i:04d}", uuid=f"u{i}"))
        verdicts.append(d.rule)
    assert verdicts == [None] * 2 + [None] * 3 + ["rate.trunk_cps"]
    c.clock.advance(1.2)
    assert (await c.call(call(caller="02088887000", uuid="x"))).verdict is Verdict.PASS


async def test_callee_and_pair_caps(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    callee = "13900005555"
    rules = []
    for i in range(3):  # one caller: pair per_hour 2
        d = await c.call(call(caller="02088881111", callee=callee, uuid=f"p{i}"))
        rules.append(d.rule)
        c.clock.advance(30)
    assert rules == [None, None, "rate.pair"]
    # Other callers: the callee cap (4 per day per customer) counts the 2 passed calls
    # plus the pair-refused one (refused by another cap in the same batch: counted).
    d = await c.call(call(caller="02088882222", callee=callee, uuid="q1"))
    assert d.verdict is Verdict.PASS
    d = await c.call(call(caller="02088883333", callee=callee, uuid="q2"))
    assert d.rule == "rate.callee" and "callee 13900005555 (customer c1)" in d.reason
    # The cap is per customer: the same callee from c2's trunk is not capped by c1's.
    d = await c.call(call(caller="02088884444", callee=callee, trunk="t2", uuid="q3"))
    assert d.verdict is Verdict.PASS


async def test_concurrency_lease_released_on_hangup(tmp_path: Path) -> None:
    s = snap(tmp_path)
    c = Counted(s)
    assert (await c.call(call(caller="02088880001", trunk="t3", uuid="a"))).rule is None
    assert (await c.call(call(caller="02088880002", trunk="t3", uuid="b"))).rule is None
    d = await c.call(call(caller="02088880003", trunk="t3", uuid="c"))
    assert d.rule == "rate.concurrency" and "2 concurrent calls" in d.reason
    # Still full: a refused call took no slot, and the same call retried keeps its own.
    assert (await c.call(call(caller="02088880003", trunk="t3", uuid="c"))).rule == (
        "rate.concurrency")
    assert (await c.call(call(caller="02088880001", trunk="t3", uuid="a"))).rule is None
    await c.hangup(outcome("a", "02088880001", "13900002222", trunk="t3", answered=True))
    assert Release("rate.concurrency:t3", "a") in c.batches[-2]
    d = await c.call(call(caller="02088880004", trunk="t3", uuid="d"))
    assert d.verdict is Verdict.PASS, d.reason


async def test_concurrency_lease_expires_after_max_call_s(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    await c.call(call(caller="02088880001", trunk="t3", uuid="a"))
    await c.call(call(caller="02088880002", trunk="t3", uuid="b"))
    assert (await c.call(call(caller="02088880003", trunk="t3", uuid="c"))).rule == (
        "rate.concurrency")
    c.clock.advance(599)
    assert (await c.call(call(caller="02088880003", trunk="t3", uuid="c"))).rule == (
        "rate.concurrency")
    c.clock.advance(2)  # hangups lost: the leases free themselves after max_call_s
    assert (await c.call(call(caller="02088880005", trunk="t3", uuid="e"))).rule is None


def test_hangup_of_unknown_trunk_releases_on_every_leased_trunk(tmp_path: Path) -> None:
    from fs_plugin.screening import outcome_ops

    s = snap(tmp_path)
    ops = outcome_ops(outcome("u9", "02088880001", "13900002222", trunk=None), s, now=0.0)
    assert [op for op in ops if isinstance(op, Release)] == [
        Release("rate.concurrency:t1", "u9"), Release("rate.concurrency:t3", "u9")]
    ops = outcome_ops(outcome("u9", "02088880001", "13900002222", trunk="t2"), s, now=0.0)
    assert not [op for op in ops if isinstance(op, Release)]  # t2 has no concurrency cap


def test_plan_ops_use_limit_only_for_enforced_blocking_rules(tmp_path: Path) -> None:
    s = snap(tmp_path, "rules:\n  rate.pair: {mode: shadow}\n  rate.callee: {mode: off}\n")
    plan = plan_counters(call(), s, now=0.0)
    hits = {op.key: op for op in plan.ops if isinstance(op, Hit)}
    assert hits["rate.caller:02088880001:60"].limit == 3
    assert hits["rate.pair:02088880001:13900002222:3600"].limit is None  # shadow: counted
    assert not [k for k in hits if k.startswith("rate.callee")]  # off: no op at all
    assert [op.limit for op in plan.ops if isinstance(op, Acquire)] == [100]
    # The caller's windows share one tag (one slot); other caps keep their own.
    assert {hits[k].tag for k in hits if k.startswith("rate.caller")} == {
        "caller:02088880001"}
    assert hits["rate.trunk_cps:t1:1"].tag is None


async def test_shadow_cap_never_enforces_but_records(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path, "rules:\n  rate.caller: {mode: shadow}\n"))
    ds = [await c.call(call(callee=f"1390000{i:04d}", uuid=f"u{i}")) for i in range(5)]
    assert all(d.verdict is Verdict.PASS for d in ds)
    assert [fired(d, "rate.caller") for d in ds] == [False, False, False, True, True]
    assert [r.rule for r in ds[4].shadow_hits] == ["rate.caller"]
    assert all(r.mode is Mode.SHADOW for r in ds[4].shadow_hits)
    # Shadow calls went through, so they were counted: 5 in the window.
    assert "5th" in ds[4].shadow_hits[0].reason


async def test_call_blocked_by_pure_rule_only_peeks(tmp_path: Path) -> None:
    s = snap(tmp_path)
    c = Counted(s)
    spoofed = call(caller="02155550123", uuid="s")
    plan = plan_counters(spoofed, s, now=c.clock.time())
    assert all(op.peek for op in plan.ops if isinstance(op, Hit) and op.key.startswith("rate"))
    assert [op.limit for op in plan.ops if isinstance(op, Acquire)] == [0]
    for i in range(5):
        d = await c.call(call(caller="02155550123", callee=f"1390000{i:04d}", uuid=f"s{i}"))
        assert d.rule == "cid.not_allowed"
    # None of the refused calls used the trunk's quota or a concurrency slot.
    for i in range(5):
        d = await c.call(call(caller=f"0208888{i:04d}", callee=f"1391000{i:04d}", uuid=f"o{i}"))
        assert d.verdict is Verdict.PASS, d.reason


async def test_region_strict_applies_stricter_caps_in_the_key_region(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    # Callee in Hainan (0898): factor 0.5 of per_minute 3 = 1, so the 2nd call fires.
    d1 = await c.call(call(callee="089866661234", uuid="h1"))
    d2 = await c.call(call(callee="089866661235", uuid="h2"))
    assert d1.verdict is Verdict.PASS
    assert (d2.verdict, d2.rule) == (Verdict.BLOCK, "region.strict")
    assert "key region hainan (callee in 0898)" in d2.reason
    assert not fired(d2, "rate.caller")
    # A Hainan mobile matches by attribution name.
    c2 = Counted(snap(tmp_path))
    await c2.call(call(callee="13907551234", uuid="m1"))
    d = await c2.call(call(callee="13907551235", uuid="m2"))
    assert d.rule == "region.strict" and "callee in 海南" in d.reason


async def test_region_explicit_caps_apply_on_any_trunk(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    rules = [(await c.call(call(caller="13907551234", callee=f"1390000{i:04d}", trunk="ic",
                                uuid=f"i{i}"))).rule for i in range(5)]
    assert rules == [None] * 4 + ["region.strict"]


async def test_region_strict_warn_counts_the_call_and_labels_it(tmp_path: Path) -> None:
    s = snap(tmp_path, "rules:\n  region.strict: {verdict: warn, label: 重点地区频繁呼叫}\n"
                       "  rate.concurrency: {mode: off}\n")
    c = Counted(s)
    ds = [await c.call(call(callee=f"08986666123{i}", uuid=f"w{i}")) for i in range(4)]
    assert [d.verdict for d in ds] == [Verdict.PASS, Verdict.WARN, Verdict.WARN, Verdict.BLOCK]
    assert ds[1].label == "重点地区频繁呼叫"
    # Warned calls went through and were counted: the contract cap (3) blocks the 4th.
    assert ds[3].rule == "rate.caller"


def test_region_strict_off_plans_no_region_limits(tmp_path: Path) -> None:
    s = snap(tmp_path, "rules:\n  region.strict: {mode: off}\n")
    plan = plan_counters(call(callee="089866661234"), s, now=0.0)
    assert all(p.region_limit is None for p in plan.caps)
    assert "region.strict" not in plan.rules


@pytest.mark.parametrize("mode", ["enforce", "shadow"])
def test_no_caps_no_ops(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("trunks:\n  - {id: ic, kind: interconnect}\n"
                    f"rules:\n  rate.caller: {{mode: {mode}}}\n", encoding="utf-8")
    s = load_policy(path)
    plan = plan_counters(call(trunk="ic"), s, now=0.0)
    assert plan.ops == ()
    d = decide(call(trunk="ic"), s, None, now=0.0)
    assert d.verdict is Verdict.PASS
    assert all(not r.reason for r in d.trail)  # nothing "not evaluated": nothing needed

"""Without counter results: counter rules not evaluated, pure rules apply, on_error decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from fs_plugin.counters.ops import HitResult
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, CounterReadings, Verdict, decide, plan_counters

POLICY = """
trunks:
  - id: open
    kind: enterprise
    customer: c
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: closed
    kind: enterprise
    customer: c
    on_error: block
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - {id: bare, kind: interconnect, on_error: block}
customers:
  - id: c
    contract: {caps: {caller: {per_minute: 5}, concurrency: 3}}
labels:
  - {number: "02088887777", category: harassment}
"""


@pytest.fixture
def snap(tmp_path: Path) -> PolicySnapshot:
    return make(tmp_path, "")


def make(tmp_path: Path, extra: str) -> PolicySnapshot:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + extra, encoding="utf-8")
    return load_policy(path)


def call(trunk: str, caller: str = "02088880001") -> CallFacts:
    return CallFacts("u1", caller, "13900002222", trunk_hint=trunk)


def failed(f: CallFacts, s: PolicySnapshot, error: str = "deadline 0.25 s") -> CounterReadings:
    return CounterReadings(plan_counters(f, s, now=0.0), None, error)


@pytest.mark.parametrize("how", ["no store", "store failed"])
def test_on_error_pass_goes_on_with_the_pure_verdict(snap: PolicySnapshot, how: str) -> None:
    f = call("open")
    d = decide(f, snap, None if how == "no store" else failed(f, snap), now=0.0)
    assert d.verdict is Verdict.PASS
    skipped = {r.rule: r.reason for r in d.trail if r.reason.startswith("not evaluated")}
    assert set(skipped) == {"rate.caller", "rate.concurrency"}
    problem = "no counter store configured" if how == "no store" else "deadline 0.25 s"
    assert skipped["rate.caller"] == f"not evaluated: counters unavailable ({problem})"
    last = d.trail[-1]
    assert (last.rule, last.fired) == ("system.counters_unavailable", False)
    assert "on_error=pass (trunk open)" in last.reason


def test_on_error_pass_keeps_pure_warns_and_blocks(snap: PolicySnapshot) -> None:
    f = call("open", "02088887777")
    assert decide(f, snap, failed(f, snap), now=0.0).verdict is Verdict.WARN
    f = call("open", "02155550123")
    assert decide(f, snap, failed(f, snap), now=0.0).rule == "cid.not_allowed"


def test_on_error_block_blocks_with_a_temporary_failure(snap: PolicySnapshot) -> None:
    f = call("closed")
    d = decide(f, snap, failed(f, snap, "redis down"), now=0.0)
    assert (d.verdict, d.rule, d.cause, d.sip_status) == (
        Verdict.BLOCK, "system.counters_unavailable", "NORMAL_TEMPORARY_FAILURE", 503)
    assert d.reason == ("counters unavailable (redis down); on_error=block (trunk closed)")
    assert not d.fallback


def test_a_specific_block_wins_over_counters_unavailable(snap: PolicySnapshot) -> None:
    f = call("closed", "02155550123")
    assert decide(f, snap, failed(f, snap), now=0.0).rule == "cid.not_allowed"


def test_no_counter_rule_needed_means_nothing_unavailable(snap: PolicySnapshot) -> None:
    d = decide(call("bare", "13800138000"), snap, None, now=0.0)
    assert d.verdict is Verdict.PASS
    assert all(r.rule != "system.counters_unavailable" for r in d.trail)


def test_cause_and_mode_are_configurable(tmp_path: Path) -> None:
    s = make(tmp_path, "rules:\n  system.counters_unavailable: {cause: SWITCH_CONGESTION}\n")
    f = call("closed")
    d = decide(f, s, failed(f, s), now=0.0)
    assert (d.cause, d.sip_status) == ("SWITCH_CONGESTION", 503)
    s = make(tmp_path, "rules:\n  system.counters_unavailable: {mode: shadow}\n")
    d = decide(f, s, failed(f, s), now=0.0)
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["system.counters_unavailable"]


def test_results_that_do_not_match_the_plan_count_as_unavailable(snap: PolicySnapshot) -> None:
    f = call("closed")
    plan = plan_counters(f, snap, now=0.0)
    d = decide(f, snap, CounterReadings(plan, (HitResult(1, False, True),), None), now=0.0)
    assert d.rule == "system.counters_unavailable"
    assert f"returned 1 results for {len(plan.ops)} ops" in d.reason


def test_counter_rules_off_need_no_counters(tmp_path: Path) -> None:
    s = make(tmp_path, "rules:\n  rate.caller: {mode: off}\n  rate.concurrency: {mode: off}\n")
    assert plan_counters(call("closed"), s, now=0.0).ops == ()
    assert decide(call("closed"), s, None, now=0.0).verdict is Verdict.PASS

"""pattern.bombing (呼死你) and pattern.wangiri (响一声) through plan, store and outcomes."""

from __future__ import annotations

from pathlib import Path

from screening_counted import Counted, outcome

from fs_plugin.counters.ops import Flag, FlagResult, Hit
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import (
    CallFacts,
    Decision,
    Verdict,
    outcome_followup,
    outcome_ops,
    plan_counters,
)

POLICY = """
trunks:
  - {id: ic, kind: interconnect}
patterns:
  bombing: {window_s: 600, per_caller: 3, calls: 6, min_callers: 3, flag_period_s: 3600}
  wangiri: {max_ring_s: 5, window_s: 3600, short_calls: 4, callees: 3, flag_period_s: 7200}
"""

VICTIM = "13900005555"


def snap(tmp_path: Path, extra: str = "") -> PolicySnapshot:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + extra, encoding="utf-8")
    return load_policy(path)


def call(caller: str, callee: str = VICTIM, uuid: str = "u") -> CallFacts:
    return CallFacts(uuid, caller, callee, trunk_hint="ic")


# -- 呼死你 --------------------------------------------------------------------------


async def test_bombing_by_one_caller_blocks_from_the_n_plus_1th(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    ds = [await c.call(call("13800138000", uuid=f"u{i}")) for i in range(5)]
    assert [d.verdict for d in ds] == [Verdict.PASS] * 3 + [Verdict.BLOCK] * 2
    d = ds[3]
    assert (d.rule, d.cause, d.label) == ("pattern.bombing", "CALL_REJECTED", "呼死你攻击目标")
    assert d.reason == ("呼死你 (呼死你攻击目标): callee 13900005555 called 4 times by "
                        "13800138000 in 600 s (more than 3 from one caller)")
    # Another callee of the same caller is not affected.
    assert (await c.call(call("13800138000", "13900006666", uuid="x"))).verdict is Verdict.PASS


async def test_bombing_by_many_callers(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    callers = [f"1380013800{i}" for i in range(7)]
    ds = [await c.call(call(n, uuid=f"u{i}")) for i, n in enumerate(callers)]
    assert [d.rule for d in ds] == [None] * 6 + ["pattern.bombing"]
    assert "received 7 calls from 7 callers in 600 s (more than 6)" in ds[6].reason


async def test_bombing_needs_min_callers(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("trunks: [{id: ic, kind: interconnect}]\npatterns:\n  bombing: "
                    "{per_caller: 100, calls: 6, min_callers: 3}\n", encoding="utf-8")
    c = Counted(load_policy(path))
    for i in range(8):  # 8 calls (more than 6) but from 2 callers: not a flood of many
        d = await c.call(call(f"1380013800{i % 2}", uuid=f"a{i}"))
        assert d.verdict is Verdict.PASS, d.reason
    d = await c.call(call("13800138002", uuid="c0"))
    assert d.rule == "pattern.bombing" and "received 9 calls from 3 callers" in d.reason


async def test_flag_set_after_hangup_keeps_the_sources_blocked(tmp_path: Path) -> None:
    s = snap(tmp_path)
    c = Counted(s)
    bomber, innocent = "13800138000", "13700001111"
    await c.call(call(innocent, uuid="i0"))
    for i in range(4):
        await c.call(call(bomber, uuid=f"b{i}"))
    # The 4th call was blocked; its hangup reads the callee's counters and flags it.
    flags = await c.hangup(outcome("b3", bomber, VICTIM, trunk="ic", disposition="send_refuse"))
    assert flags == (Flag("bomb.flag:13900005555", 3600.0, "4 calls from 13800138000 in 600 s",
                          tag="bomb:13900005555"),)
    c.clock.advance(700)  # the window has passed: only the flag remembers the flood
    d = await c.call(call(bomber, uuid="b9"))
    assert d.rule == "pattern.bombing" and "is flagged as a flood target" in d.reason
    assert d.label == "呼死你攻击目标"
    # A caller who called before, in the flag period, is also one of the sources …
    assert (await c.call(call(innocent, uuid="i1"))).rule == "pattern.bombing"
    # … a new caller gets through.
    assert (await c.call(call("13600001234", uuid="n1"))).verdict is Verdict.PASS
    c.clock.advance(3600)
    assert (await c.call(call(bomber, uuid="b10"))).verdict is Verdict.PASS


async def test_no_flag_below_thresholds(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    await c.call(call("13800138000", uuid="a"))
    flags = await c.hangup(outcome("a", "13800138000", VICTIM, trunk="ic", answered=True))
    assert flags == ()


def test_bombing_ops_share_the_callee_tag(tmp_path: Path) -> None:
    plan = plan_counters(call("13800138000"), snap(tmp_path), now=0.0)
    assert {op.tag for op in plan.ops} == {"bomb:13900005555", "wangiri:13800138000"}
    assert plan.rules == frozenset({"pattern.bombing", "pattern.wangiri"})


async def test_bombing_shadow_records_but_passes(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path, "rules:\n  pattern.bombing: {mode: shadow}\n"))
    ds = [await c.call(call("13800138000", uuid=f"u{i}")) for i in range(5)]
    assert all(d.verdict is Verdict.PASS for d in ds)
    assert [bool(d.shadow_hits) for d in ds] == [False] * 3 + [True] * 2


# -- 响一声 --------------------------------------------------------------------------


def short_call(i: int, caller: str = "13812345678", ring: float = 1.5) -> object:
    return outcome(f"w{i}", caller, f"1390000{i:04d}", trunk="ic", ring_s=ring)


async def ring_once(c: Counted, n: int, caller: str = "13812345678") -> tuple[object, ...]:
    flags: tuple[object, ...] = ()
    for i in range(n):
        flags = await c.hangup(short_call(i, caller))  # type: ignore[arg-type]
    return flags


async def test_wangiri_flag_after_thresholds_and_block(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    assert await ring_once(c, 4) == ()  # 4 short calls: not more than 4
    flags = await c.hangup(short_call(4))  # type: ignore[arg-type]
    assert flags == (Flag("wangiri.flag:13812345678", 7200.0,
                          "5 short calls to 5 callees in 3600 s", tag="wangiri:13812345678"),)
    d = await c.call(call("13812345678", "13700000001"))
    assert (d.verdict, d.rule, d.label) == (Verdict.BLOCK, "pattern.wangiri", "疑似响一声诈骗")
    assert "响一声" in d.reason and "5 short calls to 5 callees" in d.reason
    c.clock.advance(7201)
    assert (await c.call(call("13812345678", "13700000002"))).verdict is Verdict.PASS


async def test_wangiri_needs_distinct_callees(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path))
    for i in range(8):  # 8 short calls, but to only 2 callees
        flags = await c.hangup(outcome(f"w{i}", "13812345678", f"139000000{i % 2}", trunk="ic"))
        assert flags == ()


async def test_wangiri_counts_only_short_unanswered_caller_cancelled(tmp_path: Path) -> None:
    s = snap(tmp_path)
    def ops(o: object) -> list[object]:
        return [op for op in outcome_ops(o, s, now=0.0)  # type: ignore[arg-type]
                if getattr(op, "key", "").startswith("wangiri")]
    assert ops(outcome("a", "13812345678", "13900000001", ring_s=4.9))
    assert not ops(outcome("a", "13812345678", "13900000001", ring_s=5.0))
    assert not ops(outcome("a", "13812345678", "13900000001", answered=True))
    assert not ops(outcome("a", "13812345678", "13900000001", disposition="send_refuse"))
    assert not ops(outcome("a", "13812345678", "13900000001", ring_s=None))
    assert not ops(outcome("a", "anonymous", "13900000001"))


async def test_wangiri_warn_carries_the_label(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path, "rules:\n  pattern.wangiri: {verdict: warn}\n"))
    await ring_once(c, 5)
    d = await c.call(call("13812345678", "13700000001"))
    assert (d.verdict, d.rule, d.label) == (Verdict.WARN, "pattern.wangiri", "疑似响一声诈骗")


async def test_wangiri_shadow_and_off(tmp_path: Path) -> None:
    c = Counted(snap(tmp_path, "rules:\n  pattern.wangiri: {mode: shadow}\n"))
    await ring_once(c, 5)
    d: Decision = await c.call(call("13812345678", "13700000001"))
    assert d.verdict is Verdict.PASS and [r.rule for r in d.shadow_hits] == ["pattern.wangiri"]
    s = snap(tmp_path, "rules:\n  pattern.wangiri: {mode: off}\n")
    keys = [op.key for op in plan_counters(call("13812345678"), s, now=0.0).ops]
    assert keys and not [k for k in keys if k.startswith("wangiri")]
    keys = [op.key for op in outcome_ops(short_call(0), s, now=0.0)]  # type: ignore[arg-type]
    assert keys and not [k for k in keys if k.startswith("wangiri")]


def test_followup_ignores_results_that_do_not_fit(tmp_path: Path) -> None:
    s = snap(tmp_path)
    o = short_call(0)
    assert outcome_followup(o, s, ()) == ()  # type: ignore[arg-type]
    ops = outcome_ops(o, s, now=0.0)  # type: ignore[arg-type]
    assert isinstance(ops[0], Hit)
    assert outcome_followup(o, s, tuple(FlagResult(None, None) for _ in ops)) == ()  # type: ignore[arg-type]

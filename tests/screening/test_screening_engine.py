"""Engine: ordering, precedence, shadow, decision fields, fallback and explain."""

from __future__ import annotations

from collections.abc import Callable

from fs_plugin.policy import RULE_ORDER, PolicySnapshot
from fs_plugin.screening import CallFacts, Mode, Verdict, decide, explain, fallback_decision

MakePolicy = Callable[[str], PolicySnapshot]
NOW = 1_780_272_000.0


def call(from_user: str, trunk: str | None = "ent-1", **kw: str) -> CallFacts:
    return CallFacts("u1", from_user, "13900002222", trunk_hint=trunk, **kw)  # type: ignore[arg-type]


def test_trail_lists_every_active_rule_in_documented_order(policy: PolicySnapshot) -> None:
    d = decide(call("02088880001"), policy, now=NOW)
    # Labels record only the label found; system.counters_unavailable only appears when
    # the counters the call needed could not be read.
    implemented = [s.id for s in RULE_ORDER if s.implemented and not s.id.startswith("label.")
                   and s.id != "system.counters_unavailable"]
    assert [r.rule for r in d.trail] == implemented
    assert all(not r.fired for r in d.trail)
    assert d.verdict is Verdict.PASS and d.rule is None
    assert d.policy_version == policy.version
    assert (d.trunk, d.customer) == ("ent-1", "acme")


def test_first_enforced_block_in_order_wins(policy: PolicySnapshot) -> None:
    # malformed and not_allowed both fire; malformed comes first.
    d = decide(call("0208888x"), policy, now=NOW)
    assert [r.rule for r in d.trail if r.fired] == ["cid.malformed", "cid.not_allowed"]
    assert d.rule == "cid.malformed"


def test_shadow_block_does_not_hide_a_later_enforced_block(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  cid.malformed: {mode: shadow}\n")
    d = decide(call("0208888x"), snap, now=NOW)
    assert d.rule == "cid.not_allowed"
    assert [r.rule for r in d.shadow_hits] == ["cid.malformed"]


def test_enforced_warn_loses_to_enforced_block_later_in_order(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  label.harassment: {verdict: warn}\n")
    d = decide(call("02088887777", "ent-gone"), snap, now=NOW)
    assert d.verdict is Verdict.BLOCK


def test_all_shadow_means_pass_with_every_hit_recorded(make_policy: MakePolicy) -> None:
    rules = "".join(f"  {s.id}: {{mode: shadow}}\n" for s in RULE_ORDER)
    snap = make_policy("rules:\n" + rules)
    d = decide(call("abc", "ent-gone"), snap, now=NOW)
    assert d.verdict is Verdict.PASS
    assert {r.rule for r in d.shadow_hits} == {"contract.suspended", "cid.malformed",
                                               "cid.not_allowed"}
    assert all(r.mode is Mode.SHADOW for r in d.trail)


def test_now_defaults_to_the_channel_timestamp(policy: PolicySnapshot) -> None:
    # The label on 13600006666 expired at the end of 2026-01-31 (Shanghai).
    old = CallFacts("u", "13600006666", "1", trunk_hint="ic-1", timestamp_us=1_769_000_000_000_000)
    assert decide(old, policy).verdict is Verdict.WARN
    new = CallFacts("u", "13600006666", "1", trunk_hint="ic-1", timestamp_us=1_780_000_000_000_000)
    assert decide(new, policy).verdict is Verdict.PASS


def test_fallback_uses_trunk_on_error(make_policy: MakePolicy) -> None:
    snap = make_policy("")
    d = fallback_decision(call("02088880001"), snap, "deadline exceeded")
    assert (d.verdict, d.rule, d.fallback) == (Verdict.PASS, "system.fallback", True)
    assert "deadline exceeded" in d.reason
    assert d.trunk == "ent-1" and d.policy_version == snap.version
    assert d.trail[0].rule == "system.fallback"


def test_fallback_block_trunk_and_unknown_trunk_default(tmp_path: object,
                                                        make_policy: MakePolicy) -> None:
    snap = make_policy("defaults: {on_error: block}\n")
    d = fallback_decision(call("1", "nope"), snap, "boom")
    assert (d.verdict, d.cause, d.sip_status, d.fallback) == (
        Verdict.BLOCK, "CALL_REJECTED", 603, True)
    assert d.trunk is None
    # ent-1 keeps its own on_error: pass
    assert fallback_decision(call("1"), snap, "boom").verdict is Verdict.PASS


def test_fallback_without_a_policy_passes() -> None:
    d = fallback_decision(call("1"), None, "no policy")
    assert (d.verdict, d.fallback, d.policy_version) == (Verdict.PASS, True, "")


def test_explain_shows_verdict_cause_reason_and_trail(policy: PolicySnapshot) -> None:
    d = decide(call("02088870000"), policy, now=NOW)
    text = explain(d)
    lines = text.splitlines()
    assert lines[0] == "verdict: BLOCK"
    assert lines[1] == "rule:    cid.not_allowed"
    assert lines[2] == "cause:   UNWANTED (SIP 607)"
    assert lines[3].startswith("reason:  From number 02088870000")
    trail = lines[lines.index("trail:") + 1:]
    assert len(trail) == len(d.trail)
    starred = [line for line in trail if line.startswith("*")]
    assert len(starred) == 1 and "cid.not_allowed" in starred[0] and "FIRED" in starred[0]
    assert all("enforce" in line for line in trail)


def test_explain_warn_and_fallback(policy: PolicySnapshot) -> None:
    text = explain(decide(call("02088887777"), policy, now=NOW))
    assert "label:   疑似骚扰:房产中介" in text
    assert "verdict: WARN" in text
    text = explain(fallback_decision(call("1"), policy, "timeout"))
    assert "(fallback)" in text and "system.fallback" in text

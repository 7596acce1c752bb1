"""contract.suspended, trunk.unknown and label.* rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fs_plugin.policy import PolicySnapshot
from fs_plugin.screening import CallFacts, Decision, Verdict, decide

MakePolicy = Callable[[str], PolicySnapshot]
NOW = 1_780_272_000.0  # 2026-06-01 00:00 UTC


def call(from_user: str, trunk: str | None = "ent-1", **kw: str) -> CallFacts:
    return CallFacts("u1", from_user, "13900002222", trunk_hint=trunk, **kw)  # type: ignore[arg-type]


def run(snap: PolicySnapshot, f: CallFacts, now: float = NOW) -> Decision:
    return decide(f, snap, now=now)


# -- contract.suspended -------------------------------------------------------------


def test_suspended_customer_blocks_with_call_rejected(policy: PolicySnapshot) -> None:
    d = run(policy, call("02088770001", "ent-gone"))
    assert (d.verdict, d.rule, d.cause, d.sip_status) == (
        Verdict.BLOCK, "contract.suspended", "CALL_REJECTED", 603)
    assert d.customer == "gone"
    assert "terminated" in d.reason


def test_suspended_beats_caller_id_rules(policy: PolicySnapshot) -> None:
    d = run(policy, call("abc", "ent-gone"))
    assert d.rule == "contract.suspended"
    assert [r.rule for r in d.trail if r.fired] == [
        "contract.suspended", "cid.malformed", "cid.not_allowed"]


def test_active_customer_does_not_fire(policy: PolicySnapshot) -> None:
    d = run(policy, call("02088880001"))
    assert not next(r for r in d.trail if r.rule == "contract.suspended").fired


def test_suspended_shadow_and_off(make_policy: MakePolicy) -> None:
    d = run(make_policy("rules:\n  contract.suspended: {mode: shadow}\n"),
            call("02088770001", "ent-gone"))
    assert d.verdict is Verdict.PASS and d.shadow_hits[0].rule == "contract.suspended"
    d = run(make_policy("rules:\n  contract.suspended: {mode: off}\n"),
            call("02088770001", "ent-gone"))
    assert d.verdict is Verdict.PASS
    assert all(r.rule != "contract.suspended" for r in d.trail)


def test_suspended_announcement(make_policy: MakePolicy) -> None:
    snap = make_policy(
        "rules:\n  contract.suspended: {announcement: ivr/suspended.wav, cause: UNWANTED}\n")
    d = run(snap, call("02088770001", "ent-gone"))
    assert (d.announcement, d.sip_status) == ("ivr/suspended.wav", 607)


# -- trunk.unknown ------------------------------------------------------------------


def test_unknown_trunk_blocks_by_default(policy: PolicySnapshot) -> None:
    d = run(policy, call("02088880001", None, network_ip="198.51.100.7"))
    assert (d.verdict, d.rule, d.sip_status) == (Verdict.BLOCK, "trunk.unknown", 603)
    assert d.trunk is None and d.customer is None
    assert "198.51.100.7" in d.reason


def test_unknown_trunk_configurable(make_policy: MakePolicy) -> None:
    f = call("02088880001", "no-such-trunk")
    shadow = run(make_policy("rules:\n  trunk.unknown: {mode: shadow}\n"), f)
    assert shadow.verdict is Verdict.PASS
    assert shadow.shadow_hits[0].rule == "trunk.unknown"
    off = run(make_policy("rules:\n  trunk.unknown: {mode: off}\n"), f)
    assert off.verdict is Verdict.PASS and not off.shadow_hits


def test_matched_trunk_does_not_fire(policy: PolicySnapshot) -> None:
    d = run(policy, call("+14155550100", None, network_ip="203.0.113.5"))
    assert d.trunk == "ic-1"
    assert d.verdict is Verdict.PASS


# -- label.* ------------------------------------------------------------------------


def test_harassment_label_warns_with_text(policy: PolicySnapshot) -> None:
    d = run(policy, call("02088887777"))
    assert (d.verdict, d.rule, d.label) == (Verdict.WARN, "label.harassment", "疑似骚扰:房产中介")
    assert d.cause is None and d.sip_status is None


def test_label_found_in_any_form(policy: PolicySnapshot) -> None:
    for form in ("+862088887777", "sip:02088887777@192.0.2.1", "020-8888-7777"):
        assert run(policy, call(form)).rule == "label.harassment", form


def test_label_on_pai(policy: PolicySnapshot) -> None:
    d = run(policy, call("+14155550100", "ic-1", pai="13900009999"))
    assert d.rule == "label.fraud"
    assert d.reason.startswith("P-Asserted-Identity")


def test_fraud_label_blocks(policy: PolicySnapshot) -> None:
    d = run(policy, call("13900009999", "ic-1"))
    assert (d.verdict, d.rule, d.cause, d.sip_status) == (
        Verdict.BLOCK, "label.fraud", "CALL_REJECTED", 603)
    assert d.label == "疑似诈骗"  # the category's default text


def test_expired_label_is_ignored(policy: PolicySnapshot) -> None:
    assert run(policy, call("13600006666", "ic-1")).verdict is Verdict.PASS
    # 2026-01-31 23:59 in Shanghai is still within the label's last day.
    before = 1_769_875_140.0
    assert run(policy, call("13600006666", "ic-1"), now=before).verdict is Verdict.WARN
    assert run(policy, call("13600006666", "ic-1"), now=before + 60).verdict is Verdict.PASS


def test_label_verdict_and_text_from_rule(make_policy: MakePolicy) -> None:
    snap = make_policy(
        "rules:\n  label.telemarketing: {verdict: block, cause: INCOMING_CALL_BARRED}\n"
        "  label.fraud: {verdict: warn, label: 谨防诈骗}\n"
    )
    d = run(snap, call("13500005555", "ic-1"))
    assert (d.verdict, d.sip_status) == (Verdict.BLOCK, 403)
    d = run(snap, call("13900009999", "ic-1"))
    assert (d.verdict, d.label) == (Verdict.WARN, "谨防诈骗")


def test_label_shadow_and_off(make_policy: MakePolicy) -> None:
    d = run(make_policy("rules:\n  label.fraud: {mode: shadow}\n"), call("13900009999", "ic-1"))
    assert d.verdict is Verdict.PASS
    assert d.shadow_hits[0].rule == "label.fraud"
    assert d.shadow_hits[0].verdict is Verdict.BLOCK
    d = run(make_policy("rules:\n  label.fraud: {mode: off}\n"), call("13900009999", "ic-1"))
    assert d.verdict is Verdict.PASS
    assert all(not r.rule.startswith("label.") for r in d.trail)


def test_min_confidence_drops_weak_labels(make_policy: MakePolicy) -> None:
    snap = make_policy(  # BASE ends inside `labels:`, so these items extend it
        "  - {number: '13800001234', category: fraud, confidence: 0.4}\n"
        "  - {number: '13800004321', category: fraud, confidence: 0.6}\n"
        "defaults: {label_min_confidence: 0.5}\n"
    )
    assert run(snap, call("13800001234", "ic-1")).verdict is Verdict.PASS
    assert run(snap, call("13800004321", "ic-1")).verdict is Verdict.BLOCK


@pytest.mark.parametrize("trunk", ["ent-1", None])
def test_block_beats_warn_label(policy: PolicySnapshot, trunk: str | None) -> None:
    # 02088887777 is labelled (warn) but on cc-1/unknown trunks another rule blocks.
    d = run(policy, call("02088887777", "cc-1" if trunk else None))
    assert d.verdict is Verdict.BLOCK
    assert any(r.rule == "label.harassment" and r.fired for r in d.trail)

"""The ledger overlay on a policy snapshot, and rule credit.blacklisted (pure)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from fs_plugin.policy import CustomerStatus, PolicySnapshot, load_policy
from fs_plugin.policy.catalogue import RULES, LabelCategory
from fs_plugin.policy.overlay import (
    LedgerCustomer,
    LedgerLabel,
    LedgerSnapshot,
    LedgerState,
    apply_ledger,
    base_of,
    licence_expiry,
    next_change,
)
from fs_plugin.screening import decide
from fs_plugin.screening.model import CallFacts, Verdict

POLICY = """
trunks:
  - id: ent-1
    kind: enterprise
    customer: acme
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: ent-2
    kind: enterprise
    customer: acme
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: ent-b
    kind: enterprise
    customer: bravo
    caller_ids: {ranges: ["02077770000-02077779999"]}
customers:
  - id: acme
  - id: bravo
labels:
  - {number: "13500005555", category: telemarketing, label: "广告推销"}
"""

#: 2026-12-15 04:00 UTC = 12:00 in Asia/Shanghai (the policy's default zone).
NOW = dt.datetime(2026, 12, 15, 4, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def policy(tmp_path: Path) -> PolicySnapshot:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path)


def call(trunk: str, caller: str = "02088881234", callee: str = "13800138000") -> CallFacts:
    return CallFacts(uuid="u-1", from_user=caller, destination=callee, trunk_hint=trunk)


def test_credit_blacklisted_is_an_implemented_rule() -> None:
    spec = RULES["credit.blacklisted"]
    assert spec.implemented and spec.verdict is Verdict.BLOCK


def test_expired_qualification_suspends_every_trunk_of_the_customer(
    policy: PolicySnapshot,
) -> None:
    state = LedgerState(customers={
        "acme": LedgerCustomer("acme", licence_until=dt.date(2026, 12, 14)),
        "bravo": LedgerCustomer("bravo", licence_until=dt.date(2026, 12, 15)),
    })
    snap = apply_ledger(policy, state, now=NOW)
    assert snap.customers["acme"].status is CustomerStatus.SUSPENDED
    assert snap.customers["bravo"].status is CustomerStatus.ACTIVE  # valid through today
    for trunk in ("ent-1", "ent-2"):
        d = decide(call(trunk), snap, now=NOW)
        assert d.verdict is Verdict.BLOCK and d.rule == "contract.suspended"
        assert "qualification expired 2026-12-14" in d.reason
    assert decide(call("ent-b", "02077771234"), snap, now=NOW).verdict is Verdict.PASS
    # The input snapshot is untouched (pure overlay).
    assert policy.customers["acme"].status is CustomerStatus.ACTIVE
    assert decide(call("ent-1"), policy, now=NOW).verdict is Verdict.PASS


def test_licence_runs_through_its_last_day_in_the_policy_zone(policy: PolicySnapshot) -> None:
    state = LedgerState(customers={
        "bravo": LedgerCustomer("bravo", licence_until=dt.date(2026, 12, 15))})
    end = licence_expiry(dt.date(2026, 12, 15), "Asia/Shanghai")
    assert end == dt.datetime(2026, 12, 15, 16, tzinfo=dt.UTC).timestamp()
    assert next_change(policy, state, now=NOW) == end
    assert apply_ledger(policy, state, now=end - 1).customers["bravo"].status.value == "active"
    assert apply_ledger(policy, state, now=end).customers["bravo"].status.value == "suspended"
    assert next_change(policy, state, now=end) is None


def test_ledger_status_suspends_but_never_reactivates(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace("  - id: bravo", "  - id: bravo\n    status: terminated"),
                    encoding="utf-8")
    policy = load_policy(path)
    state = LedgerState(customers={
        "acme": LedgerCustomer("acme", status=CustomerStatus.TERMINATED),
        "bravo": LedgerCustomer("bravo", status=CustomerStatus.ACTIVE),
    })
    snap = apply_ledger(policy, state, now=NOW)
    assert snap.customers["acme"].status is CustomerStatus.TERMINATED
    assert snap.customers["bravo"].status is CustomerStatus.TERMINATED


def test_blacklisted_customer_is_blocked_on_every_trunk(policy: PolicySnapshot) -> None:
    state = LedgerState(blacklisted={"acme": "3 violations in 90 days", "ghost": "x"})
    snap = apply_ledger(policy, state, now=NOW)
    assert dict(snap.blacklisted) == {"acme": "3 violations in 90 days"}
    for trunk in ("ent-1", "ent-2"):
        d = decide(call(trunk), snap, now=NOW)
        assert d.verdict is Verdict.BLOCK and d.rule == "credit.blacklisted"
        assert "3 violations in 90 days" in d.reason
    assert decide(call("ent-b", "02077771234"), snap, now=NOW).verdict is Verdict.PASS
    # Without the overlay the rule never fires: it is evaluated and idle.
    d = decide(call("ent-1"), policy, now=NOW)
    assert any(r.rule == "credit.blacklisted" and not r.fired for r in d.trail)


def test_blacklist_in_shadow_mode_is_recorded_not_enforced(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY + "rules:\n  credit.blacklisted: {mode: shadow}\n", encoding="utf-8")
    snap = apply_ledger(load_policy(path), LedgerState(blacklisted={"acme": "x"}), now=NOW)
    d = decide(call("ent-1"), snap, now=NOW)
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["credit.blacklisted"]


def test_complaint_labels_join_but_policy_labels_win(policy: PolicySnapshot) -> None:
    state = LedgerState(labels=(
        LedgerLabel("13700007777", LabelCategory.HARASSMENT, confidence=0.5),
        LedgerLabel("+8613500005555", LabelCategory.FRAUD),  # the policy labels it
        LedgerLabel("13600006666", LabelCategory.FRAUD, expires_at=NOW - 1),
    ))
    snap = apply_ledger(policy, state, now=NOW)
    assert snap.labels["13700007777"].rule == "label.harassment"
    assert snap.labels["13700007777"].source == "12321"
    assert snap.labels["13500005555"].category is LabelCategory.TELEMARKETING
    assert "13600006666" not in snap.labels
    d = decide(call("ent-1", callee="13800138000", caller="02088881234"), snap, now=NOW)
    assert d.verdict is Verdict.PASS
    warned = decide(CallFacts(uuid="u", from_user="13700007777", destination="13800138000",
                              trunk_hint="ic"), snap, now=NOW)
    assert any(r.rule == "label.harassment" and r.fired for r in warned.trail)


def test_reapplying_starts_from_the_yaml_snapshot(policy: PolicySnapshot) -> None:
    first = apply_ledger(policy, LedgerState(blacklisted={"acme": "x"}), now=NOW)
    second = apply_ledger(first, LedgerState(), now=NOW)
    assert isinstance(second, LedgerSnapshot)
    assert base_of(second) is policy and not second.blacklisted
    assert second.version.startswith(policy.version + "+L")
    assert first.ledger_version != second.ledger_version
    assert LedgerState(blacklisted={"a": "x"}).version == LedgerState(
        blacklisted={"a": "x"}).version
    assert dataclasses.replace(second, version="v").base is policy

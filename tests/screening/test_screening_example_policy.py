"""The example policy in policies/ gives the demo numbers their expected verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, Verdict, decide

REPO = Path(__file__).resolve().parents[2]
NOW = 1_780_272_000.0  # 2026-06-01


@pytest.fixture(scope="module")
def example() -> PolicySnapshot:
    return load_policy(REPO / "policies")


P, W, B = Verdict.PASS, Verdict.WARN, Verdict.BLOCK

CASES = [
    # (from, pai, how the trunk is matched, verdict, rule, sip status)
    ("02088886666", "02088886666", {"trunk_hint": "ent-1"}, P, None, None),
    ("02088880000", None, {"trunk_hint": "ent-1"}, P, None, None),
    ("4008123123", None, {"trunk_hint": "ent-1"}, P, None, None),
    ("02088887777", None, {"trunk_hint": "ent-1"}, W, "label.harassment", None),
    ("02088876666", None, {"trunk_hint": "ent-1"}, B, "cid.not_allowed", 607),
    ("02088886666", "13900001111", {"trunk_hint": "ent-1"}, B, "cid.not_allowed", 607),
    ("anonymous", None, {"trunk_hint": "ent-1"}, B, "cid.malformed", 607),
    ("1065502012345", None, {"trunk_hint": "ent-1"}, B, "cid.malformed", 607),
    ("089866661234", None, {"gateway": "gw-nanhai"}, W, "label.real_estate", None),
    ("02088770001", None, {"trunk_hint": "ent-suspended"}, B, "contract.suspended", 603),
    ("95566", None, {"trunk_hint": "cc-1"}, P, None, None),
    ("13912345678", None, {"trunk_hint": "cc-1"}, B, "cid.subscriber_number_as_business", 607),
    ("96961234", None, {"sofia_profile": "callcentre-b"}, P, None, None),
    ("+14155550100", None, {"gateway": "intl-gw"}, P, None, None),
    ("+8613900001111", None, {"gateway": "intl-gw"}, B, "cid.fake_plus86", 603),
    ("02088886666", None, {"network_ip": "198.51.100.20"}, B, "cid.fake_plus86", 603),
    ("13900001111", None, {"network_ip": "203.0.113.9"}, P, None, None),
    ("13900009999", None, {"network_ip": "203.0.113.9"}, B, "label.fraud", 603),
    ("13711112222", None, {"sofia_profile": "interconnect-b"}, B, "label.fraud", 603),
    ("anonymous", None, {"sofia_profile": "interconnect-b"}, P, None, None),
    ("13500005555", None, {"trunk_hint": "ic-1"}, P, None, None),  # shadow label rule
    ("13600006666", None, {"trunk_hint": "ic-1"}, P, None, None),  # expired label
    ("13700007777", None, {"trunk_hint": "ic-1"}, P, None, None),  # low-confidence label
    ("13900001111", None, {"trunk_hint": "nowhere"}, B, "trunk.unknown", 603),
]


@pytest.mark.parametrize(("from_user", "pai", "where", "verdict", "rule", "status"), CASES)
def test_demo_numbers(example: PolicySnapshot, from_user: str, pai: str | None,
                      where: dict[str, str], verdict: Verdict, rule: str | None,
                      status: int | None) -> None:
    f = CallFacts("u", from_user, "13900002222", pai=pai, **where)  # type: ignore[arg-type]
    d = decide(f, example, now=NOW)
    assert (d.verdict, d.rule, d.sip_status) == (verdict, rule, status), d.reason


def test_demo_warn_label_text(example: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "02088887777", "1", trunk_hint="ent-1"), example, now=NOW)
    assert d.label == "疑似骚扰:房产中介"


def test_demo_shadow_label_is_recorded(example: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "13500005555", "1", trunk_hint="ic-1"), example, now=NOW)
    assert [(r.rule, r.verdict) for r in d.shadow_hits] == [("label.telemarketing", B)]

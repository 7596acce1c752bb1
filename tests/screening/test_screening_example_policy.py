"""The example policy in policies/ gives the demo numbers their expected verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from screening_counted import Counted

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
async def test_demo_numbers(example: PolicySnapshot, from_user: str, pai: str | None,
                            where: dict[str, str], verdict: Verdict, rule: str | None,
                            status: int | None) -> None:
    # Through the counter protocol, as the controller runs it.
    f = CallFacts("u", from_user, "13900002222", pai=pai, **where)  # type: ignore[arg-type]
    d = await Counted(example, NOW).call(f)
    assert (d.verdict, d.rule, d.sip_status) == (verdict, rule, status), d.reason


# Without a counter store the verdicts stay the same on on_error: pass trunks; ent-2
# (on_error: block) needs counters for pattern.* and is refused instead.
NO_STORE = [c if c[2] != {"gateway": "gw-nanhai"}
            else (*c[:3], B, "system.counters_unavailable", 503) for c in CASES]


@pytest.mark.parametrize(("from_user", "pai", "where", "verdict", "rule", "status"), NO_STORE)
def test_demo_numbers_without_counter_store(
    example: PolicySnapshot, from_user: str, pai: str | None, where: dict[str, str],
    verdict: Verdict, rule: str | None, status: int | None,
) -> None:
    f = CallFacts("u", from_user, "13900002222", pai=pai, **where)  # type: ignore[arg-type]
    d = decide(f, example, now=NOW)
    assert (d.verdict, d.rule, d.sip_status) == (verdict, rule, status), d.reason


def test_demo_warn_label_text(example: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "02088887777", "1", trunk_hint="ent-1"), example, now=NOW)
    assert d.label == "疑似骚扰:房产中介"


def test_demo_shadow_label_is_recorded(example: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "13500005555", "1", trunk_hint="ic-1"), example, now=NOW)
    assert [(r.rule, r.verdict) for r in d.shadow_hits] == [("label.telemarketing", B)]


# -- the marketing trunk mkt-1 (contracts.yaml, data/*.csv) ---------------------------

MON_10 = 1_780_279_200.0  # 2026-06-01 10:00 Asia/Shanghai, a Monday
SAT_10 = MON_10 + 5 * 86400
MON_21 = MON_10 + 11 * 3600

MKT_CASES = [
    # (callee, when, verdict, rule)
    ("13907551234", MON_10, P, None),                      # consented Hainan mobile
    ("089866661111", MON_10, P, None),                     # consented Haikou fixed line
    ("13907551234", SAT_10, B, "contract.hours"),
    ("13907551234", MON_21, B, "contract.hours"),
    ("13900001111", MON_10, B, "contract.targets"),        # Urumqi: outside Hainan
    ("13907559999", MON_10, B, "consent.dnc"),             # global DNC despite consent
    ("13907550000", MON_10, B, "consent.dnc"),             # refused haikou-homes
    ("18976543211", MON_10, B, "consent.required"),        # Hainan, but no consent
]


@pytest.mark.parametrize(("callee", "when", "verdict", "rule"), MKT_CASES)
async def test_marketing_trunk(example: PolicySnapshot, callee: str, when: float,
                               verdict: Verdict, rule: str | None) -> None:
    f = CallFacts("u", "089866880001", callee, trunk_hint="mkt-1")
    d = await Counted(example, when).call(f)
    assert (d.verdict, d.rule) == (verdict, rule), d.reason


async def test_marketing_trunk_caller_cap(example: PolicySnapshot) -> None:
    c = Counted(example, MON_10)
    rules = []
    for i, callee in enumerate(["13907551234", "18976543210", "089866661111"] * 2):
        d = await c.call(CallFacts(f"u{i}", "089866880001", callee, trunk_hint="mkt-1"))
        rules.append(d.rule)
    # pair per_day 1: the second round to the same people is refused. Calls refused by
    # one cap still count on the others (one round trip): the 6th is the caller's 6th
    # in the minute (cap 5). region.strict (Hainan, shadow) would have refused from the
    # 3rd call (factor 0.5 of 5 per minute).
    assert rules == [None, None, None, "rate.pair", "rate.pair", "rate.caller"]
    assert [r.rule for r in d.shadow_hits] == ["region.strict"]


def test_marketing_trunk_without_counters_is_refused(example: PolicySnapshot) -> None:
    f = CallFacts("u", "089866880001", "13907551234", trunk_hint="mkt-1")
    d = decide(f, example, now=MON_10)
    assert (d.rule, d.sip_status) == ("system.counters_unavailable", 503)


@pytest.mark.parametrize(("caller", "verdict", "rule", "label"), [
    ("18912345678", B, "label.fraud", None),          # from data/labels-12321.csv
    ("13922223333", W, "label.harassment", "骚扰电话"),
    ("13911112222", P, None, None),                   # CSV confidence 0.5 < 0.6
])
def test_csv_labels(example: PolicySnapshot, caller: str, verdict: Verdict, rule: str | None,
                    label: str | None) -> None:
    d = decide(CallFacts("u", caller, "13900002222", trunk_hint="ic-1"), example, now=NOW)
    assert (d.verdict, d.rule) == (verdict, rule)
    if label:
        assert d.label == label


def test_yaml_label_wins_over_csv(example: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "02088887777", "1", trunk_hint="ent-1"), example, now=NOW)
    assert (d.rule, d.label) == ("label.harassment", "疑似骚扰:房产中介")

"""cid.* rules: fires, does not fire, shadow does not enforce, off skips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fs_plugin.policy import PolicySnapshot
from fs_plugin.screening import CallFacts, Decision, Mode, Verdict, decide

MakePolicy = Callable[[str], PolicySnapshot]
NOW = 1_780_272_000.0


def call(from_user: str, trunk: str | None = "ent-1", **kw: str) -> CallFacts:
    return CallFacts("u1", from_user, "13900002222", trunk_hint=trunk, **kw)  # type: ignore[arg-type]


def run(snap: PolicySnapshot, f: CallFacts) -> Decision:
    return decide(f, snap, now=NOW)


def fired(d: Decision) -> list[str]:
    return [r.rule for r in d.trail if r.fired]


# -- cid.malformed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_user", "pai", "field"),
    [
        ("abc", None, "From"),
        ("1390000111", None, "From"),  # too short
        ("02088880000", "0999x", "P-Asserted-Identity"),
        ("1065502012345", None, "From"),  # SMS port as a voice caller ID
        ("+86", None, "From"),
    ],
)
def test_malformed_fires(policy: PolicySnapshot, from_user: str, pai: str | None,
                         field: str) -> None:
    d = run(policy, call(from_user, "ic-1", pai=pai) if pai else call(from_user, "ic-1"))
    assert d.verdict is Verdict.BLOCK
    assert d.rule == "cid.malformed"
    assert d.cause == "UNWANTED"
    assert d.sip_status == 607
    assert d.reason.startswith(field)


@pytest.mark.parametrize(
    "from_user", ["13900001111", "+8613900001111", "02088886666", "95555", "4008123123",
                  "10086", "+14155550100", "sip:02088886666@192.0.2.1"],
)
def test_malformed_does_not_fire_on_valid_numbers(policy: PolicySnapshot, from_user: str) -> None:
    d = run(policy, call(from_user, "ic-1"))
    assert "cid.malformed" not in fired(d)
    assert d.verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("trunk", "verdict"),
    [("ent-1", Verdict.BLOCK), ("cc-1", Verdict.BLOCK), ("ic-1", Verdict.PASS),
     ("intl-gw", Verdict.PASS), ("ent-anon", Verdict.PASS), ("ic-strict", Verdict.BLOCK)],
)
def test_anonymous_is_a_choice_per_trunk(policy: PolicySnapshot, trunk: str,
                                         verdict: Verdict) -> None:
    d = run(policy, call("anonymous", trunk))
    assert d.verdict is verdict
    if verdict is Verdict.BLOCK:
        assert d.rule == "cid.malformed"
        assert "anonymous" in d.reason


def test_anonymous_pass_trunk_still_checks_pai(policy: PolicySnapshot) -> None:
    d = run(policy, call("anonymous", "ent-anon", pai="13900007777"))
    assert d.rule == "cid.not_allowed"
    assert "P-Asserted-Identity" in d.reason


def test_malformed_shadow_and_off(make_policy: MakePolicy) -> None:
    shadow = make_policy("rules:\n  cid.malformed: {mode: shadow}\n")
    d = run(shadow, call("abc", "ic-1"))
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["cid.malformed"]
    off = make_policy("rules:\n  cid.malformed: {mode: off}\n")
    d = run(off, call("abc", "ic-1"))
    assert d.verdict is Verdict.PASS
    assert "cid.malformed" not in [r.rule for r in d.trail]


# -- cid.fake_plus86 -------------------------------------------------------------


@pytest.mark.parametrize(
    "from_user", ["+8613900001111", "008613900001111", "8613900001111", "13900001111",
                  "02088886666", "+862088886666", "4008123123"],
)
def test_fake_plus86_fires_on_international_trunk(policy: PolicySnapshot, from_user: str) -> None:
    d = run(policy, call(from_user, None, gateway="intl-gw"))
    assert d.verdict is Verdict.BLOCK
    assert d.rule == "cid.fake_plus86"
    assert d.trunk == "intl-gw"
    assert (d.cause, d.sip_status) == ("UNWANTED", 607)  # the cid.* family default


def test_fake_plus86_pai_and_not_on_other_trunks(policy: PolicySnapshot) -> None:
    d = run(policy, call("+14155550100", "intl-gw", pai="+8613900001111"))
    assert d.rule == "cid.fake_plus86"
    assert "P-Asserted-Identity" in d.reason
    assert run(policy, call("+14155550100", "intl-gw")).verdict is Verdict.PASS
    assert "cid.fake_plus86" not in fired(run(policy, call("+8613900001111", "ic-1")))


def test_fake_plus86_shadow(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  cid.fake_plus86: {mode: shadow}\n")
    d = run(snap, call("+8613900001111", "intl-gw"))
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["cid.fake_plus86"]


# -- cid.not_allowed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("trunk", "from_user", "pai"),
    [("ent-1", "02088880000", None), ("ent-1", "02088889999", "02088880001"),
     ("ent-1", "+862088885555", None), ("ent-1", "4008123123", None),
     ("ent-1", "sip:02088881234@192.0.2.9;user=phone", None), ("cc-1", "95566", None),
     ("cc-1", "02066660005", None), ("ent-nopai", "02088880001", "13900007777")],
)
def test_not_allowed_passes_allowed_numbers(policy: PolicySnapshot, trunk: str, from_user: str,
                                            pai: str | None) -> None:
    d = run(policy, call(from_user, trunk, pai=pai) if pai else call(from_user, trunk))
    assert d.verdict is Verdict.PASS, d.reason


@pytest.mark.parametrize(
    ("from_user", "pai", "field"),
    [("02088870000", None, "From"), ("02088890000", None, "From"),
     ("02088880001", "02088870000", "P-Asserted-Identity"),
     ("4008123124", None, "From")],
)
def test_not_allowed_fires_and_names_the_field(policy: PolicySnapshot, from_user: str,
                                               pai: str | None, field: str) -> None:
    d = run(policy, call(from_user, "ent-1", pai=pai) if pai else call(from_user, "ent-1"))
    assert (d.verdict, d.rule, d.sip_status) == (Verdict.BLOCK, "cid.not_allowed", 607)
    assert d.reason.startswith(field)
    assert "ent-1" in d.reason


def test_not_allowed_checks_diversion_only_when_asked(policy: PolicySnapshot) -> None:
    div = "<sip:13900007777@192.0.2.1>;reason=unconditional"
    d = run(policy, call("02088880001", "ent-div", diversion=div))
    assert d.rule == "cid.not_allowed"
    assert d.reason.startswith("Diversion")
    ok = "<sip:02088880002@192.0.2.1>;reason=unconditional,<sip:13900007777@h>;reason=busy"
    assert run(policy, call("02088880001", "ent-div", diversion=ok)).verdict is Verdict.PASS
    assert run(policy, call("02088880001", "ent-1", diversion=div)).verdict is Verdict.PASS


def test_a_comma_in_a_quoted_diversion_name_does_not_split_the_entry(
    policy: PolicySnapshot,
) -> None:
    # The display name "Zhang, San" used to end the first entry at its comma: the number
    # came out empty and an allowed redirection was blocked as cid.not_allowed.
    named = '"Zhang, San" <sip:02088880002@192.0.2.1>;reason=unconditional'
    assert run(policy, call("02088880001", "ent-div", diversion=named)).verdict is Verdict.PASS
    two = named + ',"Li, Si" <sip:13900007777@h>;reason=busy'
    assert run(policy, call("02088880001", "ent-div", diversion=two)).verdict is Verdict.PASS
    spoofed = '"Zhang, San" <sip:13900007777@192.0.2.1>;reason=unconditional'
    d = run(policy, call("02088880001", "ent-div", diversion=spoofed))
    assert d.rule == "cid.not_allowed" and "13900007777" in d.reason


def test_not_allowed_ignores_other_trunk_kinds(policy: PolicySnapshot) -> None:
    for trunk in ("ic-1", "intl-gw"):
        d = run(policy, call("+14155550100", trunk))
        assert "cid.not_allowed" not in fired(d)


def test_not_allowed_shadow_and_off(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  cid.not_allowed: {mode: shadow}\n")
    d = run(snap, call("02088870000"))
    assert d.verdict is Verdict.PASS
    assert d.shadow_hits[0].rule == "cid.not_allowed"
    assert d.shadow_hits[0].mode is Mode.SHADOW
    assert "cid.not_allowed" in d.reason  # the pass reason lists shadow hits
    snap = make_policy("rules:\n  cid.not_allowed: {mode: off}\n")
    d = run(snap, call("02088870000"))
    assert d.verdict is Verdict.PASS
    assert "cid.not_allowed" not in [r.rule for r in d.trail]


def test_not_allowed_custom_cause(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  cid.not_allowed: {cause: INCOMING_CALL_BARRED}\n")
    d = run(snap, call("02088870000"))
    assert (d.cause, d.sip_status) == ("INCOMING_CALL_BARRED", 403)


# -- cid.subscriber_number_as_business ------------------------------------------------


@pytest.mark.parametrize(
    ("from_user", "pai", "what"),
    [("13900001111", None, "mobile"),  # allowed on the trunk, still a subscriber number
     ("02066660050", None, "fixed-line"),  # allowed, but not a registered business number
     ("95566", "13900001111", "mobile")],
)
def test_subscriber_number_as_business_fires(policy: PolicySnapshot, from_user: str,
                                             pai: str | None, what: str) -> None:
    d = run(policy, call(from_user, "cc-1", pai=pai) if pai else call(from_user, "cc-1"))
    assert (d.verdict, d.rule) == (Verdict.BLOCK, "cid.subscriber_number_as_business")
    assert what in d.reason
    assert d.sip_status == 607


def test_subscriber_number_rule_reported_before_not_allowed(policy: PolicySnapshot) -> None:
    d = run(policy, call("13700001234", "cc-1"))
    assert fired(d) == ["cid.subscriber_number_as_business", "cid.not_allowed"]
    assert d.rule == "cid.subscriber_number_as_business"


@pytest.mark.parametrize("from_user", ["95566", "4008200200", "02066660003"])
def test_subscriber_number_as_business_passes_business_numbers(policy: PolicySnapshot,
                                                               from_user: str) -> None:
    assert run(policy, call(from_user, "cc-1")).verdict is Verdict.PASS


def test_subscriber_number_only_on_call_centres(policy: PolicySnapshot) -> None:
    d = run(policy, call("13900001111", "ic-1"))
    assert "cid.subscriber_number_as_business" not in fired(d)


def test_subscriber_number_shadow(make_policy: MakePolicy) -> None:
    snap = make_policy("rules:\n  cid.subscriber_number_as_business: {mode: shadow}\n")
    d = run(snap, call("13900001111", "cc-1"))
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["cid.subscriber_number_as_business"]

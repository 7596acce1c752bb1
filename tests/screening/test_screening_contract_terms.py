"""contract.hours, contract.targets, consent.dnc and consent.required (pure rules)."""

from __future__ import annotations

import datetime as dt
import textwrap
import zoneinfo
from pathlib import Path

import pytest

from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, Decision, Verdict, decide

POLICY = """
trunks:
  - id: mkt
    kind: enterprise
    customer: homes
    marketing: true
    caller_ids: {ranges: ["089866880000-089866880099"]}
  - id: mkt-ny
    kind: enterprise
    customer: homes
    timezone: America/New_York
    caller_ids: {ranges: ["089866880000-089866880099"]}
  - id: biz
    kind: enterprise
    customer: promo
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: plain
    kind: enterprise
    customer: plain
    caller_ids: {ranges: ["02088880000-02088889999"]}
customers:
  - id: homes
    industry: real_estate
    contract:
      hours:
        windows: ["09:00-12:00", "14:00-20:00"]
        weekdays: [mon, tue, wed, thu, fri]
        holidays: cal.csv
      targets:
        classes: [mobile, fixed]
        regions: ["0898", 海南, 广东]
        exclude_regions: [广州]
      consent:
        whitelist: [consent.csv]
        dnc: [dnc-homes.csv]
  - id: promo
    industry: medical
    business_type: marketing
  - id: plain
    industry: medical
industries:
  medical:
    hours: {windows: ["22:00-06:00"]}
    targets: {classes: [mobile]}
lists:
  dnc: [dnc.csv]
"""

FILES = {
    "cal.csv": """\
        date,kind,name
        2026-06-19,holiday,端午节
        2026-06-20,holiday,端午节
        2026-06-21,holiday,端午节
        2026-06-28,workday,调休
        """,
    "consent.csv": """\
        number,evidence,date
        13907551234,REC-1,2026-03-02
        13907550000,REC-2,2026-03-02
        089866661111,PAPER-7,2026-04-20
        """,
    "dnc-homes.csv": "number,date\n13907550000,2026-05-12\n",
    "dnc.csv": "# national\nnumber,date\n13907559999,2026-05-20\n13800138000,2026-01-01\n",
}

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, tz: zoneinfo.ZoneInfo = SHANGHAI) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


@pytest.fixture
def snap(tmp_path: Path) -> PolicySnapshot:
    for name, text in FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    return load_policy(tmp_path)


def run(snap: PolicySnapshot, now: float, callee: str = "13907551234", trunk: str = "mkt",
        caller: str = "089866880001") -> Decision:
    return decide(CallFacts("u", caller, callee, trunk_hint=trunk), snap, now=now)


# -- contract.hours ------------------------------------------------------------------


@pytest.mark.parametrize(("when", "ok"), [
    ((2026, 6, 1, 9, 0), True),     # Monday 09:00: the window opens (inclusive)
    ((2026, 6, 1, 8, 59), False),
    ((2026, 6, 1, 11, 59), True),
    ((2026, 6, 1, 12, 0), False),   # end exclusive: lunch break
    ((2026, 6, 1, 14, 0), True),
    ((2026, 6, 1, 19, 59), True),
    ((2026, 6, 1, 20, 0), False),
    ((2026, 6, 6, 10, 0), False),   # Saturday
    ((2026, 6, 19, 10, 0), False),  # Friday, Dragon Boat holiday
    ((2026, 6, 28, 10, 0), True),   # Sunday, make-up workday
])
def test_hours_windows_weekdays_holidays(snap: PolicySnapshot, when: tuple[int, ...],
                                         ok: bool) -> None:
    d = run(snap, at(*when))
    assert (d.rule != "contract.hours") is ok, d.reason
    if not ok:
        assert d.verdict is Verdict.BLOCK and d.sip_status == 603


def test_hours_reason_names_local_time_and_terms(snap: PolicySnapshot) -> None:
    d = run(snap, at(2026, 6, 19, 10, 0))
    assert d.reason == (
        "2026-06-19 10:00 Asia/Shanghai is a public holiday: customer homes may call "
        "09:00-12:00, 14:00-20:00 mon-fri, not on public holidays (contract)")
    d = run(snap, at(2026, 6, 6, 10, 0))
    assert "is a Saturday" in d.reason


def test_hours_use_the_trunk_time_zone(snap: PolicySnapshot) -> None:
    # 10:00 in New York is 22:00 in Shanghai: fine on mkt-ny, outside on mkt.
    now = at(2026, 6, 1, 10, 0, zoneinfo.ZoneInfo("America/New_York"))
    assert run(snap, now, trunk="mkt").rule == "contract.hours"
    assert run(snap, now, trunk="mkt-ny").rule != "contract.hours"


def test_window_across_midnight_from_the_industry(snap: PolicySnapshot) -> None:
    assert run(snap, at(2026, 6, 1, 23, 0), trunk="plain", caller="02088880001",
               callee="13900001111").verdict is Verdict.PASS
    assert run(snap, at(2026, 6, 2, 5, 59), trunk="plain", caller="02088880001",
               callee="13900001111").verdict is Verdict.PASS
    d = run(snap, at(2026, 6, 2, 6, 0), trunk="plain", caller="02088880001",
            callee="13900001111")
    assert d.rule == "contract.hours" and "(industry medical)" in d.reason


def test_hours_with_a_timestamp_out_of_range_is_not_evaluated(snap: PolicySnapshot) -> None:
    d = run(snap, 1e20)
    hours = next(r for r in d.trail if r.rule == "contract.hours")
    assert not hours.fired and hours.reason.startswith("not evaluated")


def test_holiday_file_in_yaml(tmp_path: Path) -> None:
    # In a subdirectory: every *.yaml directly in the policy directory is a policy file.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cal.yaml").write_text(
        "holidays: [2026-06-01]\nworkdays: [2026-06-07]\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        trunks: [{id: t, kind: interconnect, customer: c}]
        customers:
          - id: c
            contract: {hours: {weekdays: [mon, tue, wed, thu, fri], holidays: data/cal.yaml}}
        """), encoding="utf-8")
    s = load_policy(tmp_path)
    assert run(s, at(2026, 6, 1, 10), trunk="t").rule == "contract.hours"   # holiday
    assert run(s, at(2026, 6, 7, 10), trunk="t").verdict is Verdict.PASS     # Sunday workday
    assert run(s, at(2026, 6, 2, 10), trunk="t").verdict is Verdict.PASS


# -- contract.targets ----------------------------------------------------------------

MON_10 = at(2026, 6, 1, 10, 0)


@pytest.mark.parametrize(("callee", "fires", "why"), [
    ("13907551234", False, ""),                     # Haikou mobile: 海南
    ("089866661111", False, ""),                    # Haikou fixed: 0898
    ("13900001111", True, "outside the regions"),   # Urumqi mobile
    ("02088886666", True, "(020) is in 广州, which customer homes may not call"),
    ("075566660001", False, ""),                    # Shenzhen: in 广东, not in 广州
    ("4008123123", True, "toll_free number"),
    ("95566", True, "service number"),
    ("abc", True, "not a valid number"),
])
def test_targets_classes_and_regions(snap: PolicySnapshot, callee: str, fires: bool,
                                     why: str) -> None:
    d = decide(CallFacts("u", "089866880001", callee, trunk_hint="mkt"), snap, now=MON_10)
    result = next(r for r in d.trail if r.rule == "contract.targets")
    assert result.fired is fires, result.reason
    assert why in result.reason


def test_targets_region_names_match_mobile_attribution(snap: PolicySnapshot) -> None:
    d = decide(CallFacts("u", "089866880001", "13922223333", trunk_hint="mkt"), snap,
               now=MON_10)  # a Guangzhou mobile: attribution 广东省广州市
    result = next(r for r in d.trail if r.rule == "contract.targets")
    assert result.fired and "is in 广州" in result.reason


def test_strip_prefix_is_removed_before_the_callee_is_judged(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        trunks: [{id: t, kind: interconnect, customer: c, strip_prefix: "17909"}]
        customers: [{id: c, contract: {targets: {classes: [mobile]}}}]
        """), encoding="utf-8")
    s = load_policy(tmp_path)
    assert decide(CallFacts("u", "13800138000", "1790913900001111", trunk_hint="t"), s,
                  now=MON_10).verdict is Verdict.PASS
    assert decide(CallFacts("u", "13800138000", "1790902088886666", trunk_hint="t"), s,
                  now=MON_10).rule == "contract.targets"


# -- consent -------------------------------------------------------------------------


@pytest.mark.parametrize(("callee", "rule", "why"), [
    ("13907551234", None, ""),                                  # consented
    ("089866661111", None, ""),
    ("13907550000", "consent.dnc", "refused calls from customer homes"),  # consent, refused
    ("13907559999", "consent.dnc", "global do-not-call list dnc.csv"),
    ("13907551111", "consent.required", "not on customer homes's consent whitelist"),
])
def test_consent_on_marketing_trunk(snap: PolicySnapshot, callee: str, rule: str | None,
                                    why: str) -> None:
    d = run(snap, MON_10, callee=callee)
    assert d.rule == rule, d.reason
    assert why in d.reason


def test_marketing_customer_without_whitelist_may_call_no_one(snap: PolicySnapshot) -> None:
    # promo's business_type is marketing: consent applies on its (non-marketing) trunk.
    d = run(snap, at(2026, 6, 1, 23, 0), trunk="biz", caller="02088880001",
            callee="13900001111")
    assert d.rule == "consent.required" and "has no consent whitelist" in d.reason
    d = run(snap, at(2026, 6, 1, 23, 0), trunk="biz", caller="02088880001",
            callee="13800138000")
    assert d.rule == "consent.dnc"


def test_consent_does_not_apply_to_non_marketing_calls(snap: PolicySnapshot) -> None:
    d = run(snap, at(2026, 6, 1, 23, 0), trunk="plain", caller="02088880001",
            callee="13800138000")  # on the global DNC, but not a marketing call
    assert d.verdict is Verdict.PASS


def test_consent_rules_in_shadow_never_enforce(tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        POLICY + "rules:\n  consent.dnc: {mode: shadow}\n  consent.required: {mode: shadow}\n"
        "  contract.hours: {mode: shadow}\n  contract.targets: {mode: shadow}\n",
        encoding="utf-8")
    s = load_policy(tmp_path)
    d = run(s, at(2026, 6, 6, 3, 0), callee="13907559999")
    assert d.verdict is Verdict.PASS
    assert [r.rule for r in d.shadow_hits] == ["contract.hours", "consent.dnc",
                                               "consent.required"]

"""A ledger contract's caps, hours and targets, and the ledger's number resources, laid
over the policy (``apply_ledger``) and screened through the real counter protocol."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from screening_counted import MONDAY_10AM, Counted, outcome

from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.policy.models import Caps, Hours, Targets, Weekday, Window
from fs_plugin.policy.overlay import LedgerContract, LedgerState, apply_ledger, next_change
from fs_plugin.screening import CallFacts, Verdict, decide

POLICY = """
trunks:
  - id: t1
    kind: enterprise
    customer: c1
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: t2
    kind: enterprise
    customer: c2
    caller_ids: {ranges: ["02077770000-02077779999"]}
  - id: t3
    kind: enterprise
    customer: c1
    caller_ids: {ranges: ["02088880000-02088889999"], ledger: false}
  - id: cc
    kind: call_centre
    customer: c3
    caller_ids: {prefixes: ["0"]}
customers:
  - id: c1
    industry: finance
    contract:
      caps:
        caller: {per_minute: 3}
  - id: c2
  - id: c3
industries:
  finance:
    hours: {windows: ["08:00-20:00"]}
"""

MONDAY = dt.date(2026, 6, 1)  # MONDAY_10AM's day, Asia/Shanghai


@pytest.fixture
def policy(tmp_path: Path) -> PolicySnapshot:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return load_policy(path)


def facts(trunk: str, caller: str = "02088881234", callee: str = "13800138000",
          uuid: str = "u") -> CallFacts:
    return CallFacts(uuid=uuid, from_user=caller, destination=callee, trunk_hint=trunk)


def with_contract(policy: PolicySnapshot, contract: LedgerContract,
                  now: float = MONDAY_10AM) -> PolicySnapshot:
    return apply_ledger(policy, LedgerState(contracts={contract.customer: contract}), now=now)


async def verdicts(snap: PolicySnapshot, n: int, trunk: str = "t1") -> list[str]:
    counted = Counted(snap)
    out = []
    for i in range(n):
        d = await counted.call(facts(trunk, uuid=f"u{i}"))
        out.append(d.rule or "pass")
    return out


async def test_a_ledger_cap_below_the_policys_takes_over(policy: PolicySnapshot) -> None:
    assert await verdicts(policy, 4) == ["pass"] * 3 + ["rate.caller"]
    ledger = with_contract(policy, LedgerContract("c1", "HT-1", caps=Caps(caller=Window(
        per_minute=2))))
    assert await verdicts(ledger, 3) == ["pass", "pass", "rate.caller"]


async def test_a_ledger_cap_above_the_policys_loosens_nothing(policy: PolicySnapshot) -> None:
    ledger = with_contract(policy, LedgerContract("c1", caps=Caps(
        caller=Window(per_minute=10, per_day=4))))
    # The policy's 3 a minute still holds; the ledger adds a daily cap of its own.
    assert ledger.contracts["c1"].caps.caller == ((60.0, 3), (86400.0, 4))
    assert await verdicts(ledger, 4) == ["pass"] * 3 + ["rate.caller"]


async def test_a_ledger_concurrency_cap_holds_leases_that_hangups_release(
    policy: PolicySnapshot,
) -> None:
    assert "t2" not in policy.leased_trunks
    ledger = with_contract(policy, LedgerContract("c2", caps=Caps(concurrency=1)))
    assert "t2" in ledger.leased_trunks
    counted = Counted(ledger)
    first = await counted.call(facts("t2", "02077771234", uuid="a"))
    second = await counted.call(facts("t2", "02077771235", uuid="b"))
    assert (first.verdict, second.rule) == (Verdict.PASS, "rate.concurrency")
    counted.snapshot = ledger
    await counted.hangup(outcome("a", "02077771234", "13800138000", trunk="t2"))
    third = await counted.call(facts("t2", "02077771236", uuid="c"))
    assert third.verdict is Verdict.PASS


def test_ledger_hours_apply_on_top_of_the_policys(policy: PolicySnapshot) -> None:
    ledger = with_contract(policy, LedgerContract(
        "c1", "HT-1", hours=Hours(windows=("09:00-12:00",), weekdays=tuple(Weekday)[:5])))
    assert decide(facts("t1"), ledger, now=MONDAY_10AM).verdict is Verdict.PASS
    one_pm = MONDAY_10AM + 3 * 3600
    d = decide(facts("t1"), ledger, now=one_pm)
    assert d.rule == "contract.hours"
    assert "ledger contract HT-1" in d.reason and "09:00-12:00" in d.reason
    assert decide(facts("t1"), policy, now=one_pm).verdict is Verdict.PASS
    # Outside the policy's own hours, the reason names the policy's terms.
    nine_pm = MONDAY_10AM + 11 * 3600
    d = decide(facts("t1"), ledger, now=nine_pm)
    assert d.rule == "contract.hours" and "industry finance" in d.reason


def test_ledger_targets_apply_on_top_of_the_policys(policy: PolicySnapshot) -> None:
    ledger = with_contract(policy, LedgerContract(
        "c2", "HT-2", targets=Targets(exclude_regions=("0898",))))
    ok = decide(facts("t2", "02077771234", "13800138000"), ledger, now=MONDAY_10AM)
    assert ok.verdict is Verdict.PASS
    d = decide(facts("t2", "02077771234", "089866668888"), ledger, now=MONDAY_10AM)
    assert d.rule == "contract.targets" and "ledger contract HT-2" in d.reason


def test_a_contract_applies_only_between_its_dates(policy: PolicySnapshot) -> None:
    tight = Caps(caller=Window(per_minute=1))
    later = LedgerContract("c1", "HT-3", caps=tight, valid_from=MONDAY + dt.timedelta(days=1))
    snap = with_contract(policy, later)
    assert snap.contracts["c1"].caps.caller == ((60.0, 3),)  # not in force yet
    state = LedgerState(contracts={"c1": later})
    starts = next_change(policy, state, now=MONDAY_10AM)
    assert starts == dt.datetime(2026, 6, 2, tzinfo=dt.timezone(dt.timedelta(hours=8))
                                 ).timestamp()
    assert starts is not None
    assert apply_ledger(policy, state, now=starts).contracts["c1"].caps.caller == ((60.0, 1),)

    ended = LedgerContract("c1", "HT-3", caps=tight, valid_until=MONDAY - dt.timedelta(days=1))
    d = decide(facts("t1"), with_contract(policy, ended), now=MONDAY_10AM)
    assert d.rule == "contract.suspended"
    assert "ledger contract HT-3 expired 2026-05-31" in d.reason
    # Through its last day it holds.
    last_day = LedgerContract("c1", "HT-3", caps=tight, valid_until=MONDAY)
    assert decide(facts("t1"), with_contract(policy, last_day), now=MONDAY_10AM).verdict \
        is Verdict.PASS


def test_ledger_number_resources_are_allowed_caller_ids_of_the_customers_trunks(
    policy: PolicySnapshot,
) -> None:
    toll_free = "4008123456"
    assert decide(facts("t1", toll_free), policy, now=MONDAY_10AM).rule == "cid.not_allowed"
    state = LedgerState(numbers={"c1": ("4008123000-4008123999", "95566")})
    snap = apply_ledger(policy, state, now=MONDAY_10AM)
    for caller in (toll_free, "+864008123000", "95566"):
        assert decide(facts("t1", caller), snap, now=MONDAY_10AM).verdict is Verdict.PASS
    assert decide(facts("t1", "4008124000"), snap, now=MONDAY_10AM).rule == "cid.not_allowed"
    # Another customer's trunk, and a trunk that opted out, still refuse them.
    assert decide(facts("t2", toll_free), snap, now=MONDAY_10AM).rule == "cid.not_allowed"
    assert decide(facts("t3", toll_free), snap, now=MONDAY_10AM).rule == "cid.not_allowed"
    assert snap.version != policy.version


def test_ledger_fixed_numbers_are_registered_business_numbers(policy: PolicySnapshot) -> None:
    line = "02066661234"
    d = decide(facts("cc", line), policy, now=MONDAY_10AM)
    assert d.rule == "cid.subscriber_number_as_business"
    snap = apply_ledger(policy, LedgerState(numbers={"c3": ("02066660000-02066669999",)}),
                        now=MONDAY_10AM)
    assert decide(facts("cc", line), snap, now=MONDAY_10AM).verdict is Verdict.PASS


def test_contract_changes_change_the_version(policy: PolicySnapshot) -> None:
    a = with_contract(policy, LedgerContract("c1", caps=Caps(trunk_cps=5)))
    b = with_contract(policy, LedgerContract("c1", caps=Caps(trunk_cps=6)))
    assert a.version != b.version
    assert a.version == with_contract(policy, LedgerContract("c1", caps=Caps(trunk_cps=5))).version

"""Loading policies: the happy path, merging, versions, and trunk matching."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from fs_plugin.errors import ConfigError
from fs_plugin.policy import (
    Action,
    CustomerStatus,
    PolicySnapshot,
    TrunkKind,
    check_policy,
    load_policy,
)
from fs_plugin.screening.model import CallFacts, Mode, Verdict

WriteFile = Callable[[str, str], Path]

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
trunks:
  - id: ent-1
    kind: enterprise
    customer: acme
    caller_ids:
      ranges: ["02088880000-02088889999"]
      numbers: [4008123123]
customers:
  - id: acme
"""


def facts(**kw: str) -> CallFacts:
    base = {"uuid": "u1", "from_user": "02088886666", "destination": "13900001111"}
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


def test_example_policy_directory_loads() -> None:
    snap = load_policy(REPO / "policies")
    assert isinstance(snap, PolicySnapshot)
    kinds = [t.kind for t in snap.trunks.values()]
    for kind in TrunkKind:
        assert kinds.count(kind) >= 2, kind
    assert snap.customers["quickloan"].status is CustomerStatus.SUSPENDED
    assert any(r.mode is Mode.SHADOW for r in snap.rules.values())
    assert len(snap.version) == 12
    assert check_policy(REPO / "policies") == []


# The illustration in DESIGN.md "A policy file, for illustration", verbatim (its long line too).
def test_design_md_example_is_valid(write: WriteFile, policy_dir: Path) -> None:
    write("design.yaml", """
        trunks:
          - id: ent-1                       # also the value the dialplan puts in fsp_trunk
            customer: acme-telemarketing
            kind: enterprise                # enterprise | call_centre | international | interconnect
            match: {channel_var: fsp_trunk} # or sofia_profile, gateway, source: [CIDR, ...]
            caller_ids:                     # what this trunk may present (From and PAI)
              ranges: ["02088880000-02088889999"]
              numbers: ["4008123123"]
            on_error: pass                  # fail-open; `block` for high-risk trunks
          - id: intl-gw
            kind: international             # Chinese caller IDs here are fake "+86" calls
            on_error: pass
        customers:
          - id: acme-telemarketing
            status: active
            industry: real_estate
        rules:
          cid.not_allowed: {mode: enforce, cause: UNWANTED}
          cid.fake_plus86: {mode: enforce, cause: CALL_REJECTED}
          pattern.wangiri: {mode: shadow}   # evaluated and recorded, not enforced yet
        """)  # noqa: E501
    snap = load_policy(policy_dir)
    assert snap.rules["cid.not_allowed"].cause == "UNWANTED"
    assert snap.rules["cid.not_allowed"].sip_status == 607
    assert snap.rules["cid.fake_plus86"].sip_status == 603
    assert snap.rules["pattern.wangiri"].mode is Mode.SHADOW


def test_single_file_and_unquoted_numbers(write: WriteFile) -> None:
    path = write("one.yaml", MINIMAL)
    snap = load_policy(path)
    trunk = snap.trunks["ent-1"]
    assert trunk.caller_ids.numbers == ("4008123123",)
    assert trunk.on_error is Action.PASS
    assert trunk.timezone == "Asia/Shanghai"
    assert snap.anonymous["ent-1"] is Action.BLOCK


def test_directory_merges_files_and_ignores_other_suffixes(
    write: WriteFile, policy_dir: Path
) -> None:
    write("a_trunks.yaml", """
        trunks:
          - {id: ent-1, kind: enterprise, customer: acme, caller_ids: {numbers: ["4008123123"]}}
        """)
    write("b_customers.yml", "customers:\n  - {id: acme, status: suspended}\n")
    write("c_rules.yaml", "rules:\n  label.fraud: {verdict: warn}\n")
    write("notes.txt", "this: is not: yaml: at all\n")
    snap = load_policy(policy_dir)
    assert snap.customer_of(snap.trunks["ent-1"]) is snap.customers["acme"]
    assert snap.rules["label.fraud"].verdict is Verdict.WARN
    assert len(snap.sources) == 3


def test_defaults_apply_when_rules_are_not_listed(write: WriteFile, policy_dir: Path) -> None:
    write("p.yaml", MINIMAL)
    snap = load_policy(policy_dir)
    assert snap.rules["cid.malformed"].cause == "UNWANTED"
    assert snap.rules["contract.suspended"].cause == "CALL_REJECTED"
    assert snap.rules["contract.suspended"].sip_status == 603
    assert snap.rules["label.fraud"].verdict is Verdict.BLOCK
    assert snap.rules["label.harassment"].verdict is Verdict.WARN
    assert snap.rules["trunk.unknown"].mode is Mode.ENFORCE


def test_defaults_section_changes_family_causes(write: WriteFile, policy_dir: Path) -> None:
    write("p.yaml", MINIMAL + """
defaults:
  block_cause: INCOMING_CALL_BARRED
  cid_block_cause: CALL_REJECTED
""")
    snap = load_policy(policy_dir)
    assert snap.rules["cid.not_allowed"].sip_status == 603
    assert snap.rules["trunk.unknown"].cause == "INCOMING_CALL_BARRED"
    assert snap.rules["trunk.unknown"].sip_status == 403


def test_version_is_stable_and_follows_content(write: WriteFile, policy_dir: Path) -> None:
    write("p.yaml", MINIMAL)
    v1 = load_policy(policy_dir).version
    assert load_policy(policy_dir).version == v1
    write("p.yaml", MINIMAL.replace("4008123123", "4008123124"))
    assert load_policy(policy_dir).version != v1


def test_snapshot_is_immutable(write: WriteFile, policy_dir: Path) -> None:
    write("p.yaml", MINIMAL)
    snap = load_policy(policy_dir)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.trunks["x"] = snap.trunks["ent-1"]  # type: ignore[index]


def test_a_broken_reload_leaves_the_old_snapshot_usable(
    write: WriteFile, policy_dir: Path
) -> None:
    write("p.yaml", MINIMAL)
    old = load_policy(policy_dir)
    write("p.yaml", MINIMAL.replace("kind: enterprise", "kind: enterprize"))
    with pytest.raises(ConfigError):
        load_policy(policy_dir)
    assert old.trunks["ent-1"].kind is TrunkKind.ENTERPRISE


MATCHING = """
trunks:
  - {id: by-var, kind: interconnect}
  - {id: by-other-var, kind: interconnect, match: {channel_var: carrier_trunk}}
  - {id: by-gw, kind: interconnect, match: {gateway: gw-a}}
  - {id: by-profile, kind: interconnect, match: {sofia_profile: external}}
  - {id: wide, kind: interconnect, match: {source: ["203.0.113.0/24"]}}
  - {id: narrow, kind: interconnect, match: {source: ["203.0.113.128/25", "2001:db8::/32"]}}
"""


@pytest.fixture
def matching(write: WriteFile, policy_dir: Path) -> PolicySnapshot:
    write("m.yaml", MATCHING)
    return load_policy(policy_dir)


def _id(snap: PolicySnapshot, f: CallFacts) -> str | None:
    trunk = snap.match_trunk(f)
    return trunk.id if trunk is not None else None


def test_match_precedence_channel_var_first(matching: PolicySnapshot) -> None:
    f = facts(trunk_hint="by-var", gateway="gw-a", sofia_profile="external",
              network_ip="203.0.113.200")
    assert _id(matching, f) == "by-var"


def test_match_other_channel_var(matching: PolicySnapshot) -> None:
    f = CallFacts("u", "1", "2", variables={"variable_carrier_trunk": "by-other-var"})
    assert _id(matching, f) == "by-other-var"
    # A trunk is only matched through its own channel variable.
    assert _id(matching, facts(trunk_hint="by-other-var")) is None


def test_match_gateway_before_profile_before_source(matching: PolicySnapshot) -> None:
    assert _id(matching, facts(gateway="gw-a", sofia_profile="external",
                               network_ip="203.0.113.1")) == "by-gw"
    assert _id(matching, facts(sofia_profile="external", network_ip="203.0.113.1")) == "by-profile"
    assert _id(matching, facts(network_ip="203.0.113.1")) == "wide"


def test_match_most_specific_source_and_ipv6(matching: PolicySnapshot) -> None:
    assert _id(matching, facts(network_ip="203.0.113.200")) == "narrow"
    assert _id(matching, facts(network_ip="2001:db8::5")) == "narrow"
    assert _id(matching, facts(network_ip="198.51.100.1")) is None
    assert _id(matching, facts(network_ip="not-an-ip")) is None


def test_unknown_hint_falls_through(matching: PolicySnapshot) -> None:
    assert _id(matching, facts(trunk_hint="nope", gateway="gw-a")) == "by-gw"
    assert _id(matching, facts(trunk_hint="nope")) is None

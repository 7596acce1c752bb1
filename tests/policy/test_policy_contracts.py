"""Contracts, industries, key regions and patterns: validation and compiled terms."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fs_plugin.policy import check_policy, load_policy
from fs_plugin.policy.contracts import CapLimits, merge_caps, region_limits
from fs_plugin.policy.models import Caps, Window


def errors_of(tmp_path: Path, text: str) -> list[tuple[int | None, str | None, str]]:
    (tmp_path / "p.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return [(e.line, e.key, e.message) for e in check_policy(tmp_path)]


@pytest.mark.parametrize(("text", "expected"), [
    ("customers: [{id: c, contract: {hours: {windows: ['9:00-20:00']}}}]\n",
     (1, "customers[0].contract.hours.windows[0]",
      "'9:00-20:00' is not a time window HH:MM-HH:MM (e.g. 09:00-20:00)")),
    ("customers: [{id: c, contract: {hours: {windows: ['20:00-20:00']}}}]\n",
     (1, "customers[0].contract.hours.windows[0]",
      "'20:00-20:00' is an empty window (write 00:00-24:00 for the whole day)")),
    ("customers: [{id: c, contract: {hours: {weekdays: [monday]}}}]\n",
     (1, "customers[0].contract.hours.weekdays[0]",
      "'monday' is not one of mon | tue | wed | thu | fri | sat | sun")),
    ("customers: [{id: c, contract: {hours: {weekdays: []}}}]\n",
     (1, "customers[0].contract.hours.weekdays", "at least one weekday is needed")),
    ("customers: [{id: c, contract: {targets: {regions: ['0899']}}}]\n",
     (1, "customers[0].contract.targets.regions[0]",
      "'0899' is not a Chinese area code (with its 0, e.g. 0898)")),
    ("customers: [{id: c, contract: {targets: {classes: [pager]}}}]\n",
     (1, "customers[0].contract.targets.classes[0]",
      "'pager' is not one of mobile | fixed | service | toll_free | short_code | "
      "international")),
    ("customers: [{id: c, contract: {caps: {caller: {per_minute: -1}}}}]\n",
     (1, "customers[0].contract.caps.caller.per_minute", "a cap cannot be negative")),
    ("customers: [{id: c, contract: {caps: {caller: {per_second: 1}}}}]\n",
     (1, "customers[0].contract.caps.caller.per_second",
      "unknown key 'per_second'; allowed: per_minute, per_hour, per_day")),
    ("industries: {retail: {}}\n",
     (1, "industries.retail", "unknown key 'retail'; allowed: finance, real_estate, medical, "
      "hr, tourism, other")),
    ("key_regions: [{id: hn, regions: [海南]}]\n",
     (1, "key_regions[0]", "a key region needs a factor, caps or both")),
    ("key_regions: [{id: hn, regions: [海南], factor: 1.5}]\n",
     (1, "key_regions[0].factor", "must be more than 0 and at most 1")),
    ("patterns: {bombing: {window_s: 0}}\n",
     (1, "patterns.bombing.window_s", "must be at least 1")),
    ("patterns: {wangiri: {max_ring_s: 0}}\n",
     (1, "patterns.wangiri.max_ring_s", "must be more than 0")),
])
def test_errors_name_line_and_key(tmp_path: Path, text: str,
                                  expected: tuple[int, str, str]) -> None:
    assert errors_of(tmp_path, text) == [expected]


def test_single_file_sections(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("patterns: {}\nindustries: {}\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("patterns: {}\n", encoding="utf-8")
    errs = check_policy(tmp_path)
    assert [(Path(e.file or "").name, e.key) for e in errs] == [("b.yaml", "patterns")]
    assert "patterns already set in" in errs[0].message


def test_duplicate_key_region(tmp_path: Path) -> None:
    errs = errors_of(tmp_path, """\
        key_regions:
          - {id: hn, regions: [海南], factor: 0.5}
          - {id: hn, regions: ["0898"], factor: 0.5}
        """)
    assert [(line, key) for line, key, _ in errs] == [(3, "key_regions[1].id")]


def test_contract_over_industry(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(textwrap.dedent("""\
        industries:
          finance:
            hours: {windows: ["09:00-18:00"]}
            targets: {classes: [mobile]}
            caps: {caller: {per_minute: 5, per_day: 100}, trunk_cps: 3}
        customers:
          - {id: plain, industry: finance}
          - id: own
            industry: finance
            contract:
              hours: {windows: ["10:00-12:00"], weekdays: [sat]}
              caps: {caller: {per_minute: 2}, concurrency: 4}
          - {id: other}
        """), encoding="utf-8")
    s = load_policy(tmp_path)
    plain, own, other = (s.contracts[c] for c in ("plain", "own", "other"))
    assert plain.hours is not None and plain.hours.minutes == ((540, 1080),)
    assert plain.hours_from == "industry finance"
    assert own.hours is not None and own.hours.minutes == ((600, 720),)
    assert own.hours.weekdays == frozenset({5}) and own.hours_from == "contract"
    assert own.targets is not None and own.targets_from == "industry finance"
    assert own.caps == CapLimits(caller=((60.0, 2), (86400.0, 100)), trunk_cps=3,
                                 concurrency=4)
    assert other.hours is None and other.caps.empty


def test_merge_caps_and_region_limits() -> None:
    base = Caps(caller=Window(per_minute=5), trunk_cps=10)
    over = Caps(caller=Window(per_day=50), concurrency=3)
    merged = merge_caps(base, over)
    assert merged == Caps(caller=Window(per_minute=5, per_day=50), trunk_cps=10,
                          concurrency=3)
    assert merge_caps(None, over) is over and merge_caps(base, None) is base

    from fs_plugin.policy.contracts import cap_limits, compile_region
    from fs_plugin.policy.models import KeyRegion

    region = compile_region(KeyRegion("hn", ("海南",), factor=0.5,
                                      caps=Caps(caller=Window(per_minute=1, per_hour=7))))
    limits = region_limits(region, cap_limits(merged))
    # factor halves the contract's caps (at least 1); explicit caps add or tighten.
    assert limits == CapLimits(caller=((60.0, 1), (3600.0, 7), (86400.0, 25)), trunk_cps=5,
                               concurrency=1)


def test_example_policy_contract(repo_dir: Path) -> None:
    s = load_policy(repo_dir / "policies")
    c = s.contracts["haikou-homes"]
    assert c.marketing and c.hours is not None and c.whitelist is not None
    assert c.caps.caller == ((60.0, 5), (3600.0, 100), (86400.0, 500))  # contract + industry
    assert s.leased_trunks == ("mkt-1",)
    assert [r.id for r in s.key_regions] == ["hainan"]
    assert s.patterns.bombing is not None and s.patterns.wangiri is not None

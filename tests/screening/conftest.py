"""A small policy exercising every rule, and helpers to build facts and decisions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fs_plugin.policy import PolicySnapshot, load_policy

BASE = """
trunks:
  - id: ent-1
    kind: enterprise
    customer: acme
    caller_ids:
      ranges: ["02088880000-02088889999"]
      numbers: ["4008123123"]
  - id: ent-div
    kind: enterprise
    customer: acme
    caller_ids: {ranges: ["02088880000-02088889999"], check_diversion: true}
  - id: ent-nopai
    kind: enterprise
    customer: acme
    caller_ids: {ranges: ["02088880000-02088889999"], check_pai: false}
  - id: ent-anon
    kind: enterprise
    customer: acme
    anonymous: pass
    caller_ids: {ranges: ["02088880000-02088889999"]}
  - id: ent-gone
    kind: enterprise
    customer: gone
    caller_ids: {ranges: ["02088770000-02088770999"]}
  - id: cc-1
    kind: call_centre
    customer: callco
    caller_ids:
      numbers: ["95566", "4008200200", "13900001111", "02066660050"]
      ranges: ["02066660000-02066660009"]
  - id: intl-gw
    kind: international
    match: {gateway: intl-gw}
  - id: ic-1
    kind: interconnect
    match: {source: ["203.0.113.0/24"]}
  - id: ic-strict
    kind: interconnect
    anonymous: block
customers:
  - id: acme
  - id: callco
    business_numbers: ["02066660000-02066660009"]
  - id: gone
    status: terminated
labels:
  - {number: "02088887777", category: harassment, label: "疑似骚扰:房产中介"}
  - {number: "13900009999", category: fraud}
  - {number: "13600006666", category: harassment, expires: 2026-01-31}
  - {number: "13500005555", category: telemarketing, label: "广告推销"}
"""

#: 2026-06-01 00:00 UTC: after the expired label's day, well inside the others.
NOW = 1_780_272_000.0

MakePolicy = Callable[[str], PolicySnapshot]


@pytest.fixture
def make_policy(tmp_path: Path) -> MakePolicy:
    """``make_policy(extra_yaml)``: BASE plus extra top-level sections (e.g. ``rules:``)."""
    counter = iter(range(1000))

    def _make(extra: str = "") -> PolicySnapshot:
        path = tmp_path / f"p{next(counter)}.yaml"
        path.write_text(BASE + extra, encoding="utf-8")
        return load_policy(path)

    return _make


@pytest.fixture
def policy(make_policy: MakePolicy) -> PolicySnapshot:
    return make_policy("")

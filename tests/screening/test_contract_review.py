"""contract.hours: windows across midnight by the day they open on, make-up workdays
(调休) counted as Mon–Fri (policies/README.md, ``customers[].contract``)."""

from __future__ import annotations

import datetime as dt
import textwrap
import zoneinfo
from pathlib import Path

import pytest

from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import CallFacts, Decision, decide

POLICY = """
trunks:
  - {id: night, kind: interconnect, customer: night}
  - {id: weekend, kind: interconnect, customer: weekend}
customers:
  - id: night
    contract:
      hours:
        windows: ["20:00-08:00"]
        weekdays: [mon, tue, wed, thu, fri]
        holidays: data/cal.csv
  - id: weekend
    contract:
      hours:
        windows: ["09:00-18:00"]
        weekdays: [sat, sun]
        holidays: data/cal.csv
"""

CALENDAR = """\
    date,kind,name
    2026-06-19,holiday,端午节
    2026-06-28,workday,调休
    """

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


@pytest.fixture
def snap(tmp_path: Path) -> PolicySnapshot:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cal.csv").write_text(textwrap.dedent(CALENDAR), encoding="utf-8")
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    return load_policy(tmp_path)


def run(snap: PolicySnapshot, trunk: str, *when: int) -> Decision:
    now = dt.datetime(*when, tzinfo=SHANGHAI).timestamp()  # type: ignore[misc]
    return decide(CallFacts("u", "13800138000", "13900001111", trunk_hint=trunk), snap,
                  now=now)


# June 2026: the 5th is a Friday, the 8th a Monday; the 19th (Friday) a holiday; the
# 28th (Sunday) a make-up workday.
@pytest.mark.parametrize(("when", "ok"), [
    ((2026, 6, 5, 23, 0), True),    # Friday night
    ((2026, 6, 6, 0, 0), True),     # Saturday 00:00: Friday's window crosses midnight
    ((2026, 6, 6, 7, 59), True),
    ((2026, 6, 6, 8, 0), False),    # end exclusive
    ((2026, 6, 6, 21, 0), False),   # Saturday's own evening
    ((2026, 6, 7, 23, 0), False),   # Sunday night ...
    ((2026, 6, 8, 1, 0), False),    # ... up to Monday 08:00: the window opened on Sunday
    ((2026, 6, 8, 20, 0), True),
    ((2026, 6, 9, 1, 0), True),     # Monday's window
    ((2026, 6, 18, 23, 0), True),   # Thursday, before the holiday
    ((2026, 6, 19, 1, 0), False),   # on the holiday itself: no calls
    ((2026, 6, 20, 1, 0), False),   # the holiday's night: no window opened that day
    ((2026, 6, 28, 1, 0), False),   # the make-up Sunday's early morning is Saturday night
    ((2026, 6, 28, 22, 0), True),   # the make-up Sunday's evening ...
    ((2026, 6, 29, 1, 0), True),    # ... runs into Monday morning
])
def test_window_across_midnight_belongs_to_the_day_it_opens(
        snap: PolicySnapshot, when: tuple[int, ...], ok: bool) -> None:
    d = run(snap, "night", *when)
    assert (d.rule != "contract.hours") is ok, d.reason


def test_reason_names_the_day_the_window_opened(snap: PolicySnapshot) -> None:
    assert run(snap, "night", 2026, 6, 8, 1, 0).reason == (
        "2026-06-08 01:00 Asia/Shanghai is the night after a Sunday: customer night may "
        "call 20:00-08:00 mon-fri, not on public holidays (contract)")
    assert "is the night after a public holiday" in run(snap, "night", 2026, 6, 20, 1).reason
    assert "is a public holiday" in run(snap, "night", 2026, 6, 19, 1).reason
    assert "is a Saturday" in run(snap, "night", 2026, 6, 6, 21).reason


@pytest.mark.parametrize(("when", "ok"), [
    ((2026, 6, 6, 10, 0), True),    # Saturday
    ((2026, 6, 1, 10, 0), False),   # Monday
    ((2026, 6, 28, 10, 0), False),  # Sunday, but a make-up workday: counted as Mon–Fri
])
def test_make_up_workday_counts_as_a_weekday(snap: PolicySnapshot, when: tuple[int, ...],
                                             ok: bool) -> None:
    d = run(snap, "weekend", *when)
    assert (d.rule != "contract.hours") is ok, d.reason
    if not ok and when[2] == 28:
        assert "is a make-up workday (调休), counted as mon-fri" in d.reason

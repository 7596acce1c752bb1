"""Contracts, industries and key regions compiled into what a call needs to look at.

Resolution, done once per policy load:

* A customer's effective terms are its ``contract`` over its industry's
  ``industries.<industry>`` terms: ``hours`` and ``targets`` are replaced as a whole
  (a contract that states hours states all of them), ``caps`` value by value (a
  contract can tighten ``caller.per_minute`` and keep the industry's daily cap).
* Caps become ``(window seconds, limit)`` pairs; ``per_day`` is a sliding 24 h window.
* A key region's caps apply to every call whose caller or callee (per ``applies_to``)
  it covers: explicit ``caps``, and ``factor`` times the contract's caps; for each
  cap the smaller value wins (see :func:`region_limits`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from fs_plugin.numbering import Number, NumberClass
from fs_plugin.policy.lists import EMPTY_LIST, Calendar, NumberList
from fs_plugin.policy.models import (
    BusinessType,
    Caps,
    Customer,
    Hours,
    Industries,
    IndustryTerms,
    KeyRegion,
    RegionSide,
    Targets,
    Weekday,
    Window,
    parse_time_window,
)

__all__ = [
    "DEFAULT_MAX_CALL_S",
    "CapLimits",
    "CompiledContract",
    "CompiledHours",
    "CompiledRegion",
    "CompiledTargets",
    "cap_limits",
    "compile_contract",
    "compile_hours",
    "compile_region",
    "compile_targets",
    "merge_caps",
    "region_limits",
    "region_match",
    "stricter_limits",
]

#: Lease life of a concurrency slot when the contract sets no ``max_call_s``: long
#: enough for any ordinary call, short enough that a lost hangup event frees the slot
#: the same working day.
DEFAULT_MAX_CALL_S = 7200

_DAY_MINUTES = 24 * 60
_WEEKDAY_INDEX = {d: i for i, d in enumerate(Weekday)}
_MON_FRI = frozenset(range(5))
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: (window seconds, unit name) of each Window field, in the order reasons list them.
_WINDOWS = (("per_minute", 60.0, "minute"), ("per_hour", 3600.0, "hour"),
            ("per_day", 86400.0, "day"))


@dataclass(frozen=True, slots=True)
class CompiledHours:
    """Permitted local minutes per permitted weekday, with the holiday calendar.

    A window across midnight (``20:00-08:00``) belongs to the day it opens on: its
    early-morning part (``overnight``) is permitted when the day *before* was a
    permitted day, so ``mon-fri`` runs from Monday 20:00 to Saturday 08:00 and not
    into Monday morning. No call is permitted on a public holiday, whichever day
    the window opened on. A make-up workday (调休) counts as Mon–Fri: it is a
    permitted day when the weekdays include a Mon–Fri day (``workday_ok``).
    """

    #: Half-open minute ranges after local midnight of the call's own day.
    minutes: tuple[tuple[int, int], ...]
    weekdays: frozenset[int]
    calendar: Calendar
    #: How the hours read in a reason: "09:00-20:00 mon-fri, not on holidays".
    text: str
    #: Half-open minute ranges after local midnight that continue a window opened
    #: the day before (the part of a window across midnight after 00:00).
    overnight: tuple[tuple[int, int], ...] = ()
    #: Whether a make-up workday (treated like Mon–Fri) is a permitted day.
    workday_ok: bool = True

    def _day_refusal(self, day: int, weekday: int) -> str:
        """Why no window opens on ``day`` (ordinal); "" when one does."""
        if day in self.calendar.holidays:
            return "a public holiday"
        if day in self.calendar.workdays:
            return "" if self.workday_ok else "a make-up workday (调休), counted as mon-fri"
        return "" if weekday in self.weekdays else f"a {_WEEKDAY_NAMES[weekday]}"

    def permits(self, local: dt.datetime) -> tuple[bool, str]:
        """Whether ``local`` (trunk's zone) is inside the hours; else why not."""
        day = local.date().toordinal()
        if day in self.calendar.holidays:
            return False, "a public holiday"
        weekday = local.weekday()
        minute = local.hour * 60 + local.minute
        why = self._day_refusal(day, weekday)
        if not why and any(lo <= minute < hi for lo, hi in self.minutes):
            return True, ""
        if any(lo <= minute < hi for lo, hi in self.overnight):
            # the early morning of a window across midnight, opened the day before
            before = self._day_refusal(day - 1, (weekday - 1) % 7)
            return (True, "") if not before else (False, f"the night after {before}")
        return False, why or "outside the permitted times"


def compile_hours(hours: Hours, calendar: Calendar | None) -> CompiledHours:
    minutes: list[tuple[int, int]] = []
    overnight: list[tuple[int, int]] = []
    for text in hours.windows:
        start, end = parse_time_window(text)
        if end > start:
            minutes.append((start, end))
        else:  # crosses midnight: the evening part, and the next day's early morning
            minutes.append((start, _DAY_MINUTES))
            if end > 0:
                overnight.append((0, end))
    days = frozenset(_WEEKDAY_INDEX[d] for d in hours.weekdays)
    text = ", ".join(hours.windows) + " " + _days_text(days)
    if calendar is not None and (calendar.holidays or calendar.workdays):
        text += ", not on public holidays"
    return CompiledHours(tuple(minutes), days, calendar or Calendar(frozenset(), frozenset()),
                         text, tuple(overnight), bool(days & _MON_FRI))


def _days_text(days: frozenset[int]) -> str:
    names = [d.value for d in Weekday]
    if days == frozenset(range(7)):
        return "every day"
    if days == frozenset(range(5)):
        return "mon-fri"
    return " ".join(names[i] for i in sorted(days)) or "no day"


@dataclass(frozen=True, slots=True)
class CompiledTargets:
    classes: frozenset[NumberClass]
    regions: tuple[str, ...]
    exclude: tuple[str, ...]


def compile_targets(targets: Targets) -> CompiledTargets:
    return CompiledTargets(
        frozenset(NumberClass(c.value) for c in targets.classes),
        tuple(targets.regions),
        tuple(targets.exclude_regions),
    )


def region_match(n: Number, regions: tuple[str, ...]) -> str | None:
    """The first entry of ``regions`` that covers ``n`` (area code or attribution name)."""
    for spec in regions:
        if spec[0].isdigit():
            if n.area_code == spec:
                return spec
        elif n.region is not None and spec in n.region:
            return spec
    return None


@dataclass(frozen=True, slots=True)
class CapLimits:
    """Caps as (window seconds, limit) pairs; empty/None = no cap."""

    caller: tuple[tuple[float, int], ...] = ()
    trunk_cps: int | None = None
    concurrency: int | None = None
    callee: tuple[tuple[float, int], ...] = ()
    pair: tuple[tuple[float, int], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.caller or self.callee or self.pair) and (
            self.trunk_cps is None and self.concurrency is None
        )


def _window_limits(w: Window | None) -> tuple[tuple[float, int], ...]:
    if w is None:
        return ()
    out = []
    for name, seconds, _unit in _WINDOWS:
        value = getattr(w, name)
        if value is not None:
            out.append((seconds, int(value)))
    return tuple(out)


def cap_limits(caps: Caps | None) -> CapLimits:
    if caps is None:
        return CapLimits()
    return CapLimits(
        _window_limits(caps.caller), caps.trunk_cps, caps.concurrency,
        _window_limits(caps.callee), _window_limits(caps.pair),
    )


def window_unit(seconds: float) -> str:
    for _name, s, unit in _WINDOWS:
        if s == seconds:
            return unit
    return f"{seconds:g} s"


def _merge_window(base: Window | None, over: Window | None) -> Window | None:
    if base is None or over is None:
        return over if base is None else base
    return Window(**{
        f.name: getattr(over, f.name) if getattr(over, f.name) is not None
        else getattr(base, f.name)
        for f in fields(Window)
    })


def merge_caps(base: Caps | None, over: Caps | None) -> Caps | None:
    """``over`` value by value on top of ``base`` (unset values inherit)."""
    if base is None or over is None:
        return over if base is None else base
    def pick(b: int | None, o: int | None) -> int | None:
        return o if o is not None else b

    return Caps(
        caller=_merge_window(base.caller, over.caller),
        trunk_cps=pick(base.trunk_cps, over.trunk_cps),
        concurrency=pick(base.concurrency, over.concurrency),
        max_call_s=pick(base.max_call_s, over.max_call_s),
        callee=_merge_window(base.callee, over.callee),
        pair=_merge_window(base.pair, over.pair),
    )


@dataclass(frozen=True, slots=True)
class CompiledContract:
    """One customer's effective contract terms."""

    customer: str
    hours: CompiledHours | None
    targets: CompiledTargets | None
    caps: CapLimits
    max_call_s: float
    #: Marketing customer (business_type: marketing): consent rules apply on every trunk.
    marketing: bool
    whitelist: NumberList | None
    dnc: NumberList
    #: Where the terms came from, for reasons: "contract", "industry real_estate", ...
    hours_from: str = ""
    targets_from: str = ""
    #: The ledger's contract (台账), when one is in force: its hours and targets apply
    #: on top of the policy's (a call must satisfy both); its caps are already folded
    #: into ``caps`` (the smaller limit wins). ``ledger_from`` names it in reasons.
    ledger_hours: CompiledHours | None = None
    ledger_targets: CompiledTargets | None = None
    ledger_from: str = ""

    def hours_terms(self) -> tuple[tuple[CompiledHours, str], ...]:
        """Every set of calling hours the call must fall in, with where it comes from."""
        out: list[tuple[CompiledHours, str]] = []
        if self.hours is not None:
            out.append((self.hours, self.hours_from))
        if self.ledger_hours is not None:
            out.append((self.ledger_hours, self.ledger_from))
        return tuple(out)

    def targets_terms(self) -> tuple[tuple[CompiledTargets, str], ...]:
        """Every set of permitted targets the callee must satisfy, with its source."""
        out: list[tuple[CompiledTargets, str]] = []
        if self.targets is not None:
            out.append((self.targets, self.targets_from))
        if self.ledger_targets is not None:
            out.append((self.ledger_targets, self.ledger_from))
        return tuple(out)


def _industry_terms(industries: Industries | None, customer: Customer) -> IndustryTerms | None:
    if industries is None:
        return None
    terms: IndustryTerms | None = getattr(industries, customer.industry.value, None)
    return terms


def compile_contract(
    customer: Customer,
    industries: Industries | None,
    calendars: Mapping[str, Calendar],
    lists: Mapping[str, NumberList],
) -> CompiledContract:
    """``calendars``/``lists`` hold the customer's data files, keyed by the reference as
    written in its policy file (the loader read them, relative to that file)."""
    industry = _industry_terms(industries, customer)
    contract = customer.contract
    hours, hours_from = None, ""
    if contract is not None and contract.hours is not None:
        hours, hours_from = contract.hours, "contract"
    elif industry is not None and industry.hours is not None:
        hours, hours_from = industry.hours, f"industry {customer.industry.value}"
    targets, targets_from = None, ""
    if contract is not None and contract.targets is not None:
        targets, targets_from = contract.targets, "contract"
    elif industry is not None and industry.targets is not None:
        targets, targets_from = industry.targets, f"industry {customer.industry.value}"
    caps = merge_caps(industry.caps if industry is not None else None,
                      contract.caps if contract is not None else None)
    consent = contract.consent if contract is not None else None
    whitelist = None
    dnc = EMPTY_LIST
    if consent is not None:
        if consent.whitelist:
            whitelist = NumberList.merge(lists[ref] for ref in consent.whitelist)
        if consent.dnc:
            dnc = NumberList.merge(lists[ref] for ref in consent.dnc)
    return CompiledContract(
        customer=customer.id,
        hours=compile_hours(hours, calendars.get(hours.holidays) if hours.holidays else None)
        if hours is not None else None,
        targets=compile_targets(targets) if targets is not None else None,
        caps=cap_limits(caps),
        max_call_s=float(caps.max_call_s if caps is not None and caps.max_call_s
                         else DEFAULT_MAX_CALL_S),
        marketing=customer.business_type is BusinessType.MARKETING,
        whitelist=whitelist,
        dnc=dnc,
        hours_from=hours_from,
        targets_from=targets_from,
    )


@dataclass(frozen=True, slots=True)
class CompiledRegion:
    id: str
    regions: tuple[str, ...]
    side: RegionSide
    factor: float | None
    caps: CapLimits

    def covers(self, caller: Number | None, callee: Number | None) -> str | None:
        """Which number the region covers, as text for a reason; None if neither."""
        if self.side is not RegionSide.CALLEE and caller is not None:
            spec = region_match(caller, self.regions)
            if spec is not None:
                return f"caller in {spec}"
        if self.side is not RegionSide.CALLER and callee is not None:
            spec = region_match(callee, self.regions)
            if spec is not None:
                return f"callee in {spec}"
        return None


def compile_region(region: KeyRegion) -> CompiledRegion:
    return CompiledRegion(region.id, tuple(region.regions), region.applies_to, region.factor,
                          cap_limits(region.caps))


def _scaled(limit: int, factor: float | None) -> int:
    if factor is None:
        return limit
    return max(1, math.floor(limit * factor))


def _stricter_windows(
    base: tuple[tuple[float, int], ...],
    explicit: tuple[tuple[float, int], ...],
    factor: float | None,
) -> tuple[tuple[float, int], ...]:
    out: dict[float, int] = {}
    if factor is not None:
        for window, limit in base:
            out[window] = _scaled(limit, factor)
    for window, limit in explicit:
        out[window] = min(limit, out.get(window, limit))
    return tuple(sorted(out.items()))


def _stricter(base: int | None, explicit: int | None, factor: float | None) -> int | None:
    scaled = _scaled(base, factor) if base is not None and factor is not None else None
    values = [v for v in (scaled, explicit) if v is not None]
    return min(values) if values else None


def _min_windows(
    a: tuple[tuple[float, int], ...], b: tuple[tuple[float, int], ...]
) -> tuple[tuple[float, int], ...]:
    out = dict(a)
    for window, limit in b:
        out[window] = min(limit, out.get(window, limit))
    return tuple(sorted(out.items()))


def _min_cap(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def stricter_limits(a: CapLimits, b: CapLimits) -> CapLimits:
    """Both sets of caps at once: for each cap, the smaller limit (an unset one
    imposes nothing)."""
    return CapLimits(
        caller=_min_windows(a.caller, b.caller),
        trunk_cps=_min_cap(a.trunk_cps, b.trunk_cps),
        concurrency=_min_cap(a.concurrency, b.concurrency),
        callee=_min_windows(a.callee, b.callee),
        pair=_min_windows(a.pair, b.pair),
    )


def region_limits(region: CompiledRegion, base: CapLimits) -> CapLimits:
    """The region's own limits for a call whose contract caps are ``base``.

    Only caps the region actually sets appear: ``factor`` scales each of the
    contract's caps, explicit ``caps`` add or tighten; the engine then applies, per
    cap, the contract limit (rate.*) and this one (region.strict) side by side.
    """
    f = region.factor
    r = region.caps
    return CapLimits(
        caller=_stricter_windows(base.caller, r.caller, f),
        trunk_cps=_stricter(base.trunk_cps, r.trunk_cps, f),
        concurrency=_stricter(base.concurrency, r.concurrency, f),
        callee=_stricter_windows(base.callee, r.callee, f),
        pair=_stricter_windows(base.pair, r.pair, f),
    )


NO_CONTRACTS: Mapping[str, CompiledContract] = MappingProxyType({})

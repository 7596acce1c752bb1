"""Counter plans and readings: the values passed between the engine and the counter store.

``counting.py`` builds a :class:`CounterPlan` for a call; the store's results come back
as :class:`CounterReadings`; the counter rules read them through the probes. This module
holds only values (and the logical key names), so the rules can import it freely.
"""

from __future__ import annotations

from dataclasses import dataclass

from fs_plugin.counters.ops import (
    DistinctResult,
    FlagResult,
    HitResult,
    LeaseResult,
    Op,
    Result,
)
from fs_plugin.policy.catalogue import RATE_CONCURRENCY, RATE_TRUNK_CPS
from fs_plugin.policy.contracts import window_unit

__all__ = [
    "EMPTY_PLAN",
    "BombingProbe",
    "CapProbe",
    "CounterPlan",
    "CounterReadings",
    "WangiriProbe",
    "bombing_keys",
    "concurrency_key",
    "distinct_result",
    "flag_result",
    "hit_result",
    "wangiri_keys",
]


@dataclass(frozen=True, slots=True)
class CapProbe:
    """One cap counter of the plan and the limits judged against its reading."""

    index: int
    #: The rate.* rule this counter belongs to.
    rule: str
    #: What is counted, for reasons: "caller 13900001111", "trunk mkt-1".
    subject: str
    #: Window in seconds (0 for concurrency, which has none).
    window_s: float
    #: The contract's limit (rate.*), None when only a key region caps this.
    limit: int | None
    #: The key region's stricter limit (region.strict), its id and why it applies.
    region_limit: int | None = None
    region: str | None = None
    region_why: str = ""
    peek: bool = False

    def position(self, result: Result) -> int | None:
        """The call's position n in the window (n > limit fires), None on a wrong result."""
        if isinstance(result, HitResult):
            return result.count if result.added else result.count + 1
        if isinstance(result, LeaseResult):
            return result.count if result.granted else result.count + 1
        return None

    def describe(self, limit: int) -> str:
        if self.rule == RATE_CONCURRENCY:
            return f"{self.subject}: {limit} concurrent calls allowed"
        if self.rule == RATE_TRUNK_CPS:
            return f"{self.subject}: {limit} calls per second allowed"
        return f"{self.subject}: {limit} calls per {window_unit(self.window_s)} allowed"


@dataclass(frozen=True, slots=True)
class BombingProbe:
    """Indices of the ``pattern.bombing`` ops (all tagged by the callee)."""

    pair: int
    callee: int
    callers: int
    sources: int
    flag: int
    caller_key: str
    callee_key: str


@dataclass(frozen=True, slots=True)
class WangiriProbe:
    flag: int
    caller_key: str


@dataclass(frozen=True, slots=True)
class CounterPlan:
    """The counter ops one call needs, and how ``decide`` reads their results."""

    ops: tuple[Op, ...] = ()
    caps: tuple[CapProbe, ...] = ()
    bombing: BombingProbe | None = None
    wangiri: WangiriProbe | None = None
    #: The rule ids that have ops in this plan.
    rules: frozenset[str] = frozenset()
    #: The call the plan was made for (``CallFacts.uuid``).
    uuid: str = ""


EMPTY_PLAN = CounterPlan()


@dataclass(frozen=True, slots=True)
class CounterReadings:
    """What the counter store returned for ``plan``: ``results`` in op order, or None and
    ``error`` when the store failed or missed its deadline."""

    plan: CounterPlan
    results: tuple[Result, ...] | None
    error: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the results cannot be used, or None when they can."""
        if self.results is None:
            return self.error or "counter store gave no results"
        if len(self.results) != len(self.plan.ops):
            return (f"counter store returned {len(self.results)} results for "
                    f"{len(self.plan.ops)} ops")
        return None


# -- keys ----------------------------------------------------------------------------
# Logical key names; the store adds its namespace and the cluster hash tag. Numbers are
# comparison keys (national form, or E.164 for international), which hold no braces.


def concurrency_key(trunk_id: str) -> str:
    return f"rate.concurrency:{trunk_id}"


def bombing_keys(callee: str, caller: str) -> tuple[str, dict[str, str]]:
    """(tag, keys) of pattern.bombing for one callee. One tag: the rule reads the five
    together and must see one consistent state (one slot, one script)."""
    tag = f"bomb:{callee}"
    return tag, {
        "pair": f"bomb.pair:{callee}:{caller}",
        "callee": f"bomb.calls:{callee}",
        "callers": f"bomb.callers:{callee}",
        "sources": f"bomb.sources:{callee}",
        "flag": f"bomb.flag:{callee}",
    }


def wangiri_keys(caller: str) -> tuple[str, dict[str, str]]:
    """(tag, keys) of pattern.wangiri for one caller: short-call counter and distinct
    callees (written together off the call path) and the flag, in one slot."""
    tag = f"wangiri:{caller}"
    return tag, {
        "short": f"wangiri.short:{caller}",
        "callees": f"wangiri.callees:{caller}",
        "flag": f"wangiri.flag:{caller}",
    }


def flag_result(readings: CounterReadings, index: int) -> FlagResult | None:
    assert readings.results is not None
    r = readings.results[index]
    return r if isinstance(r, FlagResult) else None


def distinct_result(readings: CounterReadings, index: int) -> DistinctResult | None:
    assert readings.results is not None
    r = readings.results[index]
    return r if isinstance(r, DistinctResult) else None


def hit_result(readings: CounterReadings, index: int) -> HitResult | None:
    assert readings.results is not None
    r = readings.results[index]
    return r if isinstance(r, HitResult) else None

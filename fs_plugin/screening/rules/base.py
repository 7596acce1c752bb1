"""What every check sees: the call's facts, its trunk and parsed numbers."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from fs_plugin.numbering import Number, classify, first_entry, user_part
from fs_plugin.policy.models import Customer, Trunk
from fs_plugin.policy.snapshot import PolicySnapshot, RuleSettings
from fs_plugin.screening.model import CallFacts, RuleResult

if TYPE_CHECKING:
    from fs_plugin.screening.readings import CounterReadings

__all__ = ["CallContext", "Check", "dialled", "fired", "number_of", "shown"]


# Bounded: raw header values are attacker-controlled, so an unbounded cache would
# grow with every distinct junk caller ID; 64k entries covers a busy switch's
# working set of presented numbers.
@lru_cache(maxsize=65536)
def number_of(raw: str) -> Number:
    """The classified number inside a header value (plain user, SIP/tel URI, name-addr)."""
    return classify(user_part(raw))


class CallContext:
    """Per-call inputs to the checks, computed once per decision.

    ``counts`` is set by the engine for the counter rules: the store's readings, or
    ``None`` with ``counts_problem`` saying why they are missing.
    """

    __slots__ = ("callee", "caller", "counts", "counts_problem", "customer", "diversion",
                 "facts", "now", "pai", "snapshot", "trunk")

    def __init__(self, facts: CallFacts, snapshot: PolicySnapshot, now: float) -> None:
        self.facts = facts
        self.snapshot = snapshot
        self.now = now
        self.trunk: Trunk | None = snapshot.match_trunk(facts)
        self.customer: Customer | None = snapshot.customer_of(self.trunk)
        self.caller: Number = number_of(facts.from_user)
        self.callee: Number = number_of(dialled(facts.destination, self.trunk))
        self.counts: CounterReadings | None = None
        self.counts_problem: str | None = None
        self.pai: Number | None = number_of(facts.pai) if facts.pai else None
        self.diversion: Number | None = None
        if facts.diversion:
            # Several Diversion entries arrive comma-joined; the first is the most
            # recent redirection (RFC 5806), the one made by this trunk's customer.
            first = first_entry(facts.diversion)
            if first.strip():
                self.diversion = number_of(first)

    def presented(self) -> tuple[tuple[str, Number], ...]:
        """The caller IDs the callee can be shown: From, and PAI when present."""
        if self.pai is None:
            return (("From", self.caller),)
        return (("From", self.caller), ("P-Asserted-Identity", self.pai))


def dialled(destination: str, trunk: Trunk | None) -> str:
    """The callee as dialled, without the trunk's routing prefix (``strip_prefix``)."""
    prefix = trunk.strip_prefix if trunk is not None else None
    if prefix and destination.startswith(prefix) and len(destination) > len(prefix):
        return destination[len(prefix):]
    return destination


Check = Callable[[CallContext, RuleSettings], RuleResult]


def fired(settings: RuleSettings, reason: str, label: str | None = None) -> RuleResult:
    """The trail entry of a rule that fired (enforced or not, per its mode)."""
    return RuleResult(
        settings.id, True, settings.verdict, settings.mode, reason, settings.cause, label
    )


def shown(n: Number) -> str:
    """A number as written in reasons: what was presented, or a marker when empty."""
    return n.raw if n.raw else "(empty)"


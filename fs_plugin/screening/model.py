"""The values that flow along the call path: what we know of a call, and what we decided.

Both are frozen: a decision is computed once from facts and a policy snapshot and
then only read (journal, wire actions, NOC stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "CallFacts", "Decision", "Mode", "Outcome", "RuleResult", "Verdict", "outcome_from_event",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Verdict.PASS: 0, Verdict.WARN: 1, Verdict.BLOCK: 2}


class Mode(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class CallFacts:
    """Everything the engine may look at, taken from FreeSWITCH's channel data.

    Numbers are kept exactly as presented (raw); the engine normalises them.
    ``variables`` holds the remaining channel data (URL-decoded) for rules and the journal.
    """

    uuid: str
    from_user: str
    destination: str
    pai: str | None = None
    diversion: str | None = None
    caller_id_name: str | None = None
    trunk_hint: str | None = None
    sofia_profile: str | None = None
    gateway: str | None = None
    network_ip: str | None = None
    call_id: str | None = None
    user_agent: str | None = None
    switch: str | None = None
    #: Event-Date-Timestamp of the channel data, microseconds since the epoch (0 = unknown).
    timestamp_us: int = 0
    variables: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's evaluation, kept in the decision's trail whether it fired or not."""

    rule: str
    fired: bool
    verdict: Verdict
    mode: Mode
    reason: str = ""
    cause: str | None = None
    label: str | None = None

    @property
    def enforced(self) -> bool:
        return self.fired and self.mode is Mode.ENFORCE


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided for one call, and why.

    ``rule`` is the id of the rule that set the verdict (``None`` for a plain pass);
    ``cause`` is the FreeSWITCH hangup cause for a block and ``sip_status`` the
    response the caller will see. ``trail`` lists every rule evaluated, shadow
    results included, in evaluation order.
    """

    verdict: Verdict
    rule: str | None
    reason: str
    cause: str | None = None
    sip_status: int | None = None
    label: str | None = None
    announcement: str | None = None
    trunk: str | None = None
    customer: str | None = None
    policy_version: str = ""
    trail: tuple[RuleResult, ...] = ()
    #: True when the decision came from the trunk's ``on_error`` fallback, not the rules.
    fallback: bool = False

    @property
    def shadow_hits(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.trail if r.fired and r.mode is Mode.SHADOW)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended, from FreeSWITCH's ``CHANNEL_HANGUP_COMPLETE``.

    ``ring_time_s`` is ``end - progress`` for a call that rang and was never
    answered (the "ring once" measure), else ``None``. ``disposition`` is sofia's
    ``sip_hangup_disposition``: ``recv_cancel`` (caller gave up), ``send_refuse``
    (the switch rejected), ``send_bye``/``recv_bye`` (answered call ended).
    """

    uuid: str
    hangup_cause: str
    disposition: str | None
    answered: bool
    ring_time_s: float | None
    duration_s: float
    billsec: int
    from_user: str | None
    destination: str | None
    trunk_hint: str | None
    switch: str | None
    end_timestamp_us: int

    @property
    def caller_cancelled(self) -> bool:
        return self.disposition == "recv_cancel"


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def outcome_from_event(headers: Mapping[str, str]) -> Outcome:
    """Build an :class:`Outcome` from a decoded ``CHANNEL_HANGUP_COMPLETE`` header map."""
    start = _int(headers.get("variable_start_uepoch"))
    progress = _int(headers.get("variable_progress_uepoch"))
    answer = _int(headers.get("variable_answer_uepoch"))
    end = _int(headers.get("variable_end_uepoch"))
    ring = (end - progress) / 1e6 if (progress and end and not answer) else None
    return Outcome(
        uuid=headers.get("Unique-ID", ""),
        hangup_cause=headers.get("Hangup-Cause") or headers.get("variable_hangup_cause") or "",
        disposition=headers.get("variable_sip_hangup_disposition"),
        answered=answer > 0,
        ring_time_s=ring,
        duration_s=(end - start) / 1e6 if (start and end) else 0.0,
        billsec=_int(headers.get("variable_billsec")),
        from_user=headers.get("variable_sip_from_user") or headers.get("Caller-Caller-ID-Number"),
        destination=headers.get("Caller-Destination-Number"),
        trunk_hint=headers.get("variable_fsp_trunk"),
        switch=headers.get("FreeSWITCH-Hostname"),
        end_timestamp_us=end,
    )

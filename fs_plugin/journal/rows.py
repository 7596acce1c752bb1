"""Journal rows: what one decision or outcome becomes in PostgreSQL and in the spool.

A row exists in two shapes. The *wire* shape is a plain ``dict`` of JSON-ready
values (times as integer microseconds since the epoch, the trail as a list of
dicts): it is what the spool file stores, so a record survives a restart and a
schema change (columns are looked up by name). The *COPY* shape is a tuple in
table-column order with the Python types asyncpg's binary COPY expects.

Times are integers of microseconds, never floats, so that a record replayed from
the spool after a crash carries exactly the same primary key as the copy that
may already have reached the database, and ``ON CONFLICT DO NOTHING`` drops it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fs_plugin.screening.model import CallFacts, Decision, Outcome, RuleResult

__all__ = [
    "DECISION_COLUMNS",
    "OUTCOME_COLUMNS",
    "Normaliser",
    "PendingDecision",
    "PendingOutcome",
    "datetime_from_us",
    "decision_row",
    "outcome_row",
    "to_copy_record",
    "us_from_epoch",
    "user_part",
]

Normaliser = Callable[[str], str]

#: Column order of ``journal_decision`` as written by COPY (migrations/0001_init.sql).
DECISION_COLUMNS: Final = (
    "decided_at",
    "switch",
    "uuid",
    "trunk",
    "customer",
    "from_raw",
    "from_norm",
    "pai_raw",
    "pai_norm",
    "diversion_raw",
    "diversion_norm",
    "callee",
    "caller_name",
    "sip_call_id",
    "network_ip",
    "verdict",
    "rule",
    "cause",
    "sip_status",
    "reason",
    "label",
    "trail",
    "shadow_hits",
    "policy_version",
    "fallback",
    "latency_ms",
)

#: Column order of ``journal_outcome``.
OUTCOME_COLUMNS: Final = (
    "ended_at",
    "switch",
    "uuid",
    "hangup_cause",
    "disposition",
    "answered",
    "ring_time_s",
    "duration_s",
    "billsec",
    "from_user",
    "callee",
    "trunk",
)

_TIME_COLUMNS: Final = frozenset({"decided_at", "ended_at"})
_JSON_COLUMNS: Final = frozenset({"trail"})
#: Columns that must never be NULL; a spooled row from an older shape gets these defaults.
_DEFAULTS: Final[Mapping[str, object]] = {
    "reason": "",
    "trail": [],
    "shadow_hits": [],
    "policy_version": "",
    "fallback": False,
    "hangup_cause": "",
    "answered": False,
    "duration_s": 0.0,
    "billsec": 0,
}

# Bounds on stored text. Numbers and ids are indexed, and a btree entry cannot exceed
# ~2.7 KB: one absurd caller ID must not make a whole batch fail. Free text is bounded
# so that one record cannot bloat a batch or the spool.
_ID_MAX: Final = 256
_TEXT_MAX: Final = 2048

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    # PostgreSQL text cannot hold NUL, and neither UTF-8 (spool) nor PostgreSQL can
    # hold a lone surrogate (what a bytes → str decode with surrogateescape leaves):
    # a caller name is attacker-controlled bytes.
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= limit else value[:limit]


def us_from_epoch(seconds: float) -> int:
    """Epoch seconds → integer microseconds (the journal's one time unit)."""
    return round(seconds * 1_000_000)


def datetime_from_us(us: int) -> datetime:
    # Integer arithmetic: exact for every representable microsecond, unlike fromtimestamp.
    return _EPOCH + timedelta(microseconds=us)


def user_part(raw: str) -> str:
    """The user part of a presented identity: ``<sip:+8613900001111@gw;user=phone>`` →
    ``+8613900001111``; a bare user part is returned unchanged.

    This is the default normaliser until the numbering layer provides E.164 forms.
    """
    value = raw.strip()
    if value.startswith("<"):
        end = value.find(">")
        value = value[1:end] if end > 0 else value[1:]
    for scheme in ("sips:", "sip:", "tel:"):
        if value[: len(scheme)].lower() == scheme:
            value = value[len(scheme) :]
            break
    for stop in ("@", ";", ">"):
        cut = value.find(stop)
        if cut >= 0:
            value = value[:cut]
    return value


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A decision as queued by the call path: only references, no conversion work.

    The facts' ``variables`` map (a few KiB per call) is deliberately not kept, so a
    full queue holds small objects.
    """

    time_us: int
    uuid: str
    from_user: str
    pai: str | None
    diversion: str | None
    destination: str
    caller_id_name: str | None
    call_id: str | None
    network_ip: str | None
    decision: Decision
    latency_ms: float

    @classmethod
    def of(
        cls, facts: CallFacts, decision: Decision, time_us: int, latency_ms: float
    ) -> PendingDecision:
        return cls(
            time_us,
            facts.uuid,
            facts.from_user,
            facts.pai,
            facts.diversion,
            facts.destination,
            facts.caller_id_name,
            facts.call_id,
            facts.network_ip,
            decision,
            latency_ms,
        )


@dataclass(frozen=True, slots=True)
class PendingOutcome:
    time_us: int
    outcome: Outcome


def _trail_item(result: RuleResult) -> dict[str, object]:
    return {
        "rule": result.rule,
        "fired": result.fired,
        "verdict": result.verdict.value,
        "mode": result.mode.value,
        "reason": _clip(result.reason, _TEXT_MAX),
        "cause": result.cause,
        "label": result.label,
    }


def _norm(normalise: Normaliser, raw: str | None) -> str | None:
    if raw is None:
        return None
    return _clip(normalise(raw), _ID_MAX)


def decision_row(item: PendingDecision, switch: str, normalise: Normaliser) -> dict[str, Any]:
    """The wire shape of a queued decision."""
    d = item.decision
    return {
        "decided_at": item.time_us,
        "switch": switch,
        "uuid": _clip(item.uuid, _ID_MAX),
        "trunk": _clip(d.trunk, _ID_MAX),
        "customer": _clip(d.customer, _ID_MAX),
        "from_raw": _clip(item.from_user, _ID_MAX),
        "from_norm": _norm(normalise, item.from_user),
        "pai_raw": _clip(item.pai, _ID_MAX),
        "pai_norm": _norm(normalise, item.pai),
        "diversion_raw": _clip(item.diversion, _TEXT_MAX),
        "diversion_norm": _norm(normalise, item.diversion),
        "callee": _clip(item.destination, _ID_MAX),
        "caller_name": _clip(item.caller_id_name, _TEXT_MAX),
        "sip_call_id": _clip(item.call_id, _ID_MAX),
        "network_ip": _clip(item.network_ip, _ID_MAX),
        "verdict": d.verdict.value,
        "rule": d.rule,
        "cause": d.cause,
        "sip_status": d.sip_status,
        "reason": _clip(d.reason, _TEXT_MAX),
        "label": _clip(d.label, _TEXT_MAX),
        "trail": [_trail_item(r) for r in d.trail],
        "shadow_hits": [r.rule for r in d.shadow_hits],
        "policy_version": _clip(d.policy_version, _ID_MAX),
        "fallback": d.fallback,
        "latency_ms": item.latency_ms,
    }


def outcome_row(item: PendingOutcome, switch: str) -> dict[str, Any]:
    """The wire shape of a queued outcome."""
    o = item.outcome
    return {
        "ended_at": item.time_us,
        "switch": switch,
        "uuid": _clip(o.uuid, _ID_MAX),
        "hangup_cause": _clip(o.hangup_cause, _ID_MAX),
        "disposition": _clip(o.disposition, _ID_MAX),
        "answered": o.answered,
        "ring_time_s": o.ring_time_s,
        "duration_s": o.duration_s,
        "billsec": o.billsec,
        "from_user": _clip(o.from_user, _ID_MAX),
        "callee": _clip(o.destination, _ID_MAX),
        "trunk": _clip(o.trunk_hint, _ID_MAX),
    }


def to_copy_record(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[object, ...]:
    """Wire shape → COPY tuple in ``columns`` order (missing keys become defaults/NULL)."""
    out: list[object] = []
    for name in columns:
        value = row.get(name, _DEFAULTS.get(name))
        if name in _TIME_COLUMNS:
            value = datetime_from_us(int(value))
        elif name in _JSON_COLUMNS:
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        out.append(value)
    return tuple(out)

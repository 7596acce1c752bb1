"""The ledger's word on a compiled policy: a pure overlay, applied after every load.

The YAML policy is what policy editors write; the ledger (台账, in PostgreSQL) is what
the regulator's desk keeps. Three facts of the ledger change how calls are screened,
and :func:`apply_ledger` folds them into a new snapshot without touching the YAML one:

- a customer whose qualification (licence) has expired, or whom the ledger marks
  ``suspended``/``terminated``, is suspended: ``contract.suspended`` blocks its trunks;
- a customer on the joint-punishment list (一处失信，处处受限) fires
  ``credit.blacklisted`` on every trunk it holds, on every switch that loads the ledger;
- numbers labelled by complaints (12321) join the labels, below any label the policy
  itself gives (the policy editor's word wins, as with CSV labels).

The overlay is a pure function of (snapshot, ledger state, time): the service reloads
the ledger on NOTIFY and applies it again, and again at :func:`next_change`, the
moment the next qualification runs out. The ledger can only make screening stricter:
a ledger ``active`` never re-activates a customer the policy suspends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from fs_plugin.policy.catalogue import DEFAULT_LABEL_TEXT, LabelCategory, label_rule_id
from fs_plugin.policy.models import CustomerStatus
from fs_plugin.policy.snapshot import CompiledLabel, PolicySnapshot, label_key

__all__ = [
    "LedgerCustomer",
    "LedgerLabel",
    "LedgerSnapshot",
    "LedgerState",
    "apply_ledger",
    "base_of",
    "licence_expiry",
    "next_change",
]



def _no_reasons() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LedgerCustomer:
    """What the overlay needs of one ledger customer."""

    id: str
    status: CustomerStatus = CustomerStatus.ACTIVE
    #: Last day the qualification is valid (inclusive, in the policy's time zone);
    #: ``None`` = no expiry recorded.
    licence_until: dt.date | None = None


@dataclass(frozen=True, slots=True)
class LedgerLabel:
    """A label the ledger puts on a number (from complaints)."""

    number: str
    category: LabelCategory
    text: str = ""
    source: str = "12321"
    confidence: float = 1.0
    #: Epoch seconds from which the label no longer applies; ``None`` = no expiry.
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class LedgerState:
    """The ledger as the screening engine sees it; built by ``Ledger.state()``."""

    customers: Mapping[str, LedgerCustomer] = field(default_factory=dict)
    #: Blacklisted customer id → the reason recorded with the blacklisting.
    blacklisted: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[LedgerLabel, ...] = ()

    @property
    def version(self) -> str:
        """A short hash of the content: equal states give equal versions."""
        h = hashlib.sha256()
        for cid in sorted(self.customers):
            c = self.customers[cid]
            h.update(f"c|{c.id}|{c.status.value}|{c.licence_until}\n".encode())
        for cid in sorted(self.blacklisted):
            h.update(f"b|{cid}|{self.blacklisted[cid]}\n".encode())
        for lab in sorted(self.labels, key=lambda x: x.number):
            h.update(
                f"l|{lab.number}|{lab.category.value}|{lab.text}|{lab.source}|"
                f"{lab.confidence}|{lab.expires_at}\n".encode()
            )
        return h.hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class LedgerSnapshot(PolicySnapshot):
    """A policy snapshot with the ledger applied (what the engine reads when a ledger
    is configured). ``version`` is ``<policy version>+L<ledger version>``."""

    #: Customer id → why the ledger suspends it (shown in ``contract.suspended``'s reason).
    suspensions: Mapping[str, str] = field(default_factory=_no_reasons, repr=False)
    #: Customer id → the blacklisting's reason (rule ``credit.blacklisted``).
    blacklisted: Mapping[str, str] = field(default_factory=_no_reasons, repr=False)
    ledger_version: str = ""
    #: The YAML snapshot this one was made from, so the ledger is applied again to it
    #: (never on top of an older ledger) when only the ledger changes.
    base: PolicySnapshot | None = field(default=None, repr=False, compare=False)


def base_of(snapshot: PolicySnapshot) -> PolicySnapshot:
    """The YAML snapshot under any ledger overlay."""
    if isinstance(snapshot, LedgerSnapshot) and snapshot.base is not None:
        return snapshot.base
    return snapshot


def licence_expiry(day: dt.date, timezone: str) -> float:
    """Epoch seconds at which a qualification valid through ``day`` has expired: the
    following midnight in ``timezone`` (a licence "valid until 2026-12-31" holds for
    that whole day)."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zoneinfo.ZoneInfo(timezone))
    return end.timestamp()


def _suspension(c: LedgerCustomer, tz: str, now: float) -> str | None:
    if c.status is not CustomerStatus.ACTIVE:
        return f"ledger status {c.status.value}"
    if c.licence_until is not None and now >= licence_expiry(c.licence_until, tz):
        return f"qualification expired {c.licence_until.isoformat()}"
    return None


def _labels(
    base: PolicySnapshot, state: LedgerState, now: float
) -> Mapping[str, CompiledLabel]:
    if not state.labels:
        return base.labels
    merged = dict(base.labels)
    floor = base.defaults.label_min_confidence
    for lab in state.labels:
        key = label_key(lab.number)
        if key is None or key in base.labels or lab.confidence < floor:
            continue
        if lab.expires_at is not None and lab.expires_at <= now:
            continue
        rule_id = label_rule_id(lab.category)
        text = lab.text or base.rules[rule_id].label or DEFAULT_LABEL_TEXT[lab.category]
        old = merged.get(key)
        if old is not None and old.confidence > lab.confidence:
            continue
        merged[key] = CompiledLabel(
            key, lab.number, lab.category, rule_id, text, lab.source, lab.confidence,
            lab.expires_at,
        )
    return MappingProxyType(merged)


def apply_ledger(snapshot: PolicySnapshot, state: LedgerState, *, now: float) -> LedgerSnapshot:
    """A new snapshot: ``snapshot`` (or the YAML snapshot under it) with ``state`` applied
    as of ``now`` (epoch seconds). Pure: neither argument is changed."""
    base = base_of(snapshot)
    tz = base.defaults.timezone
    customers = dict(base.customers)
    suspensions: dict[str, str] = {}
    for cid, lc in state.customers.items():
        current = customers.get(cid)
        if current is None:
            continue  # a ledger-only customer has no trunk in this policy
        why = _suspension(lc, tz, now)
        if why is None:
            continue
        suspensions[cid] = why
        if current.status is CustomerStatus.ACTIVE:
            status = (
                lc.status if lc.status is not CustomerStatus.ACTIVE else CustomerStatus.SUSPENDED
            )
            customers[cid] = replace(current, status=status)
    blacklisted = {cid: why for cid, why in state.blacklisted.items() if cid in customers}
    values = {f.name: getattr(base, f.name) for f in fields(PolicySnapshot)}
    ledger_version = state.version
    values.update(
        version=f"{base.version}+L{ledger_version}",
        customers=MappingProxyType(customers),
        labels=_labels(base, state, now),
    )
    return LedgerSnapshot(
        **values,
        suspensions=MappingProxyType(suspensions),
        blacklisted=MappingProxyType(blacklisted),
        ledger_version=ledger_version,
        base=base,
    )


def next_change(snapshot: PolicySnapshot, state: LedgerState, *, now: float) -> float | None:
    """The next moment (epoch seconds, after ``now``) the overlay gives a different
    answer without any write: a qualification or a ledger label running out. The
    service applies the ledger again then."""
    tz = base_of(snapshot).defaults.timezone
    times = [
        licence_expiry(c.licence_until, tz)
        for c in state.customers.values()
        if c.licence_until is not None
    ]
    times += [lab.expires_at for lab in state.labels if lab.expires_at is not None]
    later = [t for t in times if t > now]
    return min(later) if later else None

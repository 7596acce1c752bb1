"""The ledger's word on a compiled policy: a pure overlay, applied after every load.

The YAML policy is what policy editors write; the ledger (台账, in PostgreSQL) is what
the regulator's desk keeps. These facts of the ledger change how calls are screened,
and :func:`apply_ledger` folds them into a new snapshot without touching the YAML one:

- a customer whose qualification (licence) has expired, whose ledger contract has
  run out, or whom the ledger marks ``suspended``/``terminated``, is suspended:
  ``contract.suspended`` blocks its trunks;
- a customer on the joint-punishment list (一处失信，处处受限) fires
  ``credit.blacklisted`` on every trunk it holds, on every switch that loads the ledger;
- a ledger contract in force (between its ``valid_from`` and ``valid_until``) adds its
  terms to the customer's policy terms: each cap takes the smaller of the two limits,
  and a call must be inside both sets of calling hours and both sets of targets;
- number resources (95/96/400 numbers and ranges) the ledger assigns to a customer
  are its registered business numbers, and allowed caller IDs on its trunks (unless a
  trunk says ``caller_ids: {ledger: false}``);
- numbers labelled by complaints (12321) join the labels, below any label the policy
  itself gives (the policy editor's word wins, as with CSV labels).

The overlay is a pure function of (snapshot, ledger state, time): the service reloads
the ledger on NOTIFY and applies it again, and again at :func:`next_change`, the
moment the next qualification or contract starts or runs out. Status, credit and
contract terms can only make screening stricter: a ledger ``active`` never
re-activates a customer the policy suspends, and a ledger cap above the policy's
changes nothing. Number resources are the one grant: the ledger is the register of
who holds which number (谁接入谁负责).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

from fs_plugin.numbering import NumberSet
from fs_plugin.policy.catalogue import DEFAULT_LABEL_TEXT, LabelCategory, label_rule_id
from fs_plugin.policy.contracts import (
    CompiledContract,
    cap_limits,
    compile_hours,
    compile_targets,
    stricter_limits,
)
from fs_plugin.policy.models import Caps, CustomerStatus, Hours, Targets
from fs_plugin.policy.snapshot import CompiledLabel, PolicySnapshot, label_key

__all__ = [
    "LedgerContract",
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
class LedgerContract:
    """A customer's contract as the ledger records it (terms parsed and validated)."""

    customer: str
    reference: str = ""
    caps: Caps | None = None
    hours: Hours | None = None
    targets: Targets | None = None
    #: First and last day the contract is in force (inclusive, in the policy's zone).
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    @property
    def name(self) -> str:
        """How reasons name it: "ledger contract HT-2026-001"."""
        return f"ledger contract {self.reference}" if self.reference else "ledger contract"


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
    #: Customer id → its contract of record.
    contracts: Mapping[str, LedgerContract] = field(default_factory=dict)
    #: Customer id → its number resources: "95566", "4008123000-4008123999", ...
    numbers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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
        for cid in sorted(self.contracts):
            h.update(f"k|{self.contracts[cid]!r}\n".encode())
        for cid in sorted(self.numbers):
            h.update(f"n|{cid}|{','.join(sorted(self.numbers[cid]))}\n".encode())
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


def _day_start(day: dt.date, timezone: str) -> float:
    """Epoch seconds of local midnight starting ``day`` in ``timezone``."""
    return licence_expiry(day - dt.timedelta(days=1), timezone)


def _contract_in_force(lc: LedgerContract, tz: str, now: float) -> bool:
    if lc.valid_from is not None and now < _day_start(lc.valid_from, tz):
        return False
    return lc.valid_until is None or now < licence_expiry(lc.valid_until, tz)


def _suspension(c: LedgerCustomer | None, contract: LedgerContract | None, tz: str,
                now: float) -> str | None:
    if c is not None:
        if c.status is not CustomerStatus.ACTIVE:
            return f"ledger status {c.status.value}"
        if c.licence_until is not None and now >= licence_expiry(c.licence_until, tz):
            return f"qualification expired {c.licence_until.isoformat()}"
    if (contract is not None and contract.valid_until is not None
            and now >= licence_expiry(contract.valid_until, tz)):
        return f"{contract.name} expired {contract.valid_until.isoformat()}"
    return None


def _with_terms(compiled: CompiledContract, lc: LedgerContract) -> CompiledContract:
    """``compiled`` with the ledger contract's terms in force on top."""
    caps = compiled.caps
    max_call_s = compiled.max_call_s
    if lc.caps is not None:
        caps = stricter_limits(caps, cap_limits(lc.caps))
        if lc.caps.max_call_s is not None:
            max_call_s = float(lc.caps.max_call_s)
    # The ledger names no calendar file: its hours keep the policy's holiday calendar.
    calendar = compiled.hours.calendar if compiled.hours is not None else None
    return replace(
        compiled,
        caps=caps,
        max_call_s=max_call_s,
        ledger_hours=compile_hours(lc.hours, calendar) if lc.hours is not None else None,
        ledger_targets=compile_targets(lc.targets) if lc.targets is not None else None,
        ledger_from=lc.name,
    )


def _numbers(
    base: PolicySnapshot, state: LedgerState
) -> tuple[Mapping[str, NumberSet], Mapping[str, NumberSet]]:
    """Allowed caller IDs per trunk and business numbers per customer, with the
    ledger's number resources added."""
    if not state.numbers:
        return base.allowed, base.business_numbers
    allowed = dict(base.allowed)
    for t in base.trunks.values():
        extra = state.numbers.get(t.customer or "")
        if extra and t.caller_ids.ledger:
            ci = t.caller_ids
            allowed[t.id] = NumberSet(numbers=ci.numbers, prefixes=ci.prefixes,
                                      ranges=(*ci.ranges, *extra))
    business = dict(base.business_numbers)
    for cid, extra in state.numbers.items():
        customer = base.customers.get(cid)
        if customer is not None and extra:
            business[cid] = NumberSet(ranges=(*customer.business_numbers, *extra))
    return MappingProxyType(allowed), MappingProxyType(business)


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
    contracts = dict(base.contracts)
    suspensions: dict[str, str] = {}
    for cid in state.customers.keys() | state.contracts.keys():
        current = customers.get(cid)
        if current is None:
            continue  # a ledger-only customer has no trunk in this policy
        lc = state.contracts.get(cid)
        compiled = contracts.get(cid)
        if lc is not None and compiled is not None and _contract_in_force(lc, tz, now):
            contracts[cid] = _with_terms(compiled, lc)
        why = _suspension(state.customers.get(cid), lc, tz, now)
        if why is None:
            continue
        suspensions[cid] = why
        if current.status is CustomerStatus.ACTIVE:
            ledger_status = state.customers[cid].status if cid in state.customers else None
            status = (
                ledger_status if ledger_status not in (None, CustomerStatus.ACTIVE)
                else CustomerStatus.SUSPENDED
            )
            customers[cid] = replace(current, status=status)
    blacklisted = {cid: why for cid, why in state.blacklisted.items() if cid in customers}
    # A ledger concurrency cap makes the customer's trunks hold leases that hangups
    # release, as one written in the policy does.
    leased = set(base.leased_trunks) | {
        t.id for t in base.trunks.values()
        if t.customer in state.contracts and t.customer in contracts
        and contracts[t.customer].caps.concurrency is not None
    }
    allowed, business = _numbers(base, state)
    values = {f.name: getattr(base, f.name) for f in fields(PolicySnapshot)}
    ledger_version = state.version
    values.update(
        version=f"{base.version}+L{ledger_version}",
        customers=MappingProxyType(customers),
        contracts=MappingProxyType(contracts),
        labels=_labels(base, state, now),
        leased_trunks=tuple(sorted(leased)),
        allowed=allowed,
        business_numbers=business,
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
    answer without any write: a qualification, a contract or a ledger label starting
    or running out. The service applies the ledger again then."""
    tz = base_of(snapshot).defaults.timezone
    times = [
        licence_expiry(c.licence_until, tz)
        for c in state.customers.values()
        if c.licence_until is not None
    ]
    for lc in state.contracts.values():
        if lc.valid_from is not None:
            times.append(_day_start(lc.valid_from, tz))
        if lc.valid_until is not None:
            times.append(licence_expiry(lc.valid_until, tz))
    times += [lab.expires_at for lab in state.labels if lab.expires_at is not None]
    later = [t for t in times if t > now]
    return min(later) if later else None

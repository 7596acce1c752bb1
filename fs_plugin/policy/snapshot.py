"""The compiled, immutable policy the engine reads on every call.

Everything the call path needs is precomputed here once per load: number sets,
lookup tables for trunk matching, each rule's effective mode/verdict/cause, the
label table keyed by normalised number with expiry as epoch seconds. A reload
builds a new snapshot and swaps the reference; a snapshot is never mutated.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from fs_plugin.causes import sip_status_for
from fs_plugin.numbering import NumberSet, classify, user_part
from fs_plugin.policy.catalogue import DEFAULT_LABEL_TEXT, RULE_ORDER, LabelCategory, label_rule_id
from fs_plugin.policy.contracts import (
    CompiledContract,
    CompiledRegion,
    compile_contract,
    compile_region,
)
from fs_plugin.policy.lists import EMPTY_LIST, NumberList, PolicyData
from fs_plugin.policy.models import (
    Action,
    Customer,
    Defaults,
    Industries,
    Label,
    Patterns,
    PolicyFile,
    RuleConfig,
    Trunk,
    TrunkKind,
)
from fs_plugin.screening.model import CallFacts, Mode, RuleResult, Verdict

__all__ = [
    "ANONYMOUS_DEFAULT",
    "CompiledContract",
    "CompiledLabel",
    "CompiledRegion",
    "PolicySnapshot",
    "RuleSettings",
    "compile_snapshot",
    "label_key",
]

#: What an anonymous caller ID gets when the trunk sets no ``anonymous``.
#: Enterprise and call-centre trunks must present their allowed numbers (MISSION
#: item 2), so hiding the number is a failed authentication. On interconnect and
#: international trunks calling-line privacy is a legal subscriber service.
ANONYMOUS_DEFAULT: Mapping[TrunkKind, Action] = MappingProxyType(
    {
        TrunkKind.ENTERPRISE: Action.BLOCK,
        TrunkKind.CALL_CENTRE: Action.BLOCK,
        TrunkKind.INTERNATIONAL: Action.PASS,
        TrunkKind.INTERCONNECT: Action.PASS,
    }
)

_DEFAULT_CHANNEL_VAR = "fsp_trunk"


def label_key(number: str) -> str | None:
    """The key a number is labelled under (``Number.key``: national form, or E.164)."""
    return classify(user_part(number)).key


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """One rule's effective configuration (catalogue default merged with the policy)."""

    id: str
    mode: Mode
    verdict: Verdict
    cause: str
    sip_status: int
    label: str | None
    announcement: str | None
    #: The trail entry for "evaluated, did not fire", shared by every call.
    idle: RuleResult


@dataclass(frozen=True, slots=True)
class CompiledLabel:
    key: str
    number: str
    category: LabelCategory
    rule: str
    text: str
    source: str
    confidence: float
    #: Epoch seconds from which the label no longer applies; ``None`` = no expiry.
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """An immutable compiled policy. ``version`` is a short hash of the input files."""

    version: str
    sources: tuple[str, ...]
    defaults: Defaults
    trunks: Mapping[str, Trunk]
    customers: Mapping[str, Customer]
    rules: Mapping[str, RuleSettings]
    labels: Mapping[str, CompiledLabel] = field(repr=False)
    #: Effective contract terms by customer id (contract over industry defaults).
    contracts: Mapping[str, CompiledContract] = field(repr=False)
    key_regions: tuple[CompiledRegion, ...]
    patterns: Patterns
    #: Global do-not-call list (``lists.dnc``), for every marketing call.
    dnc: NumberList = field(repr=False)
    #: Trunks with a concurrency cap (their customer's or a key region's), whose leases a
    #: hangup of unknown trunk releases.
    leased_trunks: tuple[str, ...] = field(repr=False)
    allowed: Mapping[str, NumberSet] = field(repr=False)
    business_numbers: Mapping[str, NumberSet] = field(repr=False)
    anonymous: Mapping[str, Action] = field(repr=False)
    _by_var: Mapping[tuple[str, str], Trunk] = field(repr=False)
    _other_vars: tuple[str, ...] = field(repr=False)
    _by_gateway: Mapping[str, Trunk] = field(repr=False)
    _by_profile: Mapping[str, Trunk] = field(repr=False)
    #: (network, trunk), longest prefix first so the first hit is the most specific.
    _by_source: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Trunk], ...] = field(
        repr=False
    )

    def match_trunk(self, facts: CallFacts) -> Trunk | None:
        """The trunk a call arrived on, or ``None``.

        Precedence, first hit wins: (1) the trunk's channel variable (``fsp_trunk``
        unless ``match.channel_var`` names another) equal to the trunk id — the
        dialplan's explicit word; (2) ``match.gateway`` = the sofia gateway name;
        (3) ``match.sofia_profile`` = the profile name; (4) ``match.source``: the
        most specific CIDR containing the signalling source address. A hint naming
        no known trunk falls through to the next step.
        """
        hint = facts.trunk_hint
        if hint:
            trunk = self._by_var.get((_DEFAULT_CHANNEL_VAR, hint))
            if trunk is not None:
                return trunk
        for var in self._other_vars:
            value = facts.variables.get("variable_" + var)
            if value:
                trunk = self._by_var.get((var, value))
                if trunk is not None:
                    return trunk
        if facts.gateway:
            trunk = self._by_gateway.get(facts.gateway)
            if trunk is not None:
                return trunk
        if facts.sofia_profile:
            trunk = self._by_profile.get(facts.sofia_profile)
            if trunk is not None:
                return trunk
        if facts.network_ip and self._by_source:
            try:
                addr = ipaddress.ip_address(facts.network_ip)
            except ValueError:
                return None
            for net, trunk in self._by_source:
                if addr in net:
                    return trunk
        return None

    def customer_of(self, trunk: Trunk | None) -> Customer | None:
        if trunk is None or trunk.customer is None:
            return None
        return self.customers.get(trunk.customer)

    def rule(self, rule_id: str) -> RuleSettings:
        return self.rules[rule_id]

    def contract_of(self, trunk: Trunk | None) -> CompiledContract | None:
        if trunk is None or trunk.customer is None:
            return None
        return self.contracts.get(trunk.customer)

    def is_marketing(self, trunk: Trunk | None) -> bool:
        """Consent rules apply: the trunk says ``marketing: true`` or its customer's
        ``business_type`` is ``marketing``."""
        if trunk is None:
            return False
        if trunk.marketing:
            return True
        contract = self.contract_of(trunk)
        return contract is not None and contract.marketing


def _rule_settings(
    configs: Mapping[str, RuleConfig], defaults: Defaults
) -> dict[str, RuleSettings]:
    out: dict[str, RuleSettings] = {}
    for spec in RULE_ORDER:
        cfg = configs.get(spec.id) or RuleConfig(mode=spec.mode)
        verdict = cfg.verdict or spec.verdict
        cause = cfg.cause or spec.cause
        if cause is None:
            cause = defaults.cid_block_cause if spec.family == "cid" else defaults.block_cause
        idle = RuleResult(spec.id, False, verdict, cfg.mode)
        out[spec.id] = RuleSettings(
            spec.id, cfg.mode, verdict, cause, sip_status_for(cause), cfg.label,
            cfg.announcement, idle,
        )
    return out


def _expiry(day: dt.date | None, tz: str) -> float | None:
    if day is None:
        return None
    # A label "expires 2027-06-30" applies through that whole day in the policy's zone.
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zoneinfo.ZoneInfo(tz))
    return end.timestamp()


def _number_set(
    numbers: Iterable[str], prefixes: Iterable[str], ranges: Iterable[str]
) -> NumberSet:
    return NumberSet(
        numbers=tuple(numbers),
        prefixes=tuple(prefixes),
        ranges=tuple(ranges),
    )


def _merged_labels(
    files: Sequence[PolicyFile], data: PolicyData
) -> dict[str, Label]:
    """YAML labels, then CSV labels (``lists.labels``) for numbers YAML does not label.

    A hand-written YAML label is the policy editor's word and wins; among CSV rows for
    one number (several sources), the highest confidence wins, the later on a tie.
    """
    merged: dict[str, Label] = {}
    for f in files:
        for lab in f.labels:
            key = label_key(lab.number)
            if key is not None:  # always: models._check_number admitted the number
                merged[key] = lab
    from_yaml = set(merged)
    for f in files:
        for ref in f.lists.labels if f.lists is not None else ():
            for _line, lab in data.labels.get(ref, ()):
                key = lab.number  # read_label_csv stores the key
                if key in from_yaml:
                    continue
                old = merged.get(key)
                if old is None or lab.confidence >= old.confidence:
                    merged[key] = lab
    return merged


def compile_snapshot(
    files: Sequence[PolicyFile],
    version: str,
    sources: tuple[str, ...],
    data: PolicyData | None = None,
) -> PolicySnapshot:
    """Build a snapshot from already cross-checked files (see ``loader._cross_check``)
    and the data files they name (``data``, read by the loader)."""
    data = data if data is not None else PolicyData()
    defaults = next((f.defaults for f in files if f.defaults is not None), None) or Defaults()
    trunks = {t.id: t for f in files for t in f.trunks}
    customers = {c.id: c for f in files for c in f.customers}
    configs = {k: v for f in files for k, v in f.rules.items()}
    rules = _rule_settings(configs, defaults)

    labels: dict[str, CompiledLabel] = {}
    for key, lab in _merged_labels(files, data).items():
        rule_id = label_rule_id(lab.category)
        cfg = configs.get(rule_id)
        floor = defaults.label_min_confidence
        if cfg is not None and cfg.min_confidence is not None:
            floor = cfg.min_confidence
        if lab.confidence < floor:
            continue
        text = lab.label or rules[rule_id].label or DEFAULT_LABEL_TEXT[lab.category]
        labels[key] = CompiledLabel(
            key, lab.number, lab.category, rule_id, text, lab.source, lab.confidence,
            _expiry(lab.expires, defaults.timezone),
        )

    industries: Industries | None = next(
        (f.industries for f in files if f.industries is not None), None
    )
    contracts = {
        c.id: compile_contract(c, industries, data.calendars, data.numbers)
        for c in customers.values()
    }
    key_regions = tuple(compile_region(r) for f in files for r in f.key_regions)
    patterns = next((f.patterns for f in files if f.patterns is not None), None) or Patterns()
    dnc_refs = [ref for f in files if f.lists is not None for ref in f.lists.dnc]
    dnc = NumberList.merge(data.numbers[r] for r in dnc_refs) if dnc_refs else EMPTY_LIST
    # An explicit region concurrency cap may hold a lease on any trunk; a factor only
    # scales a contract's own cap.
    region_leases = any(r.caps.concurrency is not None for r in key_regions)
    leased = tuple(sorted(
        t.id for t in trunks.values()
        if region_leases or (
            t.customer in contracts and contracts[t.customer].caps.concurrency is not None)
    ))

    by_var: dict[tuple[str, str], Trunk] = {}
    by_gateway: dict[str, Trunk] = {}
    by_profile: dict[str, Trunk] = {}
    by_source: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Trunk]] = []
    for t in trunks.values():
        by_var[(t.match.channel_var, t.id)] = t
        if t.match.gateway:
            by_gateway[t.match.gateway] = t
        if t.match.sofia_profile:
            by_profile[t.match.sofia_profile] = t
        by_source.extend((ipaddress.ip_network(c), t) for c in t.match.source)
    by_source.sort(key=lambda pair: -pair[0].prefixlen)
    other_vars = tuple(sorted({v for v, _ in by_var} - {_DEFAULT_CHANNEL_VAR}))

    allowed = {
        t.id: _number_set(t.caller_ids.numbers, t.caller_ids.prefixes, t.caller_ids.ranges)
        for t in trunks.values()
    }
    business = {c.id: _number_set((), (), c.business_numbers) for c in customers.values()}
    anonymous = {t.id: t.anonymous or ANONYMOUS_DEFAULT[t.kind] for t in trunks.values()}

    return PolicySnapshot(
        version=version,
        sources=sources,
        defaults=defaults,
        trunks=MappingProxyType(trunks),
        customers=MappingProxyType(customers),
        rules=MappingProxyType(rules),
        labels=MappingProxyType(labels),
        contracts=MappingProxyType(contracts),
        key_regions=key_regions,
        patterns=patterns,
        dnc=dnc,
        leased_trunks=leased,
        allowed=MappingProxyType(allowed),
        business_numbers=MappingProxyType(business),
        anonymous=MappingProxyType(anonymous),
        _by_var=MappingProxyType(by_var),
        _other_vars=other_vars,
        _by_gateway=MappingProxyType(by_gateway),
        _by_profile=MappingProxyType(by_profile),
        _by_source=tuple(by_source),
    )

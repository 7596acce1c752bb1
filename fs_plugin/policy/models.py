# doc() returns dataclasses.field(...) with the field's documentation attached; RUF009
# cannot see that, and a noqa on each of the thirty fields would bury the schema.
# ruff: noqa: RUF009
"""The policy's YAML schema as frozen dataclasses.

Each field's type and ``doc`` metadata drive three things at once: the loader's
validation (``loader.py``), the JSON Schema for editors (``schema.py``) and, by
hand, ``policies/README.md``. A field without a default is required. String
fields with a special meaning (numbers, causes, CIDRs, ids) are ``Annotated``
with a :class:`Check` that validates them at load time, so a bad value is
reported with its file, line and key instead of surfacing on a call.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any

from fs_plugin.causes import cause_by_name
from fs_plugin.numbering import AREA_CODES, NumberSet, classify, parse_range, user_part
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.screening.model import Mode, Verdict

__all__ = [
    "Action",
    "Bombing",
    "BusinessType",
    "CallerIds",
    "Caps",
    "Check",
    "Consent",
    "Contract",
    "Customer",
    "CustomerStatus",
    "Defaults",
    "Hours",
    "Industries",
    "Industry",
    "IndustryTerms",
    "KeyRegion",
    "Label",
    "Lists",
    "Patterns",
    "PolicyFile",
    "RegionSide",
    "RuleConfig",
    "TargetClass",
    "Targets",
    "Trunk",
    "TrunkKind",
    "TrunkMatch",
    "Wangiri",
    "Weekday",
    "Window",
    "parse_time_window",
]


@dataclass(frozen=True, slots=True)
class Check:
    """How a string field is validated and described in the JSON Schema.

    ``check`` raises ``ValueError`` with a message for the policy editor and may
    return a normalised value (``None`` keeps the text as written).
    ``numeric_ok`` lets a plain YAML integer stand for the string (phone numbers
    are often written unquoted; the source text is kept, so ``0208...`` is safe).
    """

    name: str
    description: str
    check: Callable[[str], str | None] | None = None
    pattern: str | None = None
    numeric_ok: bool = False


_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}")


def _check_id(text: str) -> None:
    if not _ID_RE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a valid id (letters, digits and _ . : @ -, at most 64 characters)"
        )


def _check_number(text: str) -> str:
    n = classify(user_part(text))
    if n.key is None:
        why = n.malformed_reason or n.cls.value
        raise ValueError(f"{text!r} is not a valid phone number ({why})")
    # Normalised once here, so number sets and label keys compare like with like.
    return n.key


def _check_prefix(text: str) -> None:
    NumberSet(prefixes=(text,))


def _check_range(text: str) -> None:
    parse_range(text)


def _check_cause(text: str) -> None:
    if cause_by_name(text) is None:
        raise ValueError(
            f"{text!r} is not a FreeSWITCH hangup cause this plug-in knows "
            "(e.g. UNWANTED, CALL_REJECTED, INCOMING_CALL_BARRED)"
        )


def _check_cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a CIDR network ({exc})") from None


def _check_timezone(text: str) -> None:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None


def _check_sound(text: str) -> None:
    # FreeSWITCH resolves relative names against its sound prefix; what we can
    # rule out here is text that would break the playback argument.
    if not text or any(c in text for c in "\n\r\t"):
        raise ValueError(f"{text!r} is not a usable sound file path")


_TIME_WINDOW_RE = re.compile(r"([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])")


def parse_time_window(text: str) -> tuple[int, int]:
    """``'HH:MM-HH:MM'`` as (start, end) minutes after local midnight; end may be 1440.

    An end at or before the start crosses midnight (``22:00-06:00``); ``00:00-24:00``
    is the whole day. Raises ``ValueError`` with a message for the policy editor.
    """
    m = _TIME_WINDOW_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a time window HH:MM-HH:MM (e.g. 09:00-20:00)")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= 24 * 60 or end > 24 * 60:
        raise ValueError(f"{text!r}: hours run from 00:00 to 24:00")
    if start == end:
        raise ValueError(f"{text!r} is an empty window (write 00:00-24:00 for the whole day)")
    return start, end


def _check_time_window(text: str) -> str:
    parse_time_window(text)
    return text.strip()


def _check_region(text: str) -> str:
    # An area code (with its trunk 0) or a place name as it appears in the number
    # attribution (海南, 海口, 广东省广州市). Codes are checked against the numbering
    # plan so a typo does not silently match nothing.
    value = text.strip()
    if not value:
        raise ValueError("a region must not be empty")
    if value.isdigit():
        if not value.startswith("0") or value[1:] not in AREA_CODES:
            raise ValueError(f"{text!r} is not a Chinese area code (with its 0, e.g. 0898)")
    elif any(c.isdigit() for c in value):
        raise ValueError(f"{text!r}: write an area code (0898) or a place name (海南), not both")
    return value


def _check_file(text: str) -> str:
    # Resolved against the directory of the YAML file that names it (loader.py); only
    # the shape is checked here, the file itself when the policy is loaded.
    value = text.strip()
    if not value or any(c in value for c in "\n\r\t\0"):
        raise ValueError(f"{text!r} is not a usable file path")
    return value


Id = Annotated[str, Check("id", "identifier", _check_id, _ID_RE.pattern)]
NumberText = Annotated[
    str,
    Check("number", "one phone number, e.g. 4008123123", _check_number, numeric_ok=True),
]
PrefixText = Annotated[
    str,
    Check("prefix", "number prefix, e.g. 0208888 or 0208888*", _check_prefix, r"[0-9]+\*?",
          numeric_ok=True),
]
RangeText = Annotated[
    str,
    Check(
        "number-range",
        "inclusive range 'LOW-HIGH' of equal-length numbers, a single number, or a prefix 'NNN*'",
        _check_range,
        numeric_ok=True,
    ),
]
CauseName = Annotated[str, Check("cause", "FreeSWITCH hangup cause name", _check_cause)]
Cidr = Annotated[str, Check("cidr", "IPv4 or IPv6 network, e.g. 192.0.2.0/24", _check_cidr)]
TimezoneName = Annotated[str, Check("timezone", "IANA time zone", _check_timezone)]
SoundPath = Annotated[str, Check("sound", "sound file FreeSWITCH can play", _check_sound)]
TimeWindowText = Annotated[
    str,
    Check(
        "time-window",
        "local time window HH:MM-HH:MM, e.g. 09:00-20:00 (an end before the start crosses "
        "midnight)",
        _check_time_window,
        _TIME_WINDOW_RE.pattern,
    ),
]
RegionText = Annotated[
    str,
    Check(
        "region",
        "area code with its 0 (0898) or a place name from the number attribution (海南)",
        _check_region,
        numeric_ok=True,
    ),
]
FilePath = Annotated[
    str, Check("file", "data file path, relative to the YAML file naming it", _check_file)
]


def doc(text: str, default: Any = ..., factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field carrying its documentation (for the schema and the README)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"doc": text})
    if default is ...:
        return field(metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


class TrunkKind(StrEnum):
    ENTERPRISE = "enterprise"
    CALL_CENTRE = "call_centre"
    INTERNATIONAL = "international"
    INTERCONNECT = "interconnect"


class Action(StrEnum):
    PASS = "pass"
    BLOCK = "block"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class Industry(StrEnum):
    FINANCE = "finance"
    REAL_ESTATE = "real_estate"
    MEDICAL = "medical"
    HR = "hr"
    TOURISM = "tourism"
    OTHER = "other"


class BusinessType(StrEnum):
    """What a customer's calls are for; ``marketing`` makes every trunk of it a marketing
    trunk (consent rules apply), whatever the trunk's own ``marketing`` says."""

    MARKETING = "marketing"
    CUSTOMER_SERVICE = "customer_service"
    NOTIFICATION = "notification"
    OTHER = "other"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class TargetClass(StrEnum):
    """Callee classes a contract may permit (the numbering package's classes)."""

    MOBILE = "mobile"
    FIXED = "fixed"
    SERVICE = "service"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"
    INTERNATIONAL = "international"


class RegionSide(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    EITHER = "either"


_ALL_WEEKDAYS = tuple(Weekday)


@dataclass(frozen=True, slots=True)
class Hours:
    """Permitted calling hours, in the trunk's time zone (rule contract.hours)."""

    windows: tuple[TimeWindowText, ...] = doc(
        "permitted local time windows HH:MM-HH:MM (start inclusive, end exclusive)",
        ("00:00-24:00",),
    )
    weekdays: tuple[Weekday, ...] = doc(
        "days calls are permitted: mon tue wed thu fri sat sun", _ALL_WEEKDAYS
    )
    holidays: FilePath | None = doc(
        "calendar file (CSV `date,kind[,name]` or YAML `holidays:`/`workdays:` lists): "
        "no calls on a holiday; a make-up workday (调休) counts as mon-fri",
        None,
    )


@dataclass(frozen=True, slots=True)
class Targets:
    """Whom a contract may call (rule contract.targets). Empty lists mean any."""

    classes: tuple[TargetClass, ...] = doc(
        "permitted callee classes: mobile | fixed | service | toll_free | short_code | "
        "international",
        (),
    )
    regions: tuple[RegionText, ...] = doc(
        "permitted callee regions: area codes (0898) or attribution names (海南, 广州)", ()
    )
    exclude_regions: tuple[RegionText, ...] = doc("regions never to be called", ())


@dataclass(frozen=True, slots=True)
class Window:
    """Calls allowed per sliding window; unset means no cap for that window."""

    per_minute: int | None = doc("calls per sliding 60 s", None)
    per_hour: int | None = doc("calls per sliding hour", None)
    per_day: int | None = doc("calls per sliding 24 h", None)


@dataclass(frozen=True, slots=True)
class Caps:
    """Frequency caps (rate.*). Each value left unset is inherited (industry → contract)."""

    caller: Window | None = doc("per caller ID (rate.caller)", None)
    trunk_cps: int | None = doc("calls per second per trunk (rate.trunk_cps)", None)
    concurrency: int | None = doc("concurrent calls per trunk (rate.concurrency)", None)
    max_call_s: int | None = doc(
        "longest call, seconds: a concurrency slot whose hangup is lost frees itself after "
        "this (default 7200)",
        None,
    )
    callee: Window | None = doc("per callee, per customer (rate.callee)", None)
    pair: Window | None = doc("per caller → callee pair (rate.pair)", None)


@dataclass(frozen=True, slots=True)
class Consent:
    """Consent whitelist and do-not-call lists of one customer (consent.*)."""

    whitelist: tuple[FilePath, ...] = doc(
        "CSV files `number,evidence,date` of callees who agreed to marketing calls", ()
    )
    dnc: tuple[FilePath, ...] = doc(
        "CSV files `number,date` of callees who refused this customer's calls", ()
    )


@dataclass(frozen=True, slots=True)
class IndustryTerms:
    """Defaults a customer of the industry inherits unless its contract overrides them."""

    hours: Hours | None = doc("calling hours (a contract's own `hours` replaces these)", None)
    targets: Targets | None = doc("permitted targets (a contract's `targets` replaces these)",
                                  None)
    caps: Caps | None = doc("caps (a contract overrides them value by value)", None)
    description: str = doc("free text for people (e.g. the regulation it follows)", "")


@dataclass(frozen=True, slots=True)
class Contract:
    """A customer's contract terms (MISSION item 6); unset parts come from its industry."""

    hours: Hours | None = doc("permitted calling hours", None)
    targets: Targets | None = doc("permitted callee classes and regions", None)
    caps: Caps | None = doc("frequency caps", None)
    consent: Consent | None = doc("consent whitelist and do-not-call lists", None)
    reference: str = doc("contract number or document reference, for the ledger", "")


@dataclass(frozen=True, slots=True)
class Industries:
    """Per industry (MISSION item 15): hours, targets and caps its customers inherit."""

    finance: IndustryTerms | None = doc("finance", None)
    real_estate: IndustryTerms | None = doc("real estate", None)
    medical: IndustryTerms | None = doc("medical and health food", None)
    hr: IndustryTerms | None = doc("HR services", None)
    tourism: IndustryTerms | None = doc("tourism", None)
    other: IndustryTerms | None = doc("every other customer", None)


@dataclass(frozen=True, slots=True)
class KeyRegion:
    """A key region (MISSION item 14): calls from or to it get stricter caps."""

    id: Id = doc("name of the key region, shown in reasons")
    regions: tuple[RegionText, ...] = doc(
        "area codes (0898) or attribution names (海南) making up the region"
    )
    applies_to: RegionSide = doc("whose attribution counts: caller | callee | either",
                                 RegionSide.EITHER)
    factor: float | None = doc(
        "multiply the contract's caps by this (0 < factor <= 1, rounded down, at least 1)",
        None,
    )
    caps: Caps | None = doc("explicit caps for calls in the region (the stricter value wins)",
                            None)
    description: str = doc("free text for people", "")


@dataclass(frozen=True, slots=True)
class Bombing:
    """pattern.bombing (呼死你): thresholds per callee."""

    window_s: int = doc("window the calls are counted in, seconds", 600)
    per_caller: int = doc("more calls than this from one caller to one callee fire the rule",
                          5)
    calls: int = doc("more calls than this to one callee from several callers fire the rule",
                     20)
    min_callers: int = doc("…when they come from at least this many distinct callers", 3)
    flag_period_s: int = doc(
        "how long a bombed callee stays flagged: calls to it from callers already seen in "
        "this period are blocked",
        3600,
    )
    label: str = doc("label shown on the decision and to the NOC", "呼死你攻击目标")


@dataclass(frozen=True, slots=True)
class Wangiri:
    """pattern.wangiri (响一声): what makes a caller a suspected ring-once caller."""

    max_ring_s: float = doc("a call ringing less than this, unanswered and cancelled by the "
                            "caller, is a short call", 5.0)
    window_s: int = doc("window short calls are counted in, seconds", 3600)
    short_calls: int = doc("more short calls than this in the window…", 20)
    callees: int = doc("…to more distinct callees than this flag the caller", 10)
    flag_period_s: int = doc("how long a flagged caller stays flagged, seconds", 86400)
    label: str = doc("label shown to the callee (warn) and the NOC", "疑似响一声诈骗")


@dataclass(frozen=True, slots=True)
class Patterns:
    bombing: Bombing | None = doc("呼死你 thresholds (rule pattern.bombing); unset = off", None)
    wangiri: Wangiri | None = doc("响一声 thresholds (rule pattern.wangiri); unset = off", None)


@dataclass(frozen=True, slots=True)
class Lists:
    """Data files shared by the whole policy."""

    dnc: tuple[FilePath, ...] = doc(
        "CSV files `number,date` of callees who refused all marketing calls (global DNC)", ()
    )
    labels: tuple[FilePath, ...] = doc(
        "CSV files `number,category,label,source,confidence,expires` of labelled numbers", ()
    )


@dataclass(frozen=True, slots=True)
class TrunkMatch:
    """How a call is recognised as arriving on this trunk (see snapshot.match_trunk)."""

    channel_var: str = doc(
        "channel variable whose value is this trunk's id (set by the dialplan)", "fsp_trunk"
    )
    gateway: str | None = doc("sofia gateway name the call arrived through", None)
    sofia_profile: str | None = doc("sofia profile the call arrived on", None)
    source: tuple[Cidr, ...] = doc("networks the call's signalling comes from", ())


@dataclass(frozen=True, slots=True)
class CallerIds:
    """The caller IDs a trunk may present (From, and P-Asserted-Identity)."""

    numbers: tuple[NumberText, ...] = doc("single numbers", ())
    prefixes: tuple[PrefixText, ...] = doc("number prefixes", ())
    ranges: tuple[RangeText, ...] = doc("inclusive number ranges LOW-HIGH", ())
    check_pai: bool = doc("P-Asserted-Identity, when present, must be allowed too", True)
    check_diversion: bool = doc(
        "a forwarded call's Diversion number must be allowed too", False
    )
    ledger: bool = doc(
        "number resources the ledger (台账) assigns to the trunk's customer are allowed too",
        True,
    )


@dataclass(frozen=True, slots=True)
class Trunk:
    id: Id = doc("trunk id; the value the dialplan puts in the fsp_trunk channel variable")
    kind: TrunkKind = doc("enterprise | call_centre | international | interconnect")
    customer: Id | None = doc(
        "id of the customer responsible for the trunk (required for enterprise and call_centre)",
        None,
    )
    match: TrunkMatch = doc("how calls are recognised as this trunk's", factory=TrunkMatch)
    caller_ids: CallerIds = doc(
        "caller IDs the trunk may present (required for enterprise and call_centre)",
        factory=CallerIds,
    )
    on_error: Action = doc(
        "what happens when screening fails: pass (fail-open) | block", Action.PASS
    )
    anonymous: Action | None = doc(
        "anonymous caller IDs: pass | block; default by kind (block on enterprise and "
        "call_centre, pass on international and interconnect)",
        None,
    )
    timezone: TimezoneName = doc("time zone for calendar rules", "Asia/Shanghai")
    marketing: bool = doc("the trunk carries marketing calls (consent rules apply)", False)
    strip_prefix: str | None = doc(
        "dialplan prefix to strip from the callee number before screening", None
    )
    description: str = doc("free text for people", "")


@dataclass(frozen=True, slots=True)
class Customer:
    id: Id = doc("customer id, referenced by trunks")
    name: str = doc("registered name (the ledger's entrusting enterprise)", "")
    status: CustomerStatus = doc("active | suspended | terminated", CustomerStatus.ACTIVE)
    industry: Industry = doc(
        "finance | real_estate | medical | hr | tourism | other", Industry.OTHER
    )
    business_numbers: tuple[RangeText, ...] = doc(
        "registered business numbers (numbers, ranges LOW-HIGH, or prefixes NNN*)", ()
    )
    business_type: BusinessType = doc(
        "marketing | customer_service | notification | other; marketing customers need "
        "consent for every call",
        BusinessType.OTHER,
    )
    contract: Contract | None = doc(
        "contract terms: hours, targets, caps, consent (unset parts: the industry's)", None
    )
    description: str = doc("free text for people", "")


@dataclass(frozen=True, slots=True)
class RuleConfig:
    mode: Mode = doc("enforce | shadow (evaluate and record, never enforce) | off", Mode.ENFORCE)
    verdict: Verdict | None = doc(
        "block | warn, for rules that allow both (label.*); default per rule", None
    )
    cause: CauseName | None = doc(
        "hangup cause when blocking (UNWANTED → 607, CALL_REJECTED → 603, "
        "INCOMING_CALL_BARRED → 403)",
        None,
    )
    label: str | None = doc("text shown to the callee when the rule warns", None)
    announcement: SoundPath | None = doc("sound file played before hanging up", None)
    min_confidence: float | None = doc(
        "label.* only: labels below this confidence do not fire the rule "
        "(default defaults.label_min_confidence)",
        None,
    )


@dataclass(frozen=True, slots=True)
class Label:
    number: NumberText = doc("the labelled number, in any common form")
    category: LabelCategory = doc("fraud | harassment | telemarketing | real_estate | ...; "
                                  "the rule label.<category> decides warn or block")
    label: str = doc("text shown to the callee, e.g. 疑似骚扰:房产中介", "")
    source: str = doc("where the label comes from (12321 complaints, analysis, ...)", "")
    confidence: float = doc("0.0 – 1.0", 1.0)
    expires: dt.date | None = doc("last day the label applies (YYYY-MM-DD), in the default zone",
                                  None)


@dataclass(frozen=True, slots=True)
class Defaults:
    block_cause: CauseName = doc("cause for blocks by non-cid rules (603)", "CALL_REJECTED")
    cid_block_cause: CauseName = doc("cause for blocks by cid.* rules (607)", "UNWANTED")
    on_error: Action = doc("fallback when screening fails on a call of no known trunk",
                           Action.PASS)
    timezone: TimezoneName = doc("time zone for label expiry and list dates", "Asia/Shanghai")
    label_min_confidence: float = doc("labels below this confidence are ignored", 0.0)


def _empty_rules() -> Mapping[str, RuleConfig]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """One YAML file; a policy directory's files are merged (ids unique across files)."""

    trunks: tuple[Trunk, ...] = doc("voice trunks and what they may carry", ())
    customers: tuple[Customer, ...] = doc("customers responsible for trunks", ())
    rules: Mapping[str, RuleConfig] = doc(
        "per rule id: mode, verdict, cause, label, announcement", factory=_empty_rules
    )
    labels: tuple[Label, ...] = doc("labelled numbers (标注)", ())
    industries: Industries | None = doc(
        "per industry: hours, targets and caps its customers inherit (at most one file)", None
    )
    key_regions: tuple[KeyRegion, ...] = doc("key regions with stricter caps (region.strict)",
                                             ())
    patterns: Patterns | None = doc(
        "thresholds of pattern.bombing and pattern.wangiri (at most one file)", None
    )
    lists: Lists | None = doc("global DNC and label CSV files", None)
    defaults: Defaults | None = doc("policy-wide defaults (at most one file sets them)", None)
    description: str = doc("free text for people", "")

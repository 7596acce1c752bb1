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
from fs_plugin.numbering import NumberSet, classify, parse_range, user_part
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.screening.model import Mode, Verdict

__all__ = [
    "Action",
    "CallerIds",
    "Check",
    "Customer",
    "CustomerStatus",
    "Defaults",
    "Industry",
    "Label",
    "PolicyFile",
    "RuleConfig",
    "Trunk",
    "TrunkKind",
    "TrunkMatch",
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
    timezone: TimezoneName = doc("time zone for label expiry dates", "Asia/Shanghai")
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
    defaults: Defaults | None = doc("policy-wide defaults (at most one file sets them)", None)
    description: str = doc("free text for people", "")

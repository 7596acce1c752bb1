"""The catalogue of rule ids a policy may configure, with each rule's defaults.

This is data the loader validates ``rules:`` against and the screening engine
reads its defaults from; the checks themselves live in
``fs_plugin/screening/rules/<family>.py`` and each rule id is documented in
``policies/README.md``. A rule id is stable: it is journaled with every decision,
so renaming one breaks history and dashboards.

It lives in the policy package (not beside the checks) so that loading a policy
never imports the engine: the engine depends on the policy, not the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from fs_plugin.screening.model import Mode, Verdict

__all__ = [
    "CID_FAKE_PLUS86",
    "CID_MALFORMED",
    "CID_NOT_ALLOWED",
    "CID_SUBSCRIBER_NUMBER_AS_BUSINESS",
    "CONSENT_DNC",
    "CONSENT_REQUIRED",
    "CONTRACT_HOURS",
    "CONTRACT_SUSPENDED",
    "CONTRACT_TARGETS",
    "COUNTER_RULES",
    "CREDIT_BLACKLISTED",
    "DEFAULT_LABEL_TEXT",
    "PATTERN_BOMBING",
    "PATTERN_WANGIRI",
    "RATE_CALLEE",
    "RATE_CALLER",
    "RATE_CONCURRENCY",
    "RATE_PAIR",
    "RATE_TRUNK_CPS",
    "REGION_STRICT",
    "RULES",
    "RULE_ORDER",
    "SYSTEM_COUNTERS_UNAVAILABLE",
    "SYSTEM_FALLBACK",
    "TRUNK_UNKNOWN",
    "LabelCategory",
    "RuleSpec",
    "label_rule_id",
]


class LabelCategory(StrEnum):
    """What a labelled number is suspected of; each category is rule ``label.<category>``."""

    FRAUD = "fraud"
    HARASSMENT = "harassment"
    TELEMARKETING = "telemarketing"
    REAL_ESTATE = "real_estate"
    FINANCE = "finance"
    INSURANCE = "insurance"
    EDUCATION = "education"
    MEDICAL = "medical"
    HR = "hr"
    TOURISM = "tourism"
    DEBT_COLLECTION = "debt_collection"
    OTHER = "other"


#: Text shown to the callee when a label carries none of its own and the rule sets
#: no ``label``: short, in the wording Chinese handsets use for marked numbers.
DEFAULT_LABEL_TEXT: MappingProxyType[LabelCategory, str] = MappingProxyType(
    {
        LabelCategory.FRAUD: "疑似诈骗",
        LabelCategory.HARASSMENT: "骚扰电话",
        LabelCategory.TELEMARKETING: "广告推销",
        LabelCategory.REAL_ESTATE: "房产中介",
        LabelCategory.FINANCE: "金融理财",
        LabelCategory.INSURANCE: "保险理财",
        LabelCategory.EDUCATION: "教育培训",
        LabelCategory.MEDICAL: "医疗保健",
        LabelCategory.HR: "招聘猎头",
        LabelCategory.TOURISM: "旅游推广",
        LabelCategory.DEBT_COLLECTION: "催收电话",
        LabelCategory.OTHER: "疑似骚扰",
    }
)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a rule is and what it does when the policy says nothing about it."""

    id: str
    summary: str
    #: The verdicts a policy may choose for this rule (the first is the default).
    verdicts: tuple[Verdict, ...]
    mode: Mode = Mode.ENFORCE
    #: False for ids reserved for checks not built yet (rate, pattern, consent, ...):
    #: a policy may already configure them (e.g. in shadow) but nothing evaluates them.
    implemented: bool = True
    #: ``None`` means the policy's default cause for the rule's family
    #: (``defaults.cid_block_cause`` for ``cid.*``, else ``defaults.block_cause``).
    cause: str | None = None

    @property
    def verdict(self) -> Verdict:
        return self.verdicts[0]

    @property
    def family(self) -> str:
        return self.id.partition(".")[0]


TRUNK_UNKNOWN = "trunk.unknown"
CONTRACT_SUSPENDED = "contract.suspended"
CREDIT_BLACKLISTED = "credit.blacklisted"
CID_MALFORMED = "cid.malformed"
CID_FAKE_PLUS86 = "cid.fake_plus86"
CID_NOT_ALLOWED = "cid.not_allowed"
CID_SUBSCRIBER_NUMBER_AS_BUSINESS = "cid.subscriber_number_as_business"
CONTRACT_HOURS = "contract.hours"
CONTRACT_TARGETS = "contract.targets"
CONSENT_DNC = "consent.dnc"
CONSENT_REQUIRED = "consent.required"
RATE_CALLER = "rate.caller"
RATE_TRUNK_CPS = "rate.trunk_cps"
RATE_CALLEE = "rate.callee"
RATE_PAIR = "rate.pair"
RATE_CONCURRENCY = "rate.concurrency"
PATTERN_BOMBING = "pattern.bombing"
PATTERN_WANGIRI = "pattern.wangiri"
REGION_STRICT = "region.strict"
#: The counter store failed (or none is configured) and the trunk's ``on_error`` is
#: ``block``. Configurable like a rule (mode, cause), evaluated by the engine itself.
SYSTEM_COUNTERS_UNAVAILABLE = "system.counters_unavailable"
#: Not a configurable rule: the id a fallback decision (``on_error``) carries.
SYSTEM_FALLBACK = "system.fallback"

_BLOCK = (Verdict.BLOCK,)
_BLOCK_OR_WARN = (Verdict.BLOCK, Verdict.WARN)


def label_rule_id(category: LabelCategory) -> str:
    return f"label.{category.value}"


# Fraud is blocked outright; every other label warns the callee by default,
# because a label is an opinion (complaints, analysis) and MISSION item 9 asks
# for warnings, not blocks, unless the policy decides otherwise.
_LABEL_SPECS = tuple(
    RuleSpec(
        label_rule_id(cat),
        f"caller ID carries a '{cat.value}' label",
        _BLOCK_OR_WARN if cat is LabelCategory.FRAUD else (Verdict.WARN, Verdict.BLOCK),
    )
    for cat in LabelCategory
)

def _reserved(rule_id: str, summary: str, verdicts: tuple[Verdict, ...] = _BLOCK) -> RuleSpec:
    return RuleSpec(rule_id, f"{summary} (reserved: not evaluated yet)", verdicts,
                    implemented=False)


#: Every configurable rule, in evaluation order: the first enforced BLOCK in this
#: order sets the verdict, so the order is part of the policy's meaning.
RULE_ORDER: tuple[RuleSpec, ...] = (
    RuleSpec(TRUNK_UNKNOWN, "no trunk matched the call", _BLOCK),
    RuleSpec(CONTRACT_SUSPENDED, "the trunk's customer is suspended or terminated", _BLOCK),
    RuleSpec(CREDIT_BLACKLISTED, "the customer is on the joint-punishment list", _BLOCK),
    RuleSpec(CID_MALFORMED, "caller ID is not a valid number of any class", _BLOCK),
    RuleSpec(CID_FAKE_PLUS86, "international trunk presents a Chinese number", _BLOCK),
    # Before cid.not_allowed: a call centre presenting a mobile number is usually also
    # outside its allowed list, and this is the more telling reason for the NOC.
    RuleSpec(
        CID_SUBSCRIBER_NUMBER_AS_BUSINESS,
        "call-centre trunk presents an ordinary subscriber number",
        _BLOCK,
    ),
    RuleSpec(CID_NOT_ALLOWED, "caller ID outside the trunk's allowed caller IDs", _BLOCK),
    RuleSpec(CONTRACT_HOURS, "outside the contract's calling hours", _BLOCK),
    RuleSpec(CONTRACT_TARGETS, "callee outside the contract's permitted targets", _BLOCK),
    RuleSpec(CONSENT_DNC, "marketing call to a number that refused", _BLOCK),
    RuleSpec(CONSENT_REQUIRED, "marketing call to a number not on the consent list", _BLOCK),
    RuleSpec(RATE_CALLER, "calls per caller ID over the contract's cap", _BLOCK),
    RuleSpec(RATE_TRUNK_CPS, "calls per second on the trunk over the cap", _BLOCK),
    RuleSpec(RATE_CALLEE, "calls to one callee over the cap", _BLOCK),
    RuleSpec(RATE_PAIR, "calls from one caller to one callee over the cap", _BLOCK),
    RuleSpec(RATE_CONCURRENCY, "concurrent calls on the trunk over the cap", _BLOCK),
    RuleSpec(PATTERN_BOMBING, "one callee flooded with calls (呼死你)", _BLOCK),
    RuleSpec(PATTERN_WANGIRI, "caller flagged for many short unanswered calls (响一声)",
             _BLOCK_OR_WARN),
    RuleSpec(REGION_STRICT, "a key region's stricter cap exceeded", _BLOCK_OR_WARN),
    *_LABEL_SPECS,
    # Last: any specific block above is the better reason to give; this one only
    # says that the counter-based rules could not be evaluated (see engine.decide).
    RuleSpec(
        SYSTEM_COUNTERS_UNAVAILABLE,
        "counter store unavailable on a trunk whose on_error is block",
        _BLOCK,
        cause="NORMAL_TEMPORARY_FAILURE",
    ),
)

#: Rules that read the counter store; without it they are recorded as not evaluated.
COUNTER_RULES: frozenset[str] = frozenset(
    {RATE_CALLER, RATE_TRUNK_CPS, RATE_CALLEE, RATE_PAIR, RATE_CONCURRENCY, PATTERN_BOMBING,
     PATTERN_WANGIRI, REGION_STRICT}
)

RULES: MappingProxyType[str, RuleSpec] = MappingProxyType({s.id: s for s in RULE_ORDER})

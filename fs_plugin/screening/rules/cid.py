"""Caller-ID authentication (主叫号码鉴权) — MISSION items 2, 3, 4 and 8.

Rule ids held here, in evaluation order:

- ``cid.malformed``: From (and PAI when present) is not a valid caller ID of any
  class: malformed (不规范主叫号码), or a ``106…`` SMS port used as a voice
  caller ID. An anonymous caller ID fires only where the trunk's ``anonymous``
  is ``block`` (the default on enterprise and call-centre trunks, which must
  present their own numbers; interconnect and international trunks pass it,
  calling-line privacy being legal there). A call on no known trunk is left to
  ``trunk.unknown`` for anonymity.
- ``cid.fake_plus86``: an international trunk presents a Chinese number in any
  form (+86…, 0086…, 86…, bare domestic) in From or PAI.
- ``cid.subscriber_number_as_business``: a call-centre trunk presents an
  ordinary subscriber number — a mobile number, or a fixed number that is not
  one of the customer's registered ``business_numbers`` — instead of a
  95/96/400/800 business number.
- ``cid.not_allowed``: on enterprise and call-centre trunks, From and PAI (when
  present and ``check_pai``) must be among the trunk's ``caller_ids``; so must
  the most recent Diversion number when ``check_diversion``. Transparently
  passed or rewritten caller IDs fail here.
"""

from __future__ import annotations

from fs_plugin.numbering import Number, NumberClass
from fs_plugin.policy.catalogue import (
    CID_FAKE_PLUS86,
    CID_MALFORMED,
    CID_NOT_ALLOWED,
    CID_SUBSCRIBER_NUMBER_AS_BUSINESS,
)
from fs_plugin.policy.models import Action, TrunkKind
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.rules.base import CallContext, Check, fired, shown

__all__ = [
    "CHECKS",
    "check_fake_plus86",
    "check_malformed",
    "check_not_allowed",
    "check_subscriber_number_as_business",
]

_AUTHENTICATED_KINDS = (TrunkKind.ENTERPRISE, TrunkKind.CALL_CENTRE)


def _anonymous_blocked(ctx: CallContext) -> bool:
    trunk = ctx.trunk
    return trunk is not None and ctx.snapshot.anonymous[trunk.id] is Action.BLOCK


def check_malformed(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    for field, n in ctx.presented():
        if n.cls is NumberClass.ANONYMOUS:
            if _anonymous_blocked(ctx):
                assert ctx.trunk is not None
                return fired(
                    rule,
                    f"{field} caller ID {shown(n)} is anonymous, which trunk {ctx.trunk.id} "
                    f"({ctx.trunk.kind.value}) does not allow",
                )
            continue
        if n.cls is NumberClass.SMS_CODE:
            return fired(
                rule, f"{field} caller ID {shown(n)} is an SMS port (106…), not a voice number"
            )
        if not n.is_valid_caller_id:
            why = n.malformed_reason or n.cls.value
            return fired(rule, f"{field} caller ID {shown(n)} is malformed ({why})")
    return rule.idle


def check_fake_plus86(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    trunk = ctx.trunk
    if trunk is None or trunk.kind is not TrunkKind.INTERNATIONAL:
        return rule.idle
    for field, n in ctx.presented():
        if n.is_chinese:
            return fired(
                rule,
                f"international trunk {trunk.id} presents Chinese number {shown(n)} in {field} "
                "(fake +86 call)",
            )
    return rule.idle


def check_not_allowed(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    trunk = ctx.trunk
    if trunk is None or trunk.kind not in _AUTHENTICATED_KINDS:
        return rule.idle
    allowed = ctx.snapshot.allowed[trunk.id]
    checks: list[tuple[str, Number]] = [("From", ctx.caller)]
    if ctx.pai is not None and trunk.caller_ids.check_pai:
        checks.append(("P-Asserted-Identity", ctx.pai))
    if ctx.diversion is not None and trunk.caller_ids.check_diversion:
        checks.append(("Diversion", ctx.diversion))
    anonymous_ok = not _anonymous_blocked(ctx)
    for field, n in checks:
        if anonymous_ok and n.cls is NumberClass.ANONYMOUS:
            continue  # the trunk lets callers hide their number; PAI is still checked
        if n not in allowed:
            return fired(
                rule,
                f"{field} number {shown(n)} is not among the caller IDs allowed on "
                f"trunk {trunk.id}",
            )
    return rule.idle


def check_subscriber_number_as_business(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    trunk = ctx.trunk
    if trunk is None or trunk.kind is not TrunkKind.CALL_CENTRE:
        return rule.idle
    business = ctx.snapshot.business_numbers.get(trunk.customer or "")
    for field, n in ctx.presented():
        if n.cls is NumberClass.MOBILE:
            kind = "mobile"
        elif n.cls is NumberClass.FIXED and (business is None or n not in business):
            kind = "fixed-line (not a registered business number)"
        else:
            continue
        return fired(
            rule,
            f"call-centre trunk {trunk.id} presents {kind} subscriber number {shown(n)} in "
            f"{field} instead of a 95/96/400/800 business number",
        )
    return rule.idle


CHECKS: dict[str, Check] = {
    CID_MALFORMED: check_malformed,
    CID_FAKE_PLUS86: check_fake_plus86,
    CID_NOT_ALLOWED: check_not_allowed,
    CID_SUBSCRIBER_NUMBER_AS_BUSINESS: check_subscriber_number_as_business,
}

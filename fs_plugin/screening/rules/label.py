"""``label.<category>`` (标注) — MISSION item 9.

The presented caller ID (From, then PAI) is looked up in the policy's
``labels``; a label whose ``expires`` day is over is ignored. The rule
``label.<category>`` decides: WARN (the call goes through with the label text
shown to the callee, e.g. 疑似骚扰:房产中介) or BLOCK (``label.fraud`` by default).
Only the matching category appears in the trail: the family is one table lookup,
and listing a dozen idle label rules on every call would drown the trail.
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import LabelCategory, label_rule_id
from fs_plugin.screening.model import Mode, RuleResult
from fs_plugin.screening.rules.base import CallContext, fired, shown

__all__ = ["LABEL_RULE_IDS", "check_labels"]

#: Every rule id of this family: label.fraud, label.harassment, label.real_estate, …
LABEL_RULE_IDS: tuple[str, ...] = tuple(label_rule_id(c) for c in LabelCategory)


def check_labels(ctx: CallContext) -> RuleResult | None:
    """The trail entry of the first live label on From or PAI, or ``None``."""
    labels = ctx.snapshot.labels
    if not labels:
        return None
    for field, n in ctx.presented():
        key = n.key
        if key is None:
            continue
        entry = labels.get(key)
        if entry is None:
            continue
        if entry.expires_at is not None and ctx.now >= entry.expires_at:
            continue
        rule = ctx.snapshot.rules[entry.rule]
        if rule.mode is Mode.OFF:
            continue
        source = f", source {entry.source}" if entry.source else ""
        return fired(
            rule,
            f"{field} number {shown(n)} is labelled {entry.category.value} "
            f"({entry.text}{source}, confidence {entry.confidence:g})",
            label=entry.text,
        )
    return None

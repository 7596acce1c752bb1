"""Nuisance patterns (MISSION item 5): ``pattern.bombing`` (呼死你), ``pattern.wangiri`` (响一声).

``pattern.bombing`` — per callee, over ``patterns.bombing.window_s``, on every attempt:

1. one caller calls the callee more than ``per_caller`` times, or
2. the callee receives more than ``calls`` calls from at least ``min_callers`` callers, or
3. the callee is **flagged** as a target (flag set off the call path, see
   ``outcomes.py``, for ``flag_period_s``) and this caller already called it in the
   flag period: the flood's sources stay blocked after the window, new callers pass.

The decision carries the label (``patterns.bombing.label``, default 呼死你攻击目标) so
the NOC sees at a glance why the callee is protected.

``pattern.wangiri`` — the caller is flagged as a ring-once caller. The statistics are
collected from hangups (``outcomes.py``): short (ring < ``max_ring_s``), unanswered,
caller-cancelled calls, counted with their distinct callees; crossing both thresholds
flags the caller for ``flag_period_s``. On the call path the rule reads the flag and
blocks or warns (``verdict``), with the label 疑似响一声诈骗 for the callee.
"""

from __future__ import annotations

from fs_plugin.policy.catalogue import PATTERN_BOMBING, PATTERN_WANGIRI
from fs_plugin.policy.snapshot import RuleSettings
from fs_plugin.screening.model import RuleResult
from fs_plugin.screening.readings import distinct_result, flag_result, hit_result
from fs_plugin.screening.rules.base import CallContext, Check, fired

__all__ = ["CHECKS", "check_bombing", "check_wangiri"]


def check_bombing(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    counts = ctx.counts
    cfg = ctx.snapshot.patterns.bombing
    probe = counts.plan.bombing if counts is not None else None
    if counts is None or probe is None or cfg is None:
        return rule.idle
    pair = hit_result(counts, probe.pair)
    calls = hit_result(counts, probe.callee)
    callers = distinct_result(counts, probe.callers)
    sources = distinct_result(counts, probe.sources)
    flag = flag_result(counts, probe.flag)
    if pair is None or calls is None or callers is None or sources is None or flag is None:
        return rule.idle  # results of the wrong kind: a plan/results mix-up, not a flood
    label = rule.label or cfg.label
    callee, caller = probe.callee_key, probe.caller_key
    head = f"呼死你 ({label}): callee {callee}"
    if pair.count > cfg.per_caller:
        return fired(rule, f"{head} called {pair.count} times by {caller} in "
                           f"{cfg.window_s} s (more than {cfg.per_caller} from one caller)",
                     label=label)
    if calls.count > cfg.calls and callers.count >= cfg.min_callers:
        return fired(rule, f"{head} received {calls.count} calls from {callers.count} callers "
                           f"in {cfg.window_s} s (more than {cfg.calls}); caller {caller}",
                     label=label)
    if flag.is_set and not sources.added:
        left = f", {flag.ttl_s:.0f} s left" if flag.ttl_s is not None else ""
        return fired(rule, f"{head} is flagged as a flood target ({flag.value}{left}) and "
                           f"caller {caller} already called it", label=label)
    return rule.idle


def check_wangiri(ctx: CallContext, rule: RuleSettings) -> RuleResult:
    counts = ctx.counts
    cfg = ctx.snapshot.patterns.wangiri
    probe = counts.plan.wangiri if counts is not None else None
    if counts is None or probe is None or cfg is None:
        return rule.idle
    flag = flag_result(counts, probe.flag)
    if flag is None or not flag.is_set:
        return rule.idle
    label = rule.label or cfg.label
    left = f", {flag.ttl_s:.0f} s left" if flag.ttl_s is not None else ""
    return fired(rule, f"响一声 ({label}): caller {probe.caller_key} is flagged for short "
                       f"unanswered calls ({flag.value}{left})", label=label)


CHECKS: dict[str, Check] = {PATTERN_BOMBING: check_bombing, PATTERN_WANGIRI: check_wangiri}

"""Offline evaluation: run a policy over a trace's calls on the trace's own clock.

For each call, at its INVITE time: ``plan_counters`` → the plan's ops on an in-process
:class:`~fs_plugin.counters.memory.MemoryStore` whose :class:`~fs_plugin.clock.ManualClock`
is set to that time → ``decide``. At the call's end time its outcome goes through
``outcome_ops`` / ``outcome_followup``, so wangiri and bombing flags rise (and later
calls read them) as they would have on the switch.

Order matters for counters, and the reader hands calls out in the order they *ended*.
Events (decisions at INVITE time, outcomes at end time) therefore wait in a heap until
the reader's watermark — no call still to come can have an earlier event — passes
them; they run in time order, exactly. The heap is bounded (:data:`MAX_PENDING`).

What a call's outcome is depends on the decision: a call the policy blocks ends at
once, refused with the rule's cause (it would never have rung), so only calls the
policy lets through carry the trace's ring time, answer and cancel. Pass
``trace_outcomes=True`` to feed every call's traced outcome instead.

The store's API is async but :class:`MemoryStore` never suspends, and its batches are run
as plain calls (:meth:`~fs_plugin.counters.memory.MemoryStore.execute_now`), so the
evaluation is a synchronous loop that the reports consume as a generator, with no event
loop (one would only add plumbing, and a coroutine per batch).
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fs_plugin.clock import ManualClock
from fs_plugin.counters.memory import MemoryStore
from fs_plugin.errors import StorageError
from fs_plugin.policy.snapshot import PolicySnapshot
from fs_plugin.replay.dialogs import EndedBy, TraceCall
from fs_plugin.screening.engine import Screening
from fs_plugin.screening.model import Decision, Mode, Outcome, Verdict
from fs_plugin.screening.outcomes import outcome_steps
from fs_plugin.screening.readings import CounterReadings

__all__ = [
    "MAX_PENDING",
    "OFFLINE_MAX_KEYS",
    "CallRecord",
    "EvalStats",
    "Evaluator",
    "TrunkMap",
    "outcome_of",
]

#: Events waiting for the watermark. A trace's events wait only while an earlier call
#: is still open (a long answered call holds the watermark back); two million events
#: is about a million overlapping calls, ~300 MB. Past it the oldest event runs
#: early (counted in ``EvalStats.early``) instead of memory growing without bound.
MAX_PENDING = 2_000_000

#: Keys of the offline store. A busy trace with mostly new numbers keeps several keys
#: per call alive for the bombing (10 min) and wangiri (1 h) windows: 100,000 calls in
#: ten minutes pass the switch's default of 500,000. Offline, only memory is at stake
#: (~1 GB at this bound); past it the store refuses and the calls are decided without
#: counters (``EvalStats.store_errors``), as the switch would.
OFFLINE_MAX_KEYS = 5_000_000

#: Source addresses whose trunk is remembered (a trace has a few hundred peers; the
#: bound keeps a scan of random spoofed sources from growing the cache).
_TRUNK_CACHE_MAX = 65_536

_NEVER: float = float("-inf")


class TrunkMap:
    """The trunk hint of a traced call: one trunk for all, or by source network.

    ``networks`` are (CIDR, trunk id); the most specific network containing the
    call's source address wins, then ``default``. A call matching neither gets no
    hint, and the policy's own ``match.source`` networks still apply.
    """

    __slots__ = ("_cache", "default", "networks")

    def __init__(
        self, default: str | None = None, networks: Iterable[tuple[str, str]] = ()
    ) -> None:
        parsed = [(ipaddress.ip_network(cidr, strict=False), trunk) for cidr, trunk in networks]
        parsed.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self.default = default
        self.networks = tuple(parsed)
        self._cache: dict[str | None, str | None] = {}

    @classmethod
    def parse(cls, default: str | None, mappings: Iterable[str]) -> TrunkMap:
        """From ``--trunk`` and ``--trunk-map CIDR=ID`` values; ValueError names a bad one."""
        pairs = []
        for text in mappings:
            cidr, sep, trunk = text.partition("=")
            if not sep or not trunk.strip():
                raise ValueError(f"--trunk-map wants CIDR=TRUNK, got {text!r}")
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"--trunk-map {text!r}: {exc}") from None
            pairs.append((cidr.strip(), trunk.strip()))
        return cls(default, pairs)

    def hint_for(self, ip: str | None) -> str | None:
        cache = self._cache
        if ip in cache:
            return cache[ip]
        hint = self.default
        if ip and self.networks:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
            if address is not None:
                for net, trunk in self.networks:
                    if address.version == net.version and address in net:
                        hint = trunk
                        break
        if len(cache) >= _TRUNK_CACHE_MAX:
            cache.clear()
        cache[ip] = hint
        return hint


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One evaluated call: what the trace shows and what the policy decided."""

    time: float
    call_id: str
    from_user: str
    pai: str | None
    callee: str
    src_ip: str | None
    trunk: str | None
    verdict: Verdict
    rule: str | None
    cause: str | None
    sip_status: int | None
    reason: str
    label: str | None
    shadow: tuple[str, ...]
    ring_time_s: float | None
    answered: bool
    final_status: int | None
    where: str
    source: str


@dataclass(slots=True)
class EvalStats:
    calls: int = 0
    outcomes: int = 0
    #: Events whose time was before the simulated clock (a capture whose timestamps go
    #: back): run at the clock's time, in arrival order.
    late: int = 0
    #: Events run before the watermark passed them because the heap was full.
    early: int = 0
    #: Outcome flag ops written (wangiri / bombing thresholds crossed).
    flags: int = 0
    max_pending: int = 0
    #: Batches the store refused (full): decided without counters, as on the switch.
    store_errors: int = 0


def _cause_for_status(status: int | None) -> str:
    # Only the wangiri/bombing readings look at the outcome's flags, never the cause's
    # exact name; keep it close to what sofia would report for the traced final.
    if status is None:
        return "NORMAL_CLEARING"
    if status == 487:
        return "ORIGINATOR_CANCEL"
    if status in (486, 600):
        return "USER_BUSY"
    if status in (603, 607, 608):
        return "CALL_REJECTED"
    if status == 404:
        return "UNALLOCATED_NUMBER"
    if status == 408:
        return "NO_USER_RESPONSE"
    if status == 480:
        return "NO_ANSWER"
    if status >= 500:
        return "NORMAL_TEMPORARY_FAILURE"
    return "NORMAL_CLEARING"


def outcome_of(call: TraceCall, trunk: str | None, decision: Decision | None = None) -> Outcome:
    """The ``CHANNEL_HANGUP_COMPLETE`` the switch would report for a traced call.

    With a blocking ``decision`` the call is refused at its INVITE: never rang, never
    answered, ended by the switch with the decision's cause.
    """
    if decision is not None and decision.verdict is Verdict.BLOCK:
        end = call.invite_time
        return Outcome(
            uuid=call.call_id, hangup_cause=decision.cause or "CALL_REJECTED",
            disposition="send_refuse", answered=False, ring_time_s=None, duration_s=0.0,
            billsec=0, from_user=call.from_user, destination=call.callee,
            trunk_hint=trunk, switch=None, end_timestamp_us=round(end * 1e6),
        )
    traced_end = _end_time(call)
    end = traced_end if traced_end is not None else call.invite_time
    if call.answered:
        disposition = "recv_bye" if call.ended_by is EndedBy.CALLER else "send_bye"
        cause = "NORMAL_CLEARING"
    elif call.caller_cancelled:
        disposition, cause = "recv_cancel", "ORIGINATOR_CANCEL"
    elif call.final_status is not None and call.final_status >= 300:
        disposition, cause = "send_refuse", _cause_for_status(call.final_status)
    else:
        disposition, cause = None, "NORMAL_CLEARING"
    duration = max(0.0, end - call.invite_time)
    answered_s = call.duration_s or 0.0
    return Outcome(
        uuid=call.call_id, hangup_cause=cause, disposition=disposition,
        answered=call.answered, ring_time_s=call.ring_time_s, duration_s=duration,
        billsec=int(answered_s), from_user=call.from_user, destination=call.callee,
        trunk_hint=trunk, switch=None, end_timestamp_us=round(end * 1e6),
    )


def _end_time(call: TraceCall) -> float | None:
    if call.end_time is not None:
        return call.end_time
    return call.final_time


# Event kinds; at equal times a decision sorts before an outcome of the same sequence.
_DECIDE = 0
_OUTCOME = 1

_Event = tuple[float, int, int, Any]


class Evaluator:
    """Evaluates one trace's calls against ``snapshot`` on the trace's clock.

    Feed calls in the order the reader yields them with :meth:`feed` (or all at once
    with :meth:`run`), each with the reader's watermark; records come back in
    decision order. :meth:`finish` runs what is left at the end of the trace.
    """

    def __init__(
        self,
        snapshot: PolicySnapshot,
        *,
        trunks: TrunkMap | None = None,
        trace_outcomes: bool = False,
        source: str = "",
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.snapshot = snapshot
        self.trunks = trunks if trunks is not None else TrunkMap()
        self.trace_outcomes = trace_outcomes
        self.source = source
        self.stats = EvalStats()
        self._clock = ManualClock(0.0)
        self._store = MemoryStore(clock=self._clock, max_keys=OFFLINE_MAX_KEYS)
        self._now = _NEVER
        self._pending: list[_Event] = []
        self._seq = 0
        self._max_pending = max_pending

    def feed(self, call: TraceCall, watermark: float) -> list[CallRecord]:
        """Queue ``call`` and run every event before ``watermark``."""
        self.push(call)
        return self.drain(watermark)

    def push(self, call: TraceCall) -> None:
        """Queue ``call``'s decision (run by a later :meth:`drain`)."""
        self._seq += 1
        heapq.heappush(self._pending, (call.invite_time, self._seq, _DECIDE, call))

    def finish(self) -> list[CallRecord]:
        return self.drain(float("inf"))

    def run(
        self, calls: Iterable[TraceCall], watermark: Callable[[], float] | None = None
    ) -> Iterator[CallRecord]:
        """Evaluate ``calls``; ``watermark()`` is asked after each call (none: buffer all)."""
        for call in calls:
            yield from self.feed(call, watermark() if watermark is not None else _NEVER)
        yield from self.finish()

    # -- internals ------------------------------------------------------------------

    def drain(self, watermark: float) -> list[CallRecord]:
        """Run the queued events before ``watermark`` in time order; the decisions made."""
        pending = self._pending
        stats = self.stats
        if len(pending) > stats.max_pending:
            stats.max_pending = len(pending)
        out: list[CallRecord] = []
        while pending and (pending[0][0] < watermark or len(pending) > self._max_pending):
            if pending[0][0] >= watermark:
                stats.early += 1
            when, _, kind, item = heapq.heappop(pending)
            if when < self._now:
                stats.late += 1
                when = self._now
            if when != self._now:
                self._now = when
                self._clock.set(when)
            if kind == _DECIDE:
                out.append(self._decide(item, when))
            else:
                self._outcome(item, when)
        return out

    def _decide(self, call: TraceCall, now: float) -> CallRecord:
        snapshot = self.snapshot
        facts = call.to_facts(trunk_hint=self.trunks.hint_for(call.src_ip))
        screening = Screening(facts, snapshot, now=now)
        plan = screening.plan
        if plan.ops:
            try:
                readings = CounterReadings(plan, self._store.execute_now(plan.ops), None)
            except StorageError as exc:
                # The store is full: decide as the switch would without counters.
                self.stats.store_errors += 1
                readings = CounterReadings(plan, None, str(exc))
        else:
            readings = CounterReadings(plan, (), None)
        decision = screening.decide(readings)
        self.stats.calls += 1
        outcome = outcome_of(call, decision.trunk, None if self.trace_outcomes else decision)
        end = outcome.end_timestamp_us / 1e6
        if decision.verdict is Verdict.BLOCK or _end_time(call) is not None:
            # A call the trace never shows ending keeps its lease until max_call_s.
            self._seq += 1
            heapq.heappush(self._pending, (max(end, now), self._seq, _OUTCOME, outcome))
        shadow = tuple(r.rule for r in decision.trail if r.fired and r.mode is Mode.SHADOW)
        return CallRecord(
            time=call.invite_time, call_id=call.call_id, from_user=call.from_user,
            pai=call.pai, callee=call.callee, src_ip=call.src_ip, trunk=decision.trunk,
            verdict=decision.verdict, rule=decision.rule, cause=decision.cause,
            sip_status=decision.sip_status, reason=decision.reason, label=decision.label,
            shadow=shadow, ring_time_s=call.ring_time_s, answered=call.answered,
            final_status=call.final_status, where=call.where, source=self.source,
        )

    def _outcome(self, outcome: Outcome, now: float) -> None:
        snapshot = self.snapshot
        self.stats.outcomes += 1
        steps = outcome_steps(outcome, snapshot)
        if not steps.ops:
            return
        try:
            results = self._store.execute_now(steps.ops)
            more = steps.followup(snapshot, results)
            if more:
                self.stats.flags += len(more)
                self._store.execute_now(more)
        except StorageError:
            self.stats.store_errors += 1

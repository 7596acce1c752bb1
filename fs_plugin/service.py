"""Composition root: builds the controller from its configuration and owns its tasks.

This (with ``cli.py``) is the only place that wires layers together:

- the outbound server asks :meth:`Service.decide`, which plans the call's counter
  operations, runs them in **one** round trip under a deadline, and lets the pure
  engine decide; a counter store that fails or is late is reported to the engine
  (``CounterReadings.error``), which applies the trunk's ``on_error``;
- every decision goes to the listeners (log line, journal, flash SMS, NOC bus);
- every outcome (``CHANNEL_HANGUP_COMPLETE``) goes through a bounded queue to a
  worker that updates the nuisance-pattern statistics and the journal, off the
  call path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.counters import CounterStore, open_store
from fs_plugin.errors import ConfigError, StorageError
from fs_plugin.journal import Journal
from fs_plugin.journal.credit import Credit
from fs_plugin.journal.ledger import Ledger, LedgerFeed
from fs_plugin.numbering import classify
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.policy.overlay import LedgerState, apply_ledger, next_change
from fs_plugin.screening import (
    CounterReadings,
    decide,
    fallback_decision,
    outcome_followup,
    outcome_ops,
    plan_counters,
)
from fs_plugin.screening.model import CallFacts, Decision, Outcome, Verdict
from fs_plugin.tasks import cancel_and_wait
from fs_plugin.transport.health import HealthSettings
from fs_plugin.transport.inbound import InboundClient, InboundSettings
from fs_plugin.transport.outbound import DecisionRecord, OutboundServer, OutboundSettings
from fs_plugin.warn import FlashSms, HttpSmsGateway, SmsSender

__all__ = ["PolicyHolder", "Service", "ServiceConfig"]

#: Backoff of the ledger's connection while it is unavailable (start-up included): the
#: controller screens with the YAML policy meanwhile and takes the ledger on once it
#: answers, without a restart.
LEDGER_RETRY_MIN_S = 1.0
LEDGER_RETRY_MAX_S = 60.0

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    policy_path: Path
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    #: ``None`` runs without the inbound connection (no outcomes): a lab or a test.
    inbound: InboundSettings | None = None
    health: HealthSettings = field(default_factory=HealthSettings)
    #: ``memory://`` (one switch), ``redis://…`` or ``redis+cluster://…`` (shared caps).
    counters_url: str = "memory://"
    #: Part of the decision deadline the counter round trip may use; the rest is
    #: headroom for the engine and the write back.
    counters_timeout_s: float = 0.15
    #: Seconds in-flight calls get to finish on SIGTERM before they are cut.
    shutdown_grace_s: float = 10.0
    #: Outcomes waiting for the statistics worker. Hang-ups arrive at the call rate;
    #: a store outage must not grow memory without bound, so beyond this the oldest
    #: are dropped and counted (the journal still gets them).
    outcome_queue_max: int = 50_000
    #: Journal: ``"off"``, ``"embedded"`` (pgserver under ``state_dir``) or a PostgreSQL DSN.
    journal: str = "off"
    state_dir: Path = Path("state")
    #: This switch's name in the journal (many switches share one database).
    switch_name: str = "fs-plugin"
    #: Flash-SMS gateway URL (HTTP POST); ``None``: no flash SMS.
    sms_gateway_url: str | None = None
    #: HTTP API, NOC page and /metrics (``fs_plugin.web.WebSettings``); ``None``: off.
    web: Any = None
    #: Overlay the ledger (台账) of the journal's database: expired qualifications
    #: suspend, blacklisted customers are blocked, complaint labels apply — on every
    #: switch, without a restart (LISTEN/NOTIFY). Needs a journal database.
    ledger: bool = True
    #: Automatic credit records (一处失信，处处受限): every period, a trunk blocked at least
    #: ``credit_threshold`` times for ``cid.not_allowed`` earns its customer a violation;
    #: ``credit_blacklist_after`` violations in 90 days blacklist the customer everywhere.
    #: Periods are aligned to the clock, so the switches sharing one database record
    #: each period once (the ledger dedupes on it). 0 turns the scan off.
    credit_scan_period_s: float = 3600.0
    credit_threshold: int = 20
    credit_blacklist_after: int = 3


class PolicyHolder:
    """The policy snapshot in force: the YAML policy, with the ledger overlaid when a
    ledger is attached. Reload validates first and swaps atomically (one assignment)."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.clock = clock or SystemClock()
        self.base: PolicySnapshot = load_policy(path)
        self.ledger_state: LedgerState | None = None
        self.snapshot: PolicySnapshot = self.base

    def _compose(self) -> None:
        state = self.ledger_state
        self.snapshot = (
            self.base if state is None else apply_ledger(self.base, state, now=self.clock.time())
        )

    def reload(self) -> ConfigError | None:
        """Load the files again; keep the old snapshot (and say why) when they are broken."""
        try:
            base = load_policy(self.path)
        except ConfigError as exc:
            log.error("policy_reload_refused", error=exc.location_text(), kept=self.version)
            return exc
        old = self.version
        self.base = base
        self._compose()
        log.info("policy_reloaded", old=old, new=self.version)
        return None

    def set_ledger(self, state: LedgerState) -> None:
        """Overlay a new ledger state (suspensions, blacklist, complaint labels)."""
        old = self.version
        self.ledger_state = state
        self._compose()
        if self.version != old:
            log.info("ledger_applied", old=old, new=self.version)

    def seconds_to_next_change(self) -> float | None:
        """When the overlay changes by itself (a qualification or label running out)."""
        if self.ledger_state is None:
            return None
        at = next_change(self.base, self.ledger_state, now=self.clock.time())
        return None if at is None else max(0.0, at - self.clock.time())

    @property
    def version(self) -> str:
        return self.snapshot.version


def _log_reload_failure(task: asyncio.Task[Any]) -> None:
    """A refused policy is logged by the reload itself; anything else it raises would
    otherwise go unseen (nobody awaits a reload a signal started)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("policy_reload_failed", trigger="sighup",
                  error=f"{type(exc).__name__}: {exc}", exc_info=exc)


def _sms_number(raw: str) -> str:
    """A number as flash SMS use it: the domestic form for Chinese numbers, E.164 for
    others, the raw text when it has neither (the gateway then refuses it)."""
    number = classify(raw)
    return number.national or number.e164 or raw


def _settle_heap() -> None:
    """What start-up built (policy, number tables, imported modules) lives as long as the
    process: collect once, then freeze it out of the cyclic collector's sight, so the
    collections that calls trigger walk only what calls create — shorter pauses in the
    decision latency's tail. Objects freed later are still freed by reference counting."""
    gc.collect()
    gc.freeze()


class Service:
    def __init__(
        self,
        config: ServiceConfig,
        *,
        clock: Clock | None = None,
        counters: CounterStore | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.policy = PolicyHolder(config.policy_path, self.clock)
        self.counters: CounterStore = counters or open_store(config.counters_url, clock=self.clock)
        self.outbound = OutboundServer(
            config.outbound, self.decide, self.fallback, health=config.health,
            listeners=[self._log_decision],
        )
        self.inbound = (
            InboundClient(config.inbound, on_outcome=self.submit_outcome)
            if config.inbound is not None
            else None
        )
        #: Called with every outcome (journal, tests); must not block.
        self.outcome_hooks: list[Callable[[Outcome], None]] = []
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue(config.outcome_queue_max)
        self._worker: asyncio.Task[None] | None = None
        self.journal: Journal | None = None
        self.sms: SmsSender | None = None
        self.web: Any = None
        self.ledger: Ledger | None = None
        self._ledger_feed: LedgerFeed | None = None
        self._ledger_clock: asyncio.Task[None] | None = None
        self._credit_task: asyncio.Task[None] | None = None
        self._ledger_retry: asyncio.Task[None] | None = None
        self._sms_gateway: HttpSmsGateway | None = None
        self._stop = asyncio.Event()
        self.stats: dict[str, int] = {
            "counter_errors": 0, "outcomes": 0, "outcomes_dropped": 0, "outcome_errors": 0,
        }

    # -- the call path ----------------------------------------------------------------

    async def decide(self, facts: CallFacts) -> Decision:
        snapshot = self.policy.snapshot
        now = self.clock.time()
        plan = plan_counters(facts, snapshot, now=now)
        readings = None
        if plan.ops:
            try:
                results = await self.counters.execute(
                    plan.ops, timeout_s=self.config.counters_timeout_s
                )
                readings = CounterReadings(plan, results, None)
            except StorageError as exc:
                self.stats["counter_errors"] += 1
                log.warning("counters_unavailable", call_uuid=facts.uuid, error=str(exc))
                readings = CounterReadings(plan, None, str(exc))
        else:
            readings = CounterReadings(plan, (), None)
        return decide(facts, snapshot, readings, now=now)

    def fallback(self, facts: CallFacts, error: str) -> Decision:
        return fallback_decision(facts, self.policy.snapshot, error)

    def _log_decision(self, record: DecisionRecord) -> None:
        d, f = record.decision, record.facts
        level = log.info if d.verdict is not Verdict.PASS or d.fallback else log.debug
        level(
            "call_decided", call_uuid=f.uuid, trunk=d.trunk, verdict=d.verdict.value,
            rule=d.rule, cause=d.cause, sip_status=d.sip_status, caller=f.from_user,
            callee=f.destination, fallback=d.fallback, latency_ms=round(record.latency_s * 1e3, 3),
            shadow=[r.rule for r in d.shadow_hits] or None, policy=d.policy_version,
        )

    # -- outcomes, off the call path ---------------------------------------------------

    def submit_outcome(self, outcome: Outcome) -> None:
        """Take an outcome from the event socket; never blocks."""
        for hook in self.outcome_hooks:
            try:
                hook(outcome)
            except Exception:
                log.exception("outcome_hook_failed")
        if self._outcomes.full():
            self._outcomes.get_nowait()
            self.stats["outcomes_dropped"] += 1
            log.error("outcome_dropped", reason="queue_full")
        self._outcomes.put_nowait(outcome)

    async def _outcome_worker(self) -> None:
        while True:
            outcome = await self._outcomes.get()
            try:
                await self.process_outcome(outcome)
            except StorageError as exc:
                self.stats["outcome_errors"] += 1
                log.warning("outcome_not_counted", call_uuid=outcome.uuid, error=str(exc))
            except Exception:
                self.stats["outcome_errors"] += 1
                log.exception("outcome_failed", call_uuid=outcome.uuid)
            finally:
                self._outcomes.task_done()

    async def process_outcome(self, outcome: Outcome) -> None:
        """Update the pattern statistics for one hang-up (two round trips at most)."""
        snapshot = self.policy.snapshot
        ops = outcome_ops(outcome, snapshot, now=self.clock.time())
        self.stats["outcomes"] += 1
        if not ops:
            return
        results = await self.counters.execute(ops)
        more = outcome_followup(outcome, snapshot, results)
        if more:
            await self.counters.execute(more)
            log.info("pattern_flagged", call_uuid=outcome.uuid, ops=len(more))

    async def drain_outcomes(self, timeout_s: float = 5.0) -> None:
        """Wait until every submitted outcome was processed (tests, shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._outcomes.join(), timeout_s)

    # -- life cycle ----------------------------------------------------------------------

    def warm_up(self) -> None:
        """Run the engine once before accepting calls, so the first real call does not pay
        for cold caches and lazy imports (a stall the health watch would see as lag)."""
        snapshot = self.policy.snapshot
        facts = CallFacts(uuid="warm-up", from_user="02088880000", destination="13900000000")
        plan = plan_counters(facts, snapshot, now=self.clock.time())
        decide(facts, snapshot, CounterReadings(plan, None, "warm-up"), now=self.clock.time())

    async def start(self) -> None:
        self.warm_up()
        await self._start_journal()
        await self._start_ledger()
        self._start_sms()
        self._worker = asyncio.get_running_loop().create_task(
            self._outcome_worker(), name="fsp-outcomes"
        )
        await self.outbound.start()
        if self.inbound is not None:
            self.inbound.start()
        if self.config.web is not None:
            from fs_plugin.web import start_web  # aiohttp and prometheus only when asked

            self.web = await start_web(self, self.config.web)
        log.info(
            "service_started", policy=self.policy.version, port=self.outbound.bound_port,
            counters=self.config.counters_url.split("@")[-1],
        )

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        await self.outbound.stop(self.config.shutdown_grace_s)
        if self.inbound is not None:
            await self.inbound.stop()
        await self.drain_outcomes(2.0)
        await cancel_and_wait(self._worker)
        await self.counters.close()
        if self.sms is not None:
            await self.sms.close()
        if self._sms_gateway is not None:
            await self._sms_gateway.close()
        await cancel_and_wait(self._ledger_retry, self._ledger_clock, self._credit_task)
        if self._ledger_feed is not None:
            await self._ledger_feed.close()
        if self.ledger is not None:
            await self.ledger.close()
        if self.journal is not None:
            await self.journal.close()
        log.info("service_stopped")

    async def _start_ledger(self) -> None:
        mode = self.config.journal
        if mode == "off" or not self.config.ledger:
            return
        if not await self._open_ledger(LEDGER_RETRY_MIN_S):
            self._ledger_retry = asyncio.get_running_loop().create_task(
                self._retry_ledger(), name="fsp-ledger-retry"
            )

    async def _open_ledger(self, retry_s: float) -> bool:
        """Open the ledger and its feed; False (logged) when the database is unavailable."""
        mode = self.config.journal
        ledger: Ledger | None = None
        try:
            ledger = await Ledger.open(None if mode == "embedded" else mode,
                                       state_dir=self.config.state_dir)
            feed = LedgerFeed(ledger, self.policy.set_ledger)
            await feed.start()
        except StorageError as exc:
            # Screening goes on with the YAML policy; the NOC sees this and the policy
            # version (no "+L…" part) until the ledger answers.
            log.error("ledger_unavailable", error=str(exc), retry_s=retry_s)
            if ledger is not None:
                await ledger.close()
            return False
        self.ledger, self._ledger_feed = ledger, feed
        self._ledger_clock = asyncio.get_running_loop().create_task(
            self._ledger_timer(), name="fsp-ledger-clock"
        )
        if self.config.credit_scan_period_s > 0:
            self._credit_task = asyncio.get_running_loop().create_task(
                self._credit_scanner(), name="fsp-credit-scan"
            )
        return True

    async def _retry_ledger(self) -> None:
        """Until the ledger answers: it used to be opened once, at start, and a database
        still starting (or restarting) then left the ledger off until a restart."""
        delay = LEDGER_RETRY_MIN_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, LEDGER_RETRY_MAX_S)
            if await self._open_ledger(delay):
                log.info("ledger_connected", policy=self.policy.version)
                return

    async def scan_credit(self, since: float, until: float) -> tuple[int, list[str]]:
        """Record automatic violations for [since, until); return (violations, newly
        blacklisted customers)."""
        assert self.ledger is not None
        result = await Credit(self.ledger).scan(
            datetime.fromtimestamp(since, UTC), datetime.fromtimestamp(until, UTC),
            threshold=self.config.credit_threshold,
            blacklist_after=self.config.credit_blacklist_after,
        )
        if result.violations or result.blacklisted:
            log.warning("credit_scan", violations=len(result.violations),
                        blacklisted=list(result.blacklisted))
        return len(result.violations), list(result.blacklisted)

    async def _credit_scanner(self) -> None:
        period = self.config.credit_scan_period_s
        while True:
            now = self.clock.time()
            boundary = (now // period + 1) * period
            # A minute past the boundary: the journals' batches of the period have landed.
            await asyncio.sleep(boundary + 60.0 - now)
            try:
                await self.scan_credit(boundary - period, boundary)
            except StorageError as exc:
                log.error("credit_scan_failed", error=str(exc))

    async def _ledger_timer(self) -> None:
        """Re-apply the overlay when a qualification or a label runs out (no write
        announces that); at least every 5 minutes, as a safety net."""
        while True:
            delay = self.policy.seconds_to_next_change()
            await asyncio.sleep(min(300.0, delay + 1.0) if delay is not None else 300.0)
            if self.policy.ledger_state is not None:
                self.policy.set_ledger(self.policy.ledger_state)

    async def _start_journal(self) -> None:
        mode = self.config.journal
        if mode == "off":
            return
        dsn = None if mode == "embedded" else mode
        journal = await Journal.open(
            dsn, state_dir=self.config.state_dir, switch=self.config.switch_name,
            clock=self.clock,
        )
        self.journal = journal

        def record(rec: DecisionRecord) -> None:
            journal.record_decision(rec.facts, rec.decision, decided_at=rec.decided_at,
                                    latency_ms=rec.latency_s * 1e3)

        self.outbound.add_listener(record)
        self.outcome_hooks.append(journal.record_outcome)

    def _start_sms(self) -> None:
        url = self.config.sms_gateway_url
        if url is None:
            return
        self._sms_gateway = HttpSmsGateway(url)
        sender = SmsSender(self._sms_gateway, clock=self.clock)
        sender.start()
        self.sms = sender

        def warn(rec: DecisionRecord) -> None:
            # One form per number, so that '+8613900001111' and '13900001111' are one
            # pair for the once-a-day dedupe (and the text shows the familiar form).
            sms = FlashSms.for_call(rec.facts, rec.decision, created_at=rec.decided_at,
                                    normalise=_sms_number)
            if sms is not None:
                sender.submit(sms)

        self.outbound.add_listener(warn)

    def request_stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the policy."""
        loop = asyncio.get_running_loop()
        await self.start()
        _settle_heap()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        try:
            await self._stop.wait()
        finally:
            log.info("service_stopping", inflight=self.outbound.inflight())
            await self.stop()

    def _on_sighup(self) -> None:
        if self.web is not None:
            # The web layer's reload keeps the history, metric and NOC event.
            task = asyncio.get_running_loop().create_task(self.web.policy.reload("sighup"))
            task.add_done_callback(_log_reload_failure)
        else:
            self.policy.reload()

    def snapshot_stats(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy.version,
            "outbound": dict(self.outbound.stats),
            "inbound": dict(self.inbound.stats) if self.inbound else None,
            "service": dict(self.stats),
            "outcome_queue_depth": self._outcomes.qsize(),
            "accepting": self.outbound.accepting,
            "event_loop_lag_ms": round(self.outbound.health.last_lag_s * 1e3, 3),
        }

"""Composition root: builds the controller from its configuration and owns its tasks.

This (with ``cli.py``) is the only place that wires layers together.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError
from fs_plugin.policy import PolicySnapshot, load_policy
from fs_plugin.screening import decide, fallback_decision
from fs_plugin.screening.model import CallFacts, Decision, Outcome
from fs_plugin.transport.health import HealthSettings
from fs_plugin.transport.inbound import InboundClient, InboundSettings
from fs_plugin.transport.outbound import DecisionRecord, OutboundServer, OutboundSettings

__all__ = ["PolicyHolder", "Service", "ServiceConfig"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    policy_path: Path
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    #: ``None`` runs without the inbound connection (no outcomes): a lab or a test.
    inbound: InboundSettings | None = None
    health: HealthSettings = field(default_factory=HealthSettings)
    #: Seconds in-flight calls get to finish on SIGTERM before they are cut.
    shutdown_grace_s: float = 10.0


class PolicyHolder:
    """The policy snapshot in force. Reload validates first and swaps atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshot: PolicySnapshot = load_policy(path)

    def reload(self) -> bool:
        """Load the files again; keep the old snapshot (and say why) when they are broken."""
        try:
            snapshot = load_policy(self.path)
        except ConfigError as exc:
            log.error("policy_reload_refused", error=exc.location_text(), kept=self.version)
            return False
        old, self.snapshot = self.version, snapshot
        log.info("policy_reloaded", old=old, new=self.version)
        return True

    @property
    def version(self) -> str:
        return self.snapshot.version


class Service:
    def __init__(self, config: ServiceConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.policy = PolicyHolder(config.policy_path)
        self.outbound = OutboundServer(
            config.outbound, self.decide, self.fallback, health=config.health,
            listeners=[self._log_decision],
        )
        self.inbound = (
            InboundClient(config.inbound, on_outcome=self._on_outcome)
            if config.inbound is not None
            else None
        )
        self.outcome_hooks: list[Callable[[Outcome], None]] = []
        self._stop = asyncio.Event()

    async def decide(self, facts: CallFacts) -> Decision:
        return decide(facts, self.policy.snapshot, None, now=self.clock.time())

    def fallback(self, facts: CallFacts, error: str) -> Decision:
        return fallback_decision(facts, self.policy.snapshot, error)

    def _log_decision(self, record: DecisionRecord) -> None:
        d, f = record.decision, record.facts
        log.info(
            "call_decided", call_uuid=f.uuid, trunk=d.trunk, verdict=d.verdict.value,
            rule=d.rule, cause=d.cause, sip_status=d.sip_status, caller=f.from_user,
            callee=f.destination, fallback=d.fallback, latency_ms=round(record.latency_s * 1e3, 3),
            shadow=[r.rule for r in d.shadow_hits] or None, policy=d.policy_version,
        )

    def _on_outcome(self, outcome: Outcome) -> None:
        for hook in self.outcome_hooks:
            hook(outcome)

    async def start(self) -> None:
        await self.outbound.start()
        if self.inbound is not None:
            self.inbound.start()
        log.info("service_started", policy=self.policy.version, port=self.outbound.bound_port)

    async def stop(self) -> None:
        await self.outbound.stop(self.config.shutdown_grace_s)
        if self.inbound is not None:
            await self.inbound.stop()
        log.info("service_stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the policy."""
        loop = asyncio.get_running_loop()
        await self.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self.policy.reload)
        try:
            await self._stop.wait()
        finally:
            log.info("service_stopping", inflight=self.outbound.inflight())
            await self.stop()

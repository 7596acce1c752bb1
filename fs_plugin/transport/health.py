"""The controller watches its own responsiveness.

A controller that accepts FreeSWITCH's connection and then cannot answer costs the
caller ~25 s of post-dial delay (fixtures/esl/README.md 11b), while a refused
connection fails over to the dialplan's fallback at once. So when the event loop
lags beyond what the decision deadline allows, or too many calls are in flight,
the outbound server stops listening; it listens again once the loop has been
healthy for a hold period (hysteresis, so it does not flap).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fs_plugin.tasks import cancel_and_wait

__all__ = ["HealthMonitor", "HealthSettings"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class HealthSettings:
    #: How often the loop-lag probe runs. 20 ms keeps the probe's own cost negligible
    #: while noticing a stall well inside a typical 100–300 ms decision deadline.
    interval_s: float = 0.02
    #: Sustained lag above this (``sustained`` samples in a row) means the controller is
    #: falling behind: stop accepting. One late sample (a GC pause, a descheduled
    #: process) is not overload by itself…
    max_lag_s: float = 0.1
    sustained: int = 3
    #: … unless it is longer than this: a stall this long already cost calls their
    #: decision deadline, so the next ones should fail over at once.
    hard_lag_s: float = 0.25
    #: More calls than this in flight also means overload (bounded memory, bounded delay).
    max_inflight: int = 2000
    #: The loop must stay healthy this long before accepting again.
    recover_after_s: float = 1.0


class HealthMonitor:
    """Samples event-loop lag and tells its listeners when to pause or resume accepting."""

    def __init__(
        self,
        settings: HealthSettings,
        inflight: Callable[[], int],
        on_change: Callable[[bool], None],
    ) -> None:
        self.settings = settings
        self._inflight = inflight
        self._on_change = on_change
        self.healthy = True
        self.last_lag_s = 0.0
        self.max_seen_lag_s = 0.0
        self._healthy_since: float | None = None
        self._late = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fsp-health")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    def observe(self, lag_s: float, now: float) -> None:
        """Feed one lag sample taken at loop time ``now`` (also used directly by tests)."""
        self.last_lag_s = lag_s
        self.max_seen_lag_s = max(self.max_seen_lag_s, lag_s)
        s = self.settings
        self._late = self._late + 1 if lag_s > s.max_lag_s else 0
        overloaded = (
            self._late >= s.sustained or lag_s > s.hard_lag_s or self._inflight() > s.max_inflight
        )
        if overloaded:
            self._healthy_since = None
            if self.healthy:
                self.healthy = False
                log.warning(
                    "controller_overloaded", lag_ms=round(lag_s * 1000, 1),
                    inflight=self._inflight(),
                )
                self._on_change(False)
            return
        if self.healthy:
            return
        if self._healthy_since is None:
            self._healthy_since = now
        elif now - self._healthy_since >= s.recover_after_s:
            self.healthy = True
            self._healthy_since = None
            log.info("controller_recovered", lag_ms=round(lag_s * 1000, 1))
            self._on_change(True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.settings.interval_s
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            now = loop.time()
            self.observe(max(0.0, now - expected), now)

"""The flash-SMS sender: a bounded queue and a few workers, off the call path.

How a warning travels::

    submit(sms)                      plain function: no await, no I/O, O(1)
        │  duplicate of a warning queued, in flight or sent today? ─► deduped, False
        │  queue full or sender closed? ─► dropped (counted, logged), False
        ▼
    bounded asyncio.Queue ─► worker (``workers`` of them)
        │  too old to matter? ─► expired
        │  DedupeStore.seen(key, ttl) ─ already marked (another switch, earlier) ─► deduped
        ▼
    gateway.send(sms) under a deadline, retried with exponential backoff and jitter
        2xx ─► sent · 4xx (not 429) ─► failed, not retried · 5xx/429/timeout/conn ─► retry
        attempts exhausted ─► failed, and the dedupe mark is released so that a later
        call from the same number may warn the user again

The call path only ever calls :meth:`SmsSender.submit`; nothing it does waits on the
gateway, the dedupe store or the queue. ``submit`` must be called from the event
loop's thread (it touches an ``asyncio.Queue``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError
from fs_plugin.tasks import cancel_and_wait
from fs_plugin.warn.dedupe import (
    DEFAULT_TIMEZONE,
    DayCalendar,
    DedupeStore,
    MemoryDedupe,
    dedupe_key,
)
from fs_plugin.warn.model import FailureKind, FlashSms, SmsDeliveryError, SmsGateway

__all__ = ["DEFAULT_QUEUE_MAX", "SenderSettings", "SmsSender"]

log = structlog.get_logger(__name__)

#: Queue bound. A queued warning is ~0.5 KiB, so 10,000 is ~5 MiB. At 50 warnings/s
#: (a busy switch in a bad hour) that is over three minutes of a dead gateway before
#: anything is dropped, and by then the calls being warned about are over: a warning
#: only helps while the phone rings, so a deeper queue would only hold stale ones.
DEFAULT_QUEUE_MAX: Final = 10_000

#: Keys remembered by the sender itself, so a flood of calls from one number to one
#: user is deduped in ``submit`` instead of filling the queue (~100 bytes each, ~10 MiB).
#: Past it new keys are not remembered locally and the dedupe store still catches them.
DEFAULT_LOCAL_KEYS_MAX: Final = 100_000


def _positive(value: float, key: str) -> None:
    if not value > 0:
        raise ConfigError(f"must be > 0, got {value!r}", key=f"warn.{key}")


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """How the sender queues, retries and dedupes (validated once, here)."""

    #: Warnings waiting for a worker (see :data:`DEFAULT_QUEUE_MAX`).
    queue_max: int = DEFAULT_QUEUE_MAX
    #: Concurrent deliveries. One slow gateway answer then holds one worker, not all.
    workers: int = 4
    #: Attempts per warning, the first included.
    max_attempts: int = 4
    #: Backoff before retry n is drawn from [d/2, d], d = min(max, base * 2**(n-1)).
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    #: Deadline on every gateway request, whatever the adapter does itself.
    attempt_timeout_s: float = 5.0
    #: Deadline on the dedupe store; past it the warning is sent (fail-open: a
    #: duplicate warning is better than none).
    dedupe_timeout_s: float = 0.5
    #: A warning older than this is not sent (or retried): the call has long ended.
    max_age_s: float = 300.0
    #: The zone whose calendar day bounds the dedupe.
    timezone: str = DEFAULT_TIMEZONE
    #: Marks outlive the day by this much, so switches with skewed clocks still agree.
    ttl_grace_s: float = 3600.0
    #: See :data:`DEFAULT_LOCAL_KEYS_MAX`.
    local_keys_max: int = DEFAULT_LOCAL_KEYS_MAX
    #: A flood of drops logs one error per interval (with the count), not one per drop.
    drop_log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        for key in ("queue_max", "workers", "max_attempts", "local_keys_max"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be an integer >= 1, got {value!r}", key=f"warn.{key}")
        for key in (
            "backoff_base_s",
            "backoff_max_s",
            "attempt_timeout_s",
            "dedupe_timeout_s",
            "max_age_s",
        ):
            _positive(getattr(self, key), key)
        DayCalendar(self.timezone)  # raises ConfigError for an unknown zone
        for key in ("ttl_grace_s", "drop_log_interval_s"):
            if not getattr(self, key) >= 0:
                raise ConfigError("must be >= 0", key=f"warn.{key}")


@dataclass(frozen=True, slots=True)
class _Job:
    sms: FlashSms
    key: str
    day: str
    day_end: float


_COUNTERS: Final = ("queued", "sent", "deduped", "dropped", "failed", "retries", "expired")


class SmsSender:
    """Delivers :class:`FlashSms` warnings through a :class:`SmsGateway`, never in the way.

    ``clock`` dates the dedupe marks and ages messages; ``sleep`` waits out backoff
    (tests pass one that records and returns); ``rng`` draws the jitter. The sender does
    not own the gateway: whoever built it closes it, after :meth:`close`.
    """

    def __init__(
        self,
        gateway: SmsGateway,
        settings: SenderSettings | None = None,
        *,
        clock: Clock | None = None,
        dedupe: DedupeStore | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._gateway = gateway
        self._settings = settings or SenderSettings()
        self._clock = clock or SystemClock()
        self._dedupe: DedupeStore = MemoryDedupe(clock=self._clock) if dedupe is None else dedupe
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._calendar = DayCalendar(self._settings.timezone)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(self._settings.queue_max)
        # Keys queued or in flight: bounded by queue_max + workers.
        self._pending: set[str] = set()
        # Keys known to be marked today (this day only; cleared when the day turns).
        self._known: set[str] = set()
        self._known_day = ""
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._closed = False
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._drops_unlogged = 0
        self._last_drop_log = float("-inf")

    # -- the call path ------------------------------------------------------------------

    def submit(self, sms: FlashSms) -> bool:
        """Queue ``sms`` for delivery; ``True`` if it was queued. Never waits.

        ``False`` means it was deduped (the same pair is queued, in flight, or already
        warned today) or dropped (queue full, sender closed). A queued warning can still
        be deduped later by the shared store.
        """
        if self._closed:
            self._drop(sms, "closed")
            return False
        day, day_end = self._calendar.day(sms.created_at)
        key = dedupe_key(day, sms.callee, sms.caller)
        if key in self._pending or (day == self._known_day and key in self._known):
            self._counts["deduped"] += 1
            log.debug("flash_sms_deduped", call_uuid=sms.call_uuid, where="submit")
            return False
        try:
            self._queue.put_nowait(_Job(sms, key, day, day_end))
        except asyncio.QueueFull:
            self._drop(sms, "queue_full")
            return False
        self._pending.add(key)
        self._counts["queued"] += 1
        return True

    def _drop(self, sms: FlashSms, reason: str) -> None:
        self._counts["dropped"] += 1
        self._drops_unlogged += 1
        now = self._clock.monotonic()
        if now - self._last_drop_log >= self._settings.drop_log_interval_s:
            log.error(
                "flash_sms_dropped",
                reason=reason,
                call_uuid=sms.call_uuid,
                dropped_since_last_log=self._drops_unlogged,
                dropped_total=self._counts["dropped"],
                queue_max=self._settings.queue_max,
            )
            self._last_drop_log = now
            self._drops_unlogged = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers (needs a running event loop). Idempotent."""
        if self._workers or self._closed:
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"flash-sms-{i}")
            for i in range(self._settings.workers)
        ]

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued warning is finished; ``False`` if ``timeout_s`` ran out."""
        if not self._workers:
            return self._queue.empty()
        try:
            async with asyncio.timeout(timeout_s):
                await self._queue.join()
        except TimeoutError:
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Refuse new warnings, give queued ones up to ``timeout_s`` to finish, then stop.

        Whatever is still queued or in flight at the deadline is counted as dropped.
        """
        self._closed = True
        try:
            drained = await self.flush(timeout_s)
        finally:
            # Even when close() itself is cancelled while it waits: workers left behind
            # would wait on the queue for ever, and what they leave must still be counted.
            workers, self._workers = self._workers, []
            await cancel_and_wait(*workers)
            left = 0
            while not self._queue.empty():
                job = self._queue.get_nowait()
                self._queue.task_done()
                self._pending.discard(job.key)
                left += 1
            if left:
                self._counts["dropped"] += left
                log.error("flash_sms_dropped", reason="shutdown", count=left)
        log.info("flash_sms_sender_closed", drained=drained, **self.stats())

    async def __aenter__(self) -> SmsSender:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        """Counters since start, plus ``pending`` (queued now + in flight)."""
        out = dict(self._counts)
        out["pending"] = self._queue.qsize() + self._in_flight
        return out

    # -- the workers --------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._in_flight += 1
            try:
                await self._deliver(job)
            except asyncio.CancelledError:
                # Only close() cancels workers, and it has given up waiting for this one.
                self._counts["dropped"] += 1
                log.error("flash_sms_dropped", reason="shutdown", call_uuid=job.sms.call_uuid)
                raise
            except Exception:
                # A worker must outlive any one message, whatever an adapter raises.
                self._counts["failed"] += 1
                log.exception("flash_sms_worker_error", call_uuid=job.sms.call_uuid)
            finally:
                self._in_flight -= 1
                self._pending.discard(job.key)
                self._queue.task_done()

    def _expired(self, sms: FlashSms) -> bool:
        return self._clock.time() - sms.created_at > self._settings.max_age_s

    def _remember(self, job: _Job) -> None:
        if job.day > self._known_day:
            self._known.clear()
            self._known_day = job.day
        if job.day == self._known_day and len(self._known) < self._settings.local_keys_max:
            self._known.add(job.key)

    async def _already_seen(self, job: _Job) -> bool:
        ttl = max(job.day_end - self._clock.time(), 0.0) + self._settings.ttl_grace_s
        try:
            async with asyncio.timeout(self._settings.dedupe_timeout_s):
                return await self._dedupe.seen(job.key, ttl)
        except Exception as exc:
            # The store is a boundary: whatever it raises, warn anyway (fail-open).
            log.warning(
                "flash_sms_dedupe_unavailable",
                call_uuid=job.sms.call_uuid,
                error=type(exc).__name__,
            )
            return False

    async def _release(self, job: _Job) -> None:
        self._known.discard(job.key)
        try:
            async with asyncio.timeout(self._settings.dedupe_timeout_s):
                await self._dedupe.forget(job.key)
        except Exception as exc:
            log.warning(
                "flash_sms_dedupe_unavailable",
                call_uuid=job.sms.call_uuid,
                error=type(exc).__name__,
            )

    def backoff_s(self, attempt: int, error: SmsDeliveryError | None = None) -> float:
        """Delay before attempt ``attempt + 1``: exponential, jittered, capped.

        Jitter spreads the retries of many workers and switches that failed together;
        drawing from [d/2, d] keeps a floor so a struggling gateway gets some rest.
        A gateway's ``Retry-After`` is honoured up to ``backoff_max_s``.
        """
        s = self._settings
        ceiling = min(s.backoff_max_s, s.backoff_base_s * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self._rng.uniform(0.0, ceiling / 2)
        if error is not None and error.retry_after_s is not None:
            delay = max(delay, min(error.retry_after_s, s.backoff_max_s))
        return delay

    async def _deliver(self, job: _Job) -> None:
        sms = job.sms
        s = self._settings
        if self._expired(sms):
            self._counts["expired"] += 1
            log.warning("flash_sms_expired", call_uuid=sms.call_uuid, attempts=0)
            return
        if await self._already_seen(job):
            self._remember(job)
            self._counts["deduped"] += 1
            log.debug("flash_sms_deduped", call_uuid=sms.call_uuid, where="store")
            return
        self._remember(job)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(s.attempt_timeout_s):
                    await self._gateway.send(sms)
            except SmsDeliveryError as exc:
                error = exc
            except TimeoutError:
                error = SmsDeliveryError(
                    FailureKind.TIMEOUT, retryable=True, detail="attempt deadline"
                )
            except OSError as exc:
                # Adapters should translate their errors; a bare socket error is still
                # a connection problem worth another attempt.
                error = SmsDeliveryError(
                    FailureKind.CONNECTION, retryable=True, detail=type(exc).__name__
                )
            else:
                self._counts["sent"] += 1
                log.info(
                    "flash_sms_sent",
                    call_uuid=sms.call_uuid,
                    callee=sms.callee,
                    caller=sms.caller,
                    attempts=attempt,
                )
                return
            fields = {
                "call_uuid": sms.call_uuid,
                "attempt": attempt,
                "kind": error.kind.value,
                "status": error.status,
            }
            if not error.retryable:
                # The gateway refused this request as such: asking again today would get
                # the same answer, so the dedupe mark stays.
                self._counts["failed"] += 1
                log.error("flash_sms_rejected", **fields)
                return
            if attempt >= s.max_attempts:
                self._counts["failed"] += 1
                log.error("flash_sms_gave_up", **fields)
                await self._release(job)
                return
            delay = self.backoff_s(attempt, error)
            self._counts["retries"] += 1
            log.warning("flash_sms_retry", delay_s=round(delay, 3), **fields)
            await self._sleep(delay)
            if self._expired(sms):
                self._counts["expired"] += 1
                log.warning("flash_sms_expired", call_uuid=sms.call_uuid, attempts=attempt)
                await self._release(job)
                return

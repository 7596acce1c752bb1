"""The live decision stream behind the NOC page.

Every decision becomes a small JSON-able event with the numbers masked. Events go
to a :class:`LiveBus`:

- :class:`LocalBus` (default) fans out inside this process;
- :class:`RedisStreamBus` also appends each event to a Redis stream (``XADD`` with
  an approximate ``MAXLEN``) and reads the events of the other switches' plug-ins
  from it (``XREAD``), so one NOC page shows every switch.

Publishing never blocks the call path: subscribers have bounded queues and a slow
one loses its oldest events (counted), and the Redis writer has a bounded outbox.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import structlog

from fs_plugin.logs import mask_number
from fs_plugin.tasks import cancel_and_wait
from fs_plugin.transport.outbound import DecisionRecord

__all__ = ["LiveBus", "LocalBus", "RedisStreamBus", "Subscription", "event_from_record"]

log = structlog.get_logger(__name__)

_LONG_DIGITS = re.compile(r"\+?\d[\d\- ]{6,}\d")


def _mask(value: str | None) -> str | None:
    return mask_number(value) if value else value


def mask_text(text: str) -> str:
    """Mask every number-looking run in free text (rule reasons quote numbers)."""
    return _LONG_DIGITS.sub(lambda m: mask_number(m.group(0)), text)


def event_from_record(record: DecisionRecord, *, switch: str | None = None) -> dict[str, Any]:
    """The NOC's view of one decision: masked numbers, no channel variables.

    ``switch`` is the plug-in's own name (``ServiceConfig.switch_name``, the journal's
    ``switch`` column), which tells the switches on a shared stream apart; ``host`` is
    what FreeSWITCH calls itself (``FreeSWITCH-Hostname``), often the same on every box
    built from one image. Without a name the host stands in.
    """
    d, f = record.decision, record.facts
    return {
        "uuid": f.uuid,
        "at": round(record.decided_at, 3),
        "switch": switch or f.switch,
        "host": f.switch,
        "verdict": d.verdict.value,
        "trunk": d.trunk,
        "customer": d.customer,
        "rule": d.rule,
        "cause": d.cause,
        "sip_status": d.sip_status,
        "label": d.label,
        "reason": mask_text(d.reason),
        "caller": _mask(f.from_user),
        "pai": _mask(f.pai),
        "callee": _mask(f.destination),
        "fallback": d.fallback,
        "latency_ms": round(record.latency_s * 1e3, 3),
        "shadow": [
            {"rule": r.rule, "verdict": r.verdict.value, "reason": mask_text(r.reason)}
            for r in d.shadow_hits
        ],
        "policy": d.policy_version,
    }


class Subscription:
    """One listener's bounded queue. When full, the oldest event is dropped."""

    def __init__(self, bus: LiveBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


class LiveBus:
    """In-process fan-out with a replay buffer of the latest events."""

    def __init__(self, *, recent_max: int = 2000, subscriber_queue_max: int = 1000,
                 max_subscribers: int = 200) -> None:
        #: What a page that just connected sees first; also the drill-down's memory.
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent_max)
        self._subscriber_queue_max = subscriber_queue_max
        #: Each open page holds one queue; the cap bounds the memory they can take.
        self.max_subscribers = max_subscribers
        self._subs: set[Subscription] = set()
        self.stats = {"published": 0, "remote": 0, "dropped": 0}

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self) -> Subscription | None:
        """A new subscription, or ``None`` when ``max_subscribers`` are already open."""
        if len(self._subs) >= self.max_subscribers:
            return None
        sub = Subscription(self, self._subscriber_queue_max)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self.stats["dropped"] += sub.dropped

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event of this node to every subscriber; never blocks."""
        self.stats["published"] += 1
        self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        self.recent.append(event)
        for sub in self._subs:
            sub.offer(event)

    def describe(self) -> dict[str, Any]:
        """What the status event says about the bus."""
        return {"kind": "local", **self.stats}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


LocalBus = LiveBus


class RedisStreamBus(LiveBus):
    """:class:`LiveBus` shared between plug-ins through one Redis stream.

    Local events are delivered at once (a Redis outage must not blind this node's
    NOC page) and appended to the stream tagged with this node's id; the reader
    delivers the events of *other* nodes. During an outage both sides retry every
    ``retry_s``; events published meanwhile wait in the bounded outbox and reach
    the other nodes when Redis is back.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "fsp:noc",
        maxlen: int = 100_000,
        outbox_max: int = 10_000,
        batch_max: int = 200,
        block_ms: int = 1000,
        retry_s: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if maxlen < 1 or outbox_max < 1 or batch_max < 1 or block_ms < 1 or retry_s <= 0:
            raise ValueError("maxlen, outbox_max, batch_max, block_ms and retry_s must be > 0")
        self.url = url
        self.stream = stream
        #: The stream is a short window for live viewing, not a store: trimmed
        #: (approximately, which is cheap for Redis) to about this many entries.
        self.maxlen = maxlen
        #: Events waiting for XADD; beyond this (Redis slow or down) the oldest go.
        self._outbox: deque[str] = deque(maxlen=outbox_max)
        #: XADDs sent in one pipeline: one round trip per batch, not per call.
        self._batch_max = batch_max
        self._wake = asyncio.Event()
        self._block_ms = block_ms
        self._retry_s = retry_s
        self.node = secrets.token_hex(6)
        #: Where the reader goes on from: the last entry seen (``$`` only until the
        #: first answer, so nothing appended after :meth:`start` returned is missed).
        self._last_id = "$"
        #: ``None`` until the first Redis round trip, then whether the last one worked.
        self.up: bool | None = None
        self.stats.update({"written": 0, "write_errors": 0, "read_errors": 0})
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None

    @property
    def outbox(self) -> int:
        """Events of this node not yet in the stream."""
        return len(self._outbox)

    def describe(self) -> dict[str, Any]:
        return {"kind": "redis", "stream": self.stream, "up": self.up, "outbox": self.outbox,
                **self.stats}

    async def start(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # Our loops retry on their own schedule; the client's default retries (with
        # back-off up to seconds) would stall the writer and resend XADDs twice.
        self._redis = aioredis.from_url(
            self.url, socket_timeout=(self._block_ms / 1000) + 2.0, socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
        )
        await self._position()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer(), name="fsp-noc-bus-writer"),
            loop.create_task(self._reader(), name="fsp-noc-bus-reader"),
        ]

    async def _position(self) -> None:
        """Start reading after the stream's current last entry.

        Reading from ``$`` would lose whatever other nodes append between this call
        and the reader's first XREAD; a fixed id does not. Redis being down here is
        not fatal: the page still shows local events and the reader starts at ``$``.
        """
        try:
            last = await self._redis.xrevrange(self.stream, count=1)
        except Exception as exc:  # redis errors, timeouts and refused connects alike
            self._failed("noc_bus_position_failed", "read_errors", exc)
            return
        self.up = True
        self._last_id = _text(last[0][0]) if last else "0-0"

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def publish(self, event: dict[str, Any]) -> None:
        super().publish(event)
        if len(self._outbox) == self._outbox.maxlen:
            self.stats["dropped"] += 1
        self._outbox.append(json.dumps(event, separators=(",", ":")))
        self._wake.set()

    def _failed(self, what: str, counter: str, exc: Exception) -> None:
        self.stats[counter] += 1
        if self.up is not False:  # once per outage, not once per retry
            log.warning(what, error=type(exc).__name__, stream=self.stream)
        self.up = False

    async def _writer(self) -> None:
        batch: list[str] = []
        while True:
            if not batch:
                if not self._outbox:
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                # Taken off the outbox first: the outbox may overflow while the
                # pipeline is out, and its oldest entries must not be these.
                take = min(self._batch_max, len(self._outbox))
                batch = [self._outbox.popleft() for _ in range(take)]
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for data in batch:
                        pipe.xadd(self.stream, {"node": self.node, "event": data},
                                  maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
            except Exception as exc:
                self._failed("noc_bus_write_failed", "write_errors", exc)
                await asyncio.sleep(self._retry_s)
                continue
            if self.up is False:
                log.info("noc_bus_resumed", stream=self.stream, sent=len(batch))
            self.up = True
            self.stats["written"] += len(batch)
            batch = []

    async def _reader(self) -> None:
        while True:
            try:
                reply = await self._redis.xread(
                    {self.stream: self._last_id}, count=500, block=self._block_ms
                )
            except Exception as exc:
                self._failed("noc_bus_read_failed", "read_errors", exc)
                await asyncio.sleep(self._retry_s)
                continue
            self.up = True
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    self._last_id = _text(entry_id)
                    if _text(fields.get(b"node", b"")) == self.node:
                        continue
                    try:
                        event = json.loads(fields[b"event"])
                    except (KeyError, ValueError):
                        continue
                    if not isinstance(event, dict):
                        continue
                    self.stats["remote"] += 1
                    self._deliver(event)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

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
import contextlib
import json
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import structlog

from fs_plugin.logs import mask_number
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
    """The NOC's view of one decision: masked numbers, no channel variables."""
    d, f = record.decision, record.facts
    return {
        "uuid": f.uuid,
        "at": round(record.decided_at, 3),
        "switch": f.switch or switch,
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

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


LocalBus = LiveBus


class RedisStreamBus(LiveBus):
    """:class:`LiveBus` shared between plug-ins through one Redis stream.

    Local events are delivered at once (a Redis outage must not blind this node's
    NOC page) and appended to the stream tagged with this node's id; the reader
    delivers the events of *other* nodes.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "fsp:noc",
        maxlen: int = 100_000,
        outbox_max: int = 10_000,
        block_ms: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.stream = stream
        #: The stream is a short window for live viewing, not a store: trimmed
        #: (approximately, which is cheap for Redis) to this many entries.
        self.maxlen = maxlen
        #: Events waiting for XADD; beyond this (Redis slow or down) the oldest go.
        self._outbox: deque[str] = deque(maxlen=outbox_max)
        self._wake = asyncio.Event()
        self._block_ms = block_ms
        self.node = secrets.token_hex(6)
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(
            self.url, socket_timeout=(self._block_ms / 1000) + 2.0, socket_connect_timeout=2.0
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer(), name="fsp-noc-bus-writer"),
            loop.create_task(self._reader(), name="fsp-noc-bus-reader"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                data = self._outbox[0]
                try:
                    await self._redis.xadd(
                        self.stream, {"node": self.node, "event": data},
                        maxlen=self.maxlen, approximate=True,
                    )
                except Exception as exc:  # redis errors and timeouts alike
                    log.warning("noc_bus_write_failed", error=type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                self._outbox.popleft()

    async def _reader(self) -> None:
        last = "$"
        while True:
            try:
                reply = await self._redis.xread(
                    {self.stream: last}, count=500, block=self._block_ms
                )
            except Exception as exc:
                log.warning("noc_bus_read_failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    node = fields.get(b"node", b"").decode()
                    if node == self.node:
                        continue
                    try:
                        event = json.loads(fields[b"event"])
                    except (KeyError, ValueError):
                        continue
                    self.stats["remote"] += 1
                    self._deliver(event)

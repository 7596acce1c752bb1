"""Dedupe of flash-SMS warnings: one per (callee, caller) per local day.

A user flooded by one number (呼死你) must get one warning about it, not one per call,
and the day boundary is the one the user lives by (the configured zone, default
Asia/Shanghai), not UTC. The store is a small async protocol so that many switches can
share it through the counter store later (Redis ``SET key 1 NX EX ttl``);
:class:`MemoryDedupe` is the single-node default.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError

__all__ = [
    "DEFAULT_MEMORY_DEDUPE_MAX",
    "DEFAULT_TIMEZONE",
    "DayCalendar",
    "DedupeStore",
    "MemoryDedupe",
    "dedupe_key",
]

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"

#: Keys kept by :class:`MemoryDedupe`. A key is ~80 bytes plus dict overhead, so
#: 500,000 is ~60 MiB: more distinct (callee, caller) warnings than a large switch
#: sends in a day. Past it the oldest keys are evicted: a second warning to someone is a
#: smaller harm than a plug-in that grows without bound under a flood.
DEFAULT_MEMORY_DEDUPE_MAX: Final = 500_000


class DedupeStore(Protocol):
    """Marks keys for a while; shared by every sender that must not repeat a warning."""

    async def seen(self, key: str, ttl_s: float) -> bool:
        """Mark ``key`` for ``ttl_s`` seconds; ``True`` if it was already marked.

        Must be atomic across everyone sharing the store (test-and-set), so two switches
        racing on the same key send one warning.
        """
        ...

    async def forget(self, key: str) -> None:
        """Remove a mark (a warning that could not be delivered may be tried again)."""
        ...


def dedupe_key(day: str, callee: str, caller: str) -> str:
    """The key of one (callee, caller) pair on one local day (``YYYY-MM-DD``)."""
    return f"fsp:sms:{day}:{callee}:{caller}"


class DayCalendar:
    """Local days in one time zone, with the current day's bounds cached.

    Almost every lookup falls in the day of the previous one, so the zone arithmetic
    runs about once a day instead of once per message.
    """

    def __init__(self, timezone: str = DEFAULT_TIMEZONE) -> None:
        try:
            self._zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {timezone!r}", key="warn.timezone") from exc
        self._start = 0.0
        self._end = -1.0
        self._day = ""

    def day(self, epoch_s: float) -> tuple[str, float]:
        """``(YYYY-MM-DD, epoch second at which that local day ends)``."""
        if not self._start <= epoch_s < self._end:
            local = dt.datetime.fromtimestamp(epoch_s, self._zone)
            start = dt.datetime.combine(local.date(), dt.time(), self._zone)
            # Adding a day to a local date and re-localising handles 23/25-hour days.
            end = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), self._zone)
            self._start, self._end = start.timestamp(), end.timestamp()
            self._day = local.date().isoformat()
        return self._day, self._end


class MemoryDedupe:
    """In-process :class:`DedupeStore`: a dict of key → expiry, swept when keys expire.

    Keys of one day all expire together (at the end of that day), so a sweep happens
    about once a day and empties the previous day's keys in one pass; between sweeps
    every operation is O(1).
    """

    def __init__(
        self, *, clock: Clock | None = None, max_entries: int = DEFAULT_MEMORY_DEDUPE_MAX
    ) -> None:
        if max_entries < 1:
            raise ConfigError("must be at least 1", key="warn.dedupe_max_entries")
        self._clock = clock or SystemClock()
        self._max = max_entries
        self._expiry: dict[str, float] = {}
        self._next_sweep = float("inf")
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._expiry)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._expiry = {k: t for k, t in self._expiry.items() if t > now}
        self._next_sweep = min(self._expiry.values(), default=float("inf"))

    def check_and_mark(self, key: str, ttl_s: float) -> bool:
        """The synchronous form of :meth:`seen`."""
        now = self._clock.time()
        self._sweep(now)
        expiry = self._expiry.get(key)
        if expiry is not None and expiry > now:
            return True
        if expiry is None and len(self._expiry) >= self._max:
            # Dicts keep insertion order: the first key is the oldest mark.
            del self._expiry[next(iter(self._expiry))]
            self.evicted += 1
        until = now + max(ttl_s, 0.0)
        self._expiry[key] = until
        self._next_sweep = min(self._next_sweep, until)
        return False

    async def seen(self, key: str, ttl_s: float) -> bool:
        return self.check_and_mark(key, ttl_s)

    async def forget(self, key: str) -> None:
        self._expiry.pop(key, None)

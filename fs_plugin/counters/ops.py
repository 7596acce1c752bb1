"""The operations a counter store runs, and what each returns.

The screening engine (pure) turns a call into a list of these; the transport hands the
list to :meth:`CounterStore.execute` — one round trip — and gives the results back to
the engine in the same order. Every operation names a logical ``key``; ``tag`` picks the
Redis Cluster hash slot (keys with the same tag live on the same node, so one script
sees them all). Without a tag the key is its own tag.

Semantics shared by every backend (the contract suite checks them):

``Hit`` — sliding-window rate counter, constant memory per key. The window is cut into
:data:`SUB_BUCKETS` sub-buckets of ``window_s / SUB_BUCKETS`` seconds and the count is
the sum of the current sub-bucket and the ``SUB_BUCKETS`` before it. A hit therefore
stays counted for at least ``window_s`` and at most ``window_s * (1 + 1/SUB_BUCKETS)``:
the count never misses a hit of the true sliding window (a cap of N per window is never
exceeded over any interval of ``window_s``), and it over-counts only hits between
``window_s`` and ``window_s * (1 + 1/SUB_BUCKETS)`` old. With a ``limit``, a hit that
would take the count above the limit is refused and **not added**: a rejected call does
not consume quota. ``peek`` reads without adding.

``Distinct`` — distinct members seen in the last ``window_s`` (exact, sorted set of
member → last seen, trimmed by time on every access). At most ``cap`` members are kept;
past the cap the oldest are dropped, so a count equal to ``cap`` means "at least cap".
``member=None`` only reads.

``Acquire`` / ``Release`` — a concurrency lease per call UUID with an expiry. Expired
leases are pruned on every access, so a lost hangup never leaks a slot. Acquiring a
lease that is already held renews it and is always granted (a retried acquire for the
same call must not be refused by itself).

``Flag`` / ``GetFlag`` — a value with a time to live (a caller flagged as wangiri, a
bombed callee). ``Get`` reads a ``Hit`` counter without changing it.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

__all__ = [
    "MAX_DISTINCT",
    "SUB_BUCKETS",
    "Acquire",
    "CountResult",
    "Distinct",
    "DistinctResult",
    "Flag",
    "FlagResult",
    "Get",
    "GetFlag",
    "Hit",
    "HitResult",
    "LeaseResult",
    "Op",
    "Release",
    "ReleaseResult",
    "Result",
]

#: Sub-buckets per rate window. 10 bounds the over-count to hits at most 10 % of a
#: window older than the window, for 11 small hash fields per counter.
SUB_BUCKETS = 10

#: Default bound on the members one ``Distinct`` key keeps (memory per key). Wangiri and
#: bombing thresholds are tens of numbers; 1000 leaves room while bounding a robo-dialer
#: that calls 100k numbers to ~1000 members (tens of kB) per key.
MAX_DISTINCT = 1000


def _check_name(what: str, value: str | None) -> None:
    # Braces would move the Redis Cluster hash tag and make key names ambiguous.
    if value is None:
        return
    if not value or "{" in value or "}" in value:
        raise ValueError(f"{what} must be non-empty and contain no braces: {value!r}")


def _check_positive(what: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{what} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Hit:
    """Count ``cost`` hits on a sliding-window rate counter (see the module doc)."""

    key: str
    window_s: float
    limit: int | None = None
    cost: int = 1
    peek: bool = False
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)
        _check_positive("window_s", self.window_s)
        if self.cost < 0:
            raise ValueError(f"cost must be >= 0, got {self.cost}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")


@dataclass(frozen=True, slots=True)
class Get:
    """Read a ``Hit`` counter (with the window it was last hit with) without changing it."""

    key: str
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)


@dataclass(frozen=True, slots=True)
class Distinct:
    """Record ``member`` (unless None) and count the distinct members in the window."""

    key: str
    member: str | None
    window_s: float
    cap: int = MAX_DISTINCT
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)
        _check_positive("window_s", self.window_s)
        if self.cap < 1:
            raise ValueError(f"cap must be >= 1, got {self.cap}")


@dataclass(frozen=True, slots=True)
class Acquire:
    """Take (or renew) a lease ``lease_id`` if fewer than ``limit`` live leases exist."""

    key: str
    lease_id: str
    limit: int
    ttl_s: float
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)
        _check_positive("ttl_s", self.ttl_s)
        if self.limit < 0:
            raise ValueError(f"limit must be >= 0, got {self.limit}")


@dataclass(frozen=True, slots=True)
class Release:
    """Give back lease ``lease_id`` (a no-op when it expired or was never taken)."""

    key: str
    lease_id: str
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)


@dataclass(frozen=True, slots=True)
class Flag:
    """Set a flag to ``value`` for ``ttl_s`` seconds (replacing any previous value)."""

    key: str
    ttl_s: float
    value: str = "1"
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)
        _check_positive("ttl_s", self.ttl_s)


@dataclass(frozen=True, slots=True)
class GetFlag:
    """Read a flag."""

    key: str
    _: KW_ONLY
    tag: str | None = None

    def __post_init__(self) -> None:
        _check_name("key", self.key)
        _check_name("tag", self.tag)


Op = Hit | Get | Distinct | Acquire | Release | Flag | GetFlag


@dataclass(frozen=True, slots=True)
class HitResult:
    """``count`` is what the window holds after the op: it includes this hit iff ``added``.

    ``over`` is true when a limit is set and ``count-before + cost > limit`` — the hit was
    refused (or, with ``peek``, would be).
    """

    count: int
    over: bool
    added: bool


@dataclass(frozen=True, slots=True)
class CountResult:
    """A rate counter's current count (0 for a counter that does not exist)."""

    count: int


@dataclass(frozen=True, slots=True)
class DistinctResult:
    """Distinct members in the window after the op; ``added`` when ``member`` was new."""

    count: int
    added: bool


@dataclass(frozen=True, slots=True)
class LeaseResult:
    """Whether the lease is held after the op, and how many live leases the key has."""

    granted: bool
    count: int


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    """Whether a live lease was removed, and how many live leases remain."""

    released: bool
    count: int


@dataclass(frozen=True, slots=True)
class FlagResult:
    """A flag's value and remaining life; both None when the flag is not set."""

    value: str | None
    ttl_s: float | None

    @property
    def is_set(self) -> bool:
        return self.value is not None


Result = HitResult | CountResult | DistinctResult | LeaseResult | ReleaseResult | FlagResult

"""Open a counter store from its URL (the one place that knows the schemes)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fs_plugin.clock import Clock
from fs_plugin.counters.base import DEFAULT_TIMEOUT_S, CounterStore
from fs_plugin.counters.keys import DEFAULT_NAMESPACE
from fs_plugin.counters.memory import DEFAULT_MAX_KEYS, MemoryStore
from fs_plugin.counters.urls import parse_cluster_url
from fs_plugin.errors import ConfigError

__all__ = ["SCHEMES", "open_store"]

SCHEMES = ("memory", "redis", "rediss", "redis+cluster", "rediss+cluster")


def open_store(
    url: str,
    *,
    clock: Clock | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    allow_time_override: bool = False,
    max_keys: int = DEFAULT_MAX_KEYS,
) -> CounterStore:
    """The store for ``url``:

    - ``memory://`` — in this process, time from ``clock``; ``max_keys`` bounds it;
    - ``redis://[user:password@]host:port/db`` or ``rediss://…`` (TLS) — one Redis;
    - ``redis+cluster://[user:password@]host:port[,host:port…]`` (``rediss+cluster`` for
      TLS) — a Redis Cluster, reached through any of the seed nodes.

    Nothing is connected yet (connections open on first use), so this never blocks and
    never raises StorageError. ``timeout_s`` is the default deadline of every network
    await. ``allow_time_override`` (tests only) makes the Redis scripts use ``clock``
    instead of the server's ``TIME``. A URL that names no known store raises ConfigError.
    """
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if timeout_s <= 0:
        raise ConfigError(f"counter store timeout must be > 0, got {timeout_s}")
    if scheme == "memory":
        return MemoryStore(clock=clock, namespace=namespace, max_keys=max_keys)
    # The Redis backends are imported only when asked for, so that importing the ops
    # (the screening engine does) never loads a network client.
    if scheme in ("redis", "rediss"):
        from fs_plugin.counters.redis_store import RedisStore

        return RedisStore(
            url,
            clock=clock,
            namespace=namespace,
            timeout_s=timeout_s,
            allow_time_override=allow_time_override,
        )
    if scheme in ("redis+cluster", "rediss+cluster"):
        try:
            parse_cluster_url(url)
        except ValueError as exc:
            raise ConfigError(f"bad counter store URL: {exc}") from exc
        from fs_plugin.counters.redis_store import RedisClusterStore

        return RedisClusterStore(
            url,
            clock=clock,
            namespace=namespace,
            timeout_s=timeout_s,
            allow_time_override=allow_time_override,
        )
    raise ConfigError(f"counter store URL must start with one of {', '.join(SCHEMES)}: {url!r}")

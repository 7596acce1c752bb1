"""HTTP side of the plug-in: REST API with roles, the NOC page (live stream over SSE),
Prometheus metrics, and the policy's reload and diff.

Names are imported lazily: ``fs-plugin`` loads ``fs_plugin.web.commands`` for every
command line, and that must not pull in aiohttp's server and prometheus_client.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ROUTES",
    "LiveBus",
    "PolicyDiff",
    "Principal",
    "RedisStreamBus",
    "Role",
    "Route",
    "TokenStore",
    "WebServer",
    "WebSettings",
    "diff_policies",
    "event_from_record",
    "hash_token",
    "load_tokens",
    "start_web",
]

_HOME = {
    "ROUTES": "app", "Route": "app", "WebServer": "app", "WebSettings": "app",
    "start_web": "app", "Principal": "auth", "Role": "auth", "TokenStore": "auth",
    "hash_token": "auth", "load_tokens": "auth", "LiveBus": "bus", "RedisStreamBus": "bus",
    "event_from_record": "bus", "PolicyDiff": "diff", "diff_policies": "diff",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"fs_plugin.web.{module}"), name)

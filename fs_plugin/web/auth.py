"""API tokens and roles.

The tokens file (YAML or JSON) maps the **sha256 hex digest** of each token to a
role and a name, so the file itself never holds a usable secret::

    tokens:
      - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        role: noc
        name: noc-desk-1

Lookups hash the presented token and compare digests with
:func:`hmac.compare_digest` against every entry, so the time taken does not tell
how much of a digest matched. Tokens are never logged; the principal's *name* is.

The NOC page cannot set an ``Authorization`` header on an ``EventSource``, so a
token can also be exchanged for a session cookie (``POST /api/session``). Sessions
live in memory, are bounded and expire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError

__all__ = [
    "Principal",
    "Role",
    "SessionStore",
    "TokenStore",
    "hash_token",
    "load_tokens",
]


class Role(StrEnum):
    #: Watches: live stream, decisions, counters, rates, labels, lists, policy (read).
    NOC = "noc"
    #: Changes the policy and its lists; reads what the NOC reads.
    EDITOR = "editor"
    #: The regulator's desk: ledger and call traces, read only.
    REGULATOR = "regulator"
    #: Everything, including counter resets.
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_HEX = frozenset("0123456789abcdef")


class TokenStore:
    """Token digests → principals; ``lookup`` runs in time independent of the match."""

    def __init__(self, entries: dict[str, Principal]) -> None:
        self._entries = tuple(entries.items())

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> Principal | None:
        try:
            digest = hash_token(token).encode("ascii")
        except UnicodeEncodeError:
            # Header bytes that are not UTF-8 (aiohttp keeps them as surrogates) or a
            # lone surrogate escape in a login body: no issued token looks like that.
            return None
        found: Principal | None = None
        # No early exit: every entry is compared whatever matched.
        for stored, principal in self._entries:
            if hmac.compare_digest(digest, stored.encode("ascii")):
                found = principal
        return found


def _parse_tokens(doc: Any, source: str) -> TokenStore:
    items = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError("expected a mapping with a 'tokens' list", file=source, key="tokens")
    entries: dict[str, Principal] = {}
    for i, item in enumerate(items):
        key = f"tokens[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("expected a mapping", file=source, key=key)
        digest = str(item.get("sha256", "")).lower()
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ConfigError("sha256 must be 64 hex digits (the token's digest, not the token)",
                              file=source, key=f"{key}.sha256")
        try:
            role = Role(str(item.get("role", "")))
        except ValueError:
            raise ConfigError(f"role must be one of {', '.join(r.value for r in Role)}",
                              file=source, key=f"{key}.role") from None
        name = str(item.get("name") or f"token-{i}")
        if digest in entries:
            raise ConfigError("duplicate token digest", file=source, key=f"{key}.sha256")
        entries[digest] = Principal(name, role)
    return TokenStore(entries)


def load_tokens(path: Path) -> TokenStore:
    """Read a tokens file (``.json``, else YAML); raises :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read tokens file: {exc.strerror}", file=str(path)) from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"tokens file is not valid: {type(exc).__name__}",
                          file=str(path)) from None
    return _parse_tokens(doc, str(path))


class SessionStore:
    """Cookie sessions for the NOC page.

    Bounded (``max_sessions``, oldest evicted) so a client logging in in a loop
    cannot grow memory; each session expires ``ttl_s`` after it was made.
    """

    def __init__(
        self, *, ttl_s: float = 12 * 3600, max_sessions: int = 1000, clock: Clock | None = None
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_sessions
        self._clock = clock or SystemClock()
        self._sessions: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def create(self, principal: Principal) -> str:
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = (principal, self._clock.time() + self._ttl_s)
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return sid

    def lookup(self, sid: str) -> Principal | None:
        entry = self._sessions.get(sid)
        if entry is None:
            return None
        principal, expires = entry
        if self._clock.time() >= expires:
            del self._sessions[sid]
            return None
        return principal

    def drop(self, sid: str) -> None:
        self._sessions.pop(sid, None)

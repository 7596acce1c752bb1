"""Stored key names, shared by every backend so ``show``/``reset`` patterns mean the same.

A stored key is ``<namespace>:{<tag>}:<kind>:<key>`` — for example
``fsp:{caller:862088880001}:rate:caller:862088880001``. The braces are the Redis Cluster
hash tag: keys with the same tag share a slot. The kind keeps a rate counter, a lease
set and a flag that happen to share a logical name from colliding (and Redis from
answering WRONGTYPE).

Patterns for ``show``/``reset`` are Redis glob patterns (``*``, ``?``, ``[abc]``,
``[^abc]``, ``[a-z]``, ``\\`` escapes) matched against the stored key **after** the
``<namespace>:`` prefix, so ``*`` is everything of ours and nothing else in the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from fs_plugin.counters.ops import Acquire, Distinct, Flag, Get, GetFlag, Hit, Op, Release

__all__ = ["DEFAULT_NAMESPACE", "Kind", "StoredKey", "glob_to_regex", "kind_of", "stored_key"]

DEFAULT_NAMESPACE = "fsp"


class Kind(StrEnum):
    RATE = "rate"
    DISTINCT = "distinct"
    LEASE = "lease"
    FLAG = "flag"


def kind_of(op: Op) -> Kind:
    match op:
        case Hit() | Get():
            return Kind.RATE
        case Distinct():
            return Kind.DISTINCT
        case Acquire() | Release():
            return Kind.LEASE
        case Flag() | GetFlag():
            return Kind.FLAG


def stored_key(namespace: str, op: Op) -> str:
    tag = op.tag if op.tag is not None else op.key
    return f"{namespace}:{{{tag}}}:{kind_of(op)}:{op.key}"


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A stored key split back into its parts (for ``show``)."""

    tag: str
    kind: Kind
    key: str

    @classmethod
    def parse(cls, namespace: str, name: str) -> StoredKey | None:
        """The parts of ``name``, or None when it is not a key this module wrote."""
        prefix = namespace + ":{"
        if not name.startswith(prefix):
            return None
        tag, sep, rest = name[len(prefix) :].partition("}:")
        kind_text, sep2, key = rest.partition(":")
        if not (sep and sep2 and tag and key):
            return None
        try:
            kind = Kind(kind_text)
        except ValueError:
            return None
        return cls(tag=tag, kind=kind, key=key)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Redis glob pattern (the dialect SCAN MATCH speaks) to an anchored regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            start = i + 2 if pattern[i + 1 : i + 2] == "^" else i + 1
            end = pattern.find("]", start)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                # Escape everything but the range dash, as Redis gives no other meaning.
                parts = [re.escape(c) if c != "-" else "-" for c in body]
                if not parts:
                    out.append("." if negate else "(?!)")  # an empty set matches nothing
                else:
                    out.append("[" + ("^" if negate else "") + "".join(parts) + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)

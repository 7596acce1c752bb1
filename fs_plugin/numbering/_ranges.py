"""Allowed caller-ID sets: exact numbers, prefixes and ranges, compiled for fast lookup.

Every spec is normalised to the key of :attr:`Number.key`: the national form for Chinese
numbers ('02088886666', '13900001111', '4008123123') and E.164 for international ones
('+14155550100'). A policy may therefore write '+86 20 8888 6666', '020-8888-6666' or
'02088886666' and mean the same number.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass

from fs_plugin.numbering._classify import classify, classify_uncached
from fs_plugin.numbering._model import Number
from fs_plugin.numbering._uri import normalise_text, strip_separators

__all__ = ["NumberRange", "NumberSet", "parse_range"]

# Longest key: '+' and the 15 digits E.164 allows, or a 20-digit SMS port.
_MAX_KEY_LENGTH = 21


@dataclass(frozen=True, slots=True)
class NumberRange:
    """Numbers from ``lo`` to ``hi`` inclusive, both keys of the same length.

    With ``is_prefix`` the range is every number starting with ``lo`` (then ``lo == hi``).
    """

    lo: str
    hi: str
    is_prefix: bool = False

    def __contains__(self, n: object) -> bool:
        key = _key_of(n)
        if key is None:
            return False
        if self.is_prefix:
            return key.startswith(self.lo)
        return len(key) == len(self.lo) and self.lo <= key <= self.hi


def _key_of(n: object) -> str | None:
    if isinstance(n, Number):
        return n.key
    if isinstance(n, str):
        return classify(n).key
    return None


def _number_key(text: str, spec: str) -> str:
    """The key of one complete number, or ValueError naming the spec and the reason."""
    n = classify_uncached(text)
    if n.key is None or not n.is_valid_caller_id:
        # An SMS port has a key but can never be a voice caller ID: listing one is a mistake.
        why = n.malformed_reason or n.cls.value
        raise ValueError(f"{spec!r} is not a valid number ({why})")
    return n.key


def _prefix_key(text: str, spec: str) -> str:
    """Normalise the leading digits of numbers to the key form of the numbers they start."""
    cleaned = strip_separators(normalise_text(text).strip())
    plus = cleaned.startswith("+")
    digits = cleaned[1:] if plus else cleaned
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{spec!r}: a prefix must be digits, optionally after '+' or '00'")
    if not plus and digits.startswith("00"):
        plus, digits = True, digits[2:]
    if not plus:
        return digits
    if not digits.startswith("86"):
        return "+" + digits
    nsn = digits[2:]
    # Chinese numbers are keyed by their national form, so '+86 20…' means '020…'. Only the
    # prefixes whose class their leading digits settle can be converted: '+86 95' may be the
    # Yinchuan area code 0951 or a 95xxx service number, '+86 10' Beijing or a short code.
    first = nsn[:1]
    if first in ("2", "3", "5", "6", "7"):
        return "0" + nsn
    if first in ("4", "8") and len(nsn) >= 3:
        # No area code starts 040 or 080, so '+86 400…' / '+86 800…' can only be toll-free.
        return nsn if nsn.startswith(("400", "800")) else "0" + nsn
    if first == "9" and len(nsn) >= 2 and not nsn.startswith(("95", "96")):
        return "0" + nsn
    if first == "1" and nsn[1:2] in tuple("3456789"):
        return nsn
    raise ValueError(
        f"{spec!r}: the class of a +86 prefix this short is ambiguous; "
        "write it in national form (e.g. 0208888*, 139*, 95555*)"
    )


def _pattern(spec: str) -> NumberRange | None:
    """'0208888*' (prefix) or '0208888xxxx' (fixed-length block); None for anything else."""
    text = spec.strip()
    if "*" in text[:-1]:
        raise ValueError(f"{spec!r}: '*' may only end a prefix")
    if text.endswith("*"):
        head = text[:-1]
        if not head.strip():
            raise ValueError(f"{spec!r}: '*' may only end a non-empty prefix")
        key = _prefix_key(head, spec)
        return NumberRange(key, key, is_prefix=True)
    stripped = text.rstrip("xX")
    if stripped == text:
        return None
    if not stripped.strip():
        raise ValueError(f"{spec!r}: 'x' may only stand for trailing digits of a number")
    key = _prefix_key(stripped, spec)
    width = len(text) - len(stripped)
    lo, hi = key + "0" * width, key + "9" * width
    if len(lo) > _MAX_KEY_LENGTH:
        raise ValueError(f"{spec!r}: longer than any number")
    return NumberRange(lo, hi)


def _caller_id_key(text: str) -> str | None:
    n = classify_uncached(text)
    return n.key if n.is_valid_caller_id else None


def _split_range(spec: str) -> tuple[str, str] | None:
    """Split 'lo-hi' at the one '-' that leaves a valid number on each side; return their keys.

    '-' is also a visual separator ('020-8888-6666'), so the range dash is the split at
    which both sides are numbers; none means a single number, several is ambiguous.
    """
    splits = []
    for i, c in enumerate(spec):
        if c != "-":
            continue
        left = _caller_id_key(spec[:i])
        right = _caller_id_key(spec[i + 1 :]) if left is not None else None
        if left is not None and right is not None:
            splits.append((left, right))
    if len(splits) > 1:
        raise ValueError(f"{spec!r}: ambiguous range, write both ends without '-' separators")
    return splits[0] if splits else None


def parse_range(spec: str) -> NumberRange:
    """Parse '02088880000-02088889999', a single number, '0208888*' or '0208888xxxx'.

    Both ends are normalised to the key form (national for Chinese numbers). Raises
    ValueError with a message naming the spec when it is not a valid range.
    """
    text = normalise_text(spec).strip()
    if not text:
        raise ValueError("empty number range")
    if len(text) > 4 * _MAX_KEY_LENGTH:
        raise ValueError(f"{spec[:40]!r}…: too long for a number range")
    if text.startswith("-") or text.endswith("-"):
        raise ValueError(f"{spec!r}: a range needs both ends ('lo-hi')")
    pattern = _pattern(text)
    if pattern is not None:
        return pattern
    ends = _split_range(text)
    if ends is None:
        if not any(c.isdigit() for c in text):
            raise ValueError(f"{spec!r} is not a number, range or prefix")
        if _caller_id_key(text) is None and text.count("-") == 1:
            # Most likely a range with a bad end: say which end is wrong.
            left, right = text.split("-")
            for name, end in (("low", left), ("high", right)):
                n = classify_uncached(end)
                if not n.is_valid_caller_id:
                    why = n.malformed_reason or n.cls.value
                    raise ValueError(f"{spec!r}: the {name} end {end.strip()!r} is not a valid"
                                     f" number ({why})")
        key = _number_key(text, spec)
        return NumberRange(key, key)
    lo, hi = ends
    if len(lo) != len(hi):
        raise ValueError(
            f"{spec!r}: the ends differ in length ({lo} and {hi} after normalisation)"
        )
    if lo > hi:
        raise ValueError(f"{spec!r}: the low end {lo} is above the high end {hi}")
    return NumberRange(lo, hi)


def _int_key(key: str) -> int:
    return int(key[1:] if key.startswith("+") else key)


class NumberSet:
    """A compiled set of caller IDs: exact numbers, prefixes and ranges. Immutable once built.

    Ranges are merged into disjoint intervals per key length (a range of 11-digit numbers
    never matches a 12-digit one) and searched by bisection: O(log n) for any number of
    ranges. Prefixes are looked up by slicing the key at each known prefix length.
    """

    __slots__ = ("_exact", "_intervals", "_prefix_lengths", "_prefixes")

    def __init__(
        self,
        numbers: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        ranges: Iterable[str | NumberRange] = (),
    ) -> None:
        exact: set[str] = set()
        prefix_keys: set[str] = set()
        spans: dict[tuple[int, bool], list[tuple[int, int]]] = {}
        for spec in numbers:
            exact.add(_number_key(normalise_text(spec).strip(), spec))
        for spec in prefixes:
            head = spec.strip()
            head = head[:-1] if head.endswith("*") else head
            if not head.strip():
                raise ValueError(f"{spec!r}: empty prefix")
            prefix_keys.add(_prefix_key(head, spec))
        for item in ranges:
            r = item if isinstance(item, NumberRange) else parse_range(item)
            if r.is_prefix:
                prefix_keys.add(r.lo)
            elif r.lo == r.hi:
                exact.add(r.lo)
            else:
                group = (len(r.lo), r.lo.startswith("+"))
                spans.setdefault(group, []).append((_int_key(r.lo), _int_key(r.hi)))
        self._exact = frozenset(exact)
        self._prefixes = frozenset(prefix_keys)
        self._prefix_lengths = tuple(sorted({len(p) for p in prefix_keys}))
        self._intervals = {group: _merge(items) for group, items in spans.items()}

    def __contains__(self, n: object) -> bool:
        key = _key_of(n)
        if key is None:
            return False
        if key in self._exact:
            return True
        for length in self._prefix_lengths:
            if length > len(key):
                break
            if key[:length] in self._prefixes:
                return True
        intervals = self._intervals.get((len(key), key.startswith("+")))
        if intervals is None:
            return False
        starts, ends = intervals
        value = _int_key(key)
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and value <= ends[i]

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes or self._intervals)

    def __repr__(self) -> str:
        spans = sum(len(starts) for starts, _ in self._intervals.values())
        return (
            f"NumberSet(numbers={len(self._exact)}, prefixes={len(self._prefixes)}, "
            f"intervals={spans})"
        )


def _merge(items: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sort and merge overlapping or adjacent intervals into parallel start/end lists."""
    items.sort()
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in items:
        if ends and lo <= ends[-1] + 1:
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends

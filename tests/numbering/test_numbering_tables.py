"""The fast paths of classify() give exactly what the general ones give.

``_Tables`` answers phonenumbers' questions about +86 numbers from precomputed patterns
and memoised prefix lookups; ``_Reference`` asks phonenumbers' public API. Bare digit
strings skip the text normalisation. Each is compared here with its general path,
over every prefix that decides a class and over many generated numbers.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.geodata import GEOCODE_DATA

from fs_plugin.numbering import AREA_CODES, _uri, classify, user_part
from fs_plugin.numbering import _classify as classify_module
from fs_plugin.numbering._classify import (
    _REFERENCE,
    _probe_area_codes,
    _Tables,
    classify_reference,
    classify_uncached,
)


def _digits(rng: random.Random, lo: int, hi: int) -> int:
    """A number of ``lo`` to ``hi`` digits at most."""
    return rng.randrange(10 ** rng.randint(lo, hi))


#: Every form a trunk presents, valid and not, in every class: one maker per shape.
_SHAPES: tuple[Callable[[random.Random, list[str]], str], ...] = (
    lambda r, c: f"1{r.randrange(10**10):010d}",
    lambda r, c: f"0{r.choice(c)}{_digits(r, 5, 9)}",
    lambda r, c: f"0{_digits(r, 6, 12)}",
    lambda r, c: f"+86{_digits(r, 4, 12)}",
    lambda r, c: f"0086{r.choice(c)}{_digits(r, 6, 8)}",
    lambda r, c: f"86{_digits(r, 6, 12)}",
    lambda r, c: f"{r.choice(('95', '96', '400', '800', '106', '10', '12', '11'))}"
                 f"{_digits(r, 1, 12)}",
    lambda r, c: str(_digits(r, 1, 14)),
    lambda r, c: f"+{r.randrange(1, 999)}{_digits(r, 4, 12)}",
    lambda r, c: f"sip:+861{r.randrange(10**10):010d}@10.0.0.1;user=phone",
    lambda r, c: f"1{r.choice('3456789')}{r.randrange(10**9):09d}",
    lambda r, c: f"{r.choice(c)}{_digits(r, 6, 8)}",
)


def _corpus(count: int, seed: int) -> list[str]:
    """Numbers in every form a trunk presents, valid and not, in every class."""
    rng = random.Random(seed)
    codes = sorted(AREA_CODES)
    return [rng.choice(_SHAPES)(rng, codes) for _ in range(count)]


def test_the_tables_are_in_use() -> None:
    # A phonenumbers release that moved its data would fall back silently: say so here.
    assert isinstance(classify_module._ORACLE, _Tables)


def test_area_codes_are_the_same_from_the_public_api() -> None:
    assert _probe_area_codes(_REFERENCE) == AREA_CODES


def test_every_mobile_segment_and_area_code() -> None:
    # Every 4-digit mobile prefix (validity and operator are decided there and above),
    # every area code with 7- and 8-digit subscriber numbers, in every prefix form.
    rng = random.Random(1)
    numbers = [f"1{p:03d}{rng.randrange(10**7):07d}" for p in range(1000)]
    for code in sorted(AREA_CODES):
        for length in (6, 7, 8, 9):
            numbers.append(f"0{code}{rng.randrange(2 * 10**(length - 1), 10**length)}")
            numbers.append(f"0{code}{rng.randrange(10**length):0{length}d}")
    numbers += [f"+86{n[1:]}" if n[0] == "0" else f"+86{n}" for n in numbers]
    for raw in numbers:
        assert classify_uncached(raw) == classify_reference(raw), raw


def test_many_generated_numbers() -> None:
    for raw in _corpus(20_000, seed=7):
        assert classify_uncached(raw) == classify_reference(raw), raw


@settings(max_examples=400)
@given(st.from_regex(r"\A(\+|00|86|0)?[0-9]{1,16}\Z"))
def test_generated_digit_strings(raw: str) -> None:
    assert classify_uncached(raw) == classify_reference(raw)


def test_memoised_attribution_and_operator_by_prefix() -> None:
    # A fresh memo, filled in an order of its own, over many keys of the geocoder table:
    # each answer is the public API's for that number.
    tables = _Tables(_REFERENCE)
    keys = sorted(k for k in GEOCODE_DATA if k.startswith("86"))
    rng = random.Random(3)
    for key in rng.sample(keys, 3000):
        nsn = key[2:] + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 4)))
        if not nsn or nsn[0] == "0":
            continue
        assert tables.region(nsn) == _REFERENCE.region(nsn), nsn
        assert tables.operator(nsn) == _REFERENCE.operator(nsn), nsn
        assert tables.number_type(nsn) == _REFERENCE.number_type(nsn), nsn


@settings(max_examples=200)
@given(st.from_regex(r"\A\+?[0-9]{1,20}\Z"))
def test_bare_digits_skip_only_work_that_changes_nothing(raw: str) -> None:
    # The general path for the same digits (a blank makes them take it).
    general = classify(raw + " ")
    assert classify(raw) == dataclasses.replace(general, raw=raw)
    assert user_part(raw) == _uri._user_part(raw)

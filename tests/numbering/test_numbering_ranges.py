"""parse_range() and NumberSet: normalisation, errors, and agreement with brute force."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_plugin.numbering import NumberRange, NumberSet, classify, parse_range


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("02088880000-02088889999", NumberRange("02088880000", "02088889999")),
        ("02088886666", NumberRange("02088886666", "02088886666")),
        ("020-8888-6666", NumberRange("02088886666", "02088886666")),
        ("+86 20 8888 0000 - +86 20 8888 9999", NumberRange("02088880000", "02088889999")),
        ("862088880000-02088889999", NumberRange("02088880000", "02088889999")),
        ("13900000000-13999999999", NumberRange("13900000000", "13999999999")),
        ("4008123123", NumberRange("4008123123", "4008123123")),
        ("+14155550000-+14155559999", NumberRange("+14155550000", "+14155559999")),
        ("0208888*", NumberRange("0208888", "0208888", is_prefix=True)),
        ("020-8888*", NumberRange("0208888", "0208888", is_prefix=True)),
        ("+8620 8888*", NumberRange("0208888", "0208888", is_prefix=True)),
        ("+86139*", NumberRange("139", "139", is_prefix=True)),
        ("+1415*", NumberRange("+1415", "+1415", is_prefix=True)),
        ("001415*", NumberRange("+1415", "+1415", is_prefix=True)),
        ("95555*", NumberRange("95555", "95555", is_prefix=True)),
        ("0208888xxxx", NumberRange("02088880000", "02088889999")),
        ("1390000XXXX", NumberRange("13900000000", "13900009999")),
    ],
)
def test_parse_range(spec: str, expected: NumberRange) -> None:
    assert parse_range(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abc", "not a number"),
        ("02088889999-02088880000", "above the high end"),
        ("0208888-02088889999", "low end '0208888' is not a valid number (too_short)"),
        ("02088880000-0208889", "high end '0208889' is not a valid number (too_short)"),
        ("02088880000-075512345678", "differ in length"),
        ("02088880000-+14155550100", "differ in length"),
        ("02088886666-", "both ends"),
        ("-02088886666", "both ends"),
        ("*", "non-empty prefix"),
        ("020*8", "'*' may only end"),
        ("0208*8*", "'*' may only end"),
        ("xxxx", "trailing digits"),
        ("02a8*", "must be digits"),
        ("+8610*", "ambiguous"),
        ("+8695*", "ambiguous"),
        ("+86*", "ambiguous"),
        ("anonymous", "not a number"),
        ("0000000000", "not a valid number (anonymous)"),
        ("1065502012345", "not a valid number (sms_code)"),
        ("03311234567", "unknown_area_code"),
        ("1" * 200, "too long"),
        ("0208888" + "x" * 20, "longer than any number"),
    ],
)
def test_parse_range_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_range(spec)
    assert fragment in str(info.value)


def test_sms_ports_are_not_allowed_caller_ids() -> None:
    # An SMS port has no voice caller-ID key, so it cannot be listed as one.
    with pytest.raises(ValueError, match="sms_code"):
        NumberSet(numbers=["1065502012345"])


def test_range_membership() -> None:
    r = parse_range("02088880000-02088889999")
    assert classify("+862088886666") in r
    assert "020-8888-0000" in r
    assert "02088879999" not in r
    assert "020888800000" not in r  # same digits, another length
    assert classify("anonymous") not in r
    assert 2088886666 not in r  # neither a Number nor a string


def test_prefix_membership() -> None:
    r = parse_range("0755*")
    assert "075512345678" in r
    assert "+8675512345678" in r
    assert "02088886666" not in r


def test_number_set() -> None:
    allowed = NumberSet(
        numbers=["4008123123", "+86 139 0000 1111"],
        prefixes=["0755*", "+1415", "95555"],
        ranges=["02088880000-02088889999", "02088890000-02088899999", "0108888xxxx"],
    )
    inside = ["02088886666", "+862088895555", "4008123123", "13900001111", "075512345678",
              "+14155550100", "95555", "sip:+8601088881234@h", "01088881234"]
    outside = ["02088900000", "02088879999", "13900001112", "+14165550100", "95556",
               "anonymous", "abc", "1065502012345"]
    assert all(x in allowed for x in inside if "sip:+860" not in x)
    assert not any(x in allowed for x in outside)
    assert "sip:+8601088881234@h" not in allowed  # malformed: trunk 0 after +86
    assert bool(allowed)
    assert not NumberSet()
    assert "02088886666" not in NumberSet()


def test_number_set_merges_adjacent_and_overlapping_ranges() -> None:
    s = NumberSet(ranges=["02088880000-02088884999", "02088885000-02088889999",
                          "02088883000-02088886000", "02088880000-02088880000"])
    assert repr(s) == "NumberSet(numbers=1, prefixes=0, intervals=1)"
    assert "02088884999" in s and "02088885000" in s


def test_number_set_accepts_parsed_ranges() -> None:
    s = NumberSet(ranges=[parse_range("0208888*"), NumberRange("13900000000", "13900009999")])
    assert "02088886666" in s and "13900005555" in s and "13900015555" not in s


def test_number_set_reports_the_bad_spec() -> None:
    with pytest.raises(ValueError, match="'0208888-0208889'"):
        NumberSet(ranges=["02088880000-02088889999", "0208888-0208889"])
    with pytest.raises(ValueError, match="empty prefix"):
        NumberSet(prefixes=["*"])
    with pytest.raises(ValueError, match="'abc'"):
        NumberSet(numbers=["abc"])


def test_number_set_with_100k_entries_is_fast() -> None:
    base = 13900000000
    ranges = [f"{base + i * 100}-{base + i * 100 + 49}" for i in range(50_000)]
    numbers = [str(base + 10_000_000 + i) for i in range(50_000)]
    started = time.perf_counter()
    s = NumberSet(numbers=numbers, ranges=ranges)
    built = time.perf_counter() - started
    probes = [classify(str(base + i * 37)) for i in range(20_000)]
    started = time.perf_counter()
    hits = sum(p in s for p in probes)
    per_lookup = (time.perf_counter() - started) / len(probes)
    expected = sum(1 for i in range(20_000) if (i * 37) % 100 < 50 and i * 37 < 5_000_000)
    assert hits == expected
    assert built < 30.0  # generous bounds: a shared CI box, not a benchmark
    assert per_lookup < 50e-6


# --- brute force agreement ----------------------------------------------------------------
# A small universe (0208888 0000–0999 and 1390000 0000–0999) keeps the brute force exact.

_SUFFIX = st.integers(min_value=0, max_value=999)
_HEADS = ("02088880", "13900000")


def _num(head: str, suffix: int) -> str:
    return f"{head}{suffix:03d}"


_RANGE = st.tuples(st.sampled_from(_HEADS), _SUFFIX, _SUFFIX).map(
    lambda t: (t[0], min(t[1], t[2]), max(t[1], t[2]))
)


@settings(max_examples=200, deadline=None)
@given(
    numbers=st.lists(st.tuples(st.sampled_from(_HEADS), _SUFFIX), max_size=8),
    prefixes=st.lists(st.tuples(st.sampled_from(_HEADS), st.integers(0, 99)), max_size=4),
    ranges=st.lists(_RANGE, max_size=8),
    probes=st.lists(st.tuples(st.sampled_from(_HEADS), _SUFFIX), min_size=1, max_size=30),
)
def test_number_set_agrees_with_brute_force(
    numbers: list[tuple[str, int]],
    prefixes: list[tuple[str, int]],
    ranges: list[tuple[str, int, int]],
    probes: list[tuple[str, int]],
) -> None:
    number_specs = [_num(h, s) for h, s in numbers]
    prefix_specs = [f"{h}{p:02d}*" for h, p in prefixes]
    range_specs = [f"{_num(h, lo)}-{_num(h, hi)}" for h, lo, hi in ranges]
    s = NumberSet(numbers=number_specs, prefixes=prefix_specs, ranges=range_specs)
    for head, suffix in probes:
        probe = _num(head, suffix)
        expected = (
            probe in number_specs
            or any(probe.startswith(p[:-1]) for p in prefix_specs)
            or any(h == head and lo <= suffix <= hi for h, lo, hi in ranges)
        )
        assert (probe in s) is expected, probe
        # each single range agrees with its own bounds too
        for spec in range_specs:
            r = parse_range(spec)
            assert (probe in r) is (r.lo <= probe <= r.hi)


@pytest.mark.parametrize(
    ("spec", "expected", "member"),
    [
        ("+86 400 812*", NumberRange("400812", "400812", is_prefix=True), "+86 400 812 3123"),
        ("0086 800 810*", NumberRange("800810", "800810", is_prefix=True), "8008101234"),
        ("+86 4008123xxx", NumberRange("4008123000", "4008123999"), "4008123123"),
    ],
)
def test_a_plus86_toll_free_prefix_is_not_ambiguous(
    spec: str, expected: NumberRange, member: str
) -> None:
    # No area code starts 040 or 080, so after +86 the digits 400/800 can only begin a
    # toll-free number; '+86 400 812 3123' is accepted as a number, its block must be too.
    assert parse_range(spec) == expected
    allowed = NumberSet(ranges=[spec])
    assert member in allowed
    assert "02088886666" not in allowed

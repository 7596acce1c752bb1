"""Classifying a presented number by the China numbering plan (see the package docstring).

Three questions go to phonenumbers for a Chinese number: its type (the validity table),
its attribution and its original operator. Asked through phonenumbers' public API they
cost ~20 µs a number (generic region lookups, E.164 formatting, regex recompilation);
:class:`_Tables` answers the same questions for +86 numbers from the same metadata in a
few µs, and :class:`_Reference` is the public API itself: the fallback when the tables
cannot be built (a phonenumbers release that moved its data), and what the tests compare
the tables with.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType, carrier, geocoder

from fs_plugin.numbering._model import Number, NumberClass
from fs_plugin.numbering._uri import normalise_text, strip_separators, user_part

__all__ = [
    "AREA_CODES", "MAX_RAW_LENGTH", "classify", "classify_reference", "classify_uncached",
]

_CN = 86
_CN_DIGITS = "86"

#: Longer raw values are malformed without being parsed or cached: a SIP From header is far
#: shorter, and the bound keeps one hostile header from pinning memory in the cache.
MAX_RAW_LENGTH = 512

# Caller IDs repeat heavily (a trunk presents a few thousand numbers), so a bounded cache
# serves nearly every call; 32768 entries of ~0.5 kB cap it near 16 MB.
_CACHE_SIZE = 32768

# Tokens that SIP and FreeSWITCH use for "no number" (RFC 3323/3325 'anonymous', carriers'
# 'unavailable'/'restricted', FreeSWITCH's '_undef_').
_ANONYMOUS_TOKENS = frozenset(
    {
        "anonymous",
        "unknown",
        "restricted",
        "private",
        "unavailable",
        "withheld",
        "_undef_",
    }
)

# Three-digit special service numbers (police, emergency, directory): callee forms mostly,
# classed with the short codes so contract target rules can name them.
_SPECIAL_SERVICE = frozenset({"110", "112", "114", "119", "120", "122"})

_SHORT_CODE_LENGTH = 5  # 10xxx / 12xxx
_SERVICE_LENGTHS = range(5, 9)  # 95xxx / 96xxx: 5–8 digits
_TOLL_FREE_LENGTH = 10  # 400 / 800 + 7 digits
_SMS_MAX_LENGTH = 20  # 106 + operator code + service code + extension
_MOBILE_LENGTH = 11
_SUBSCRIBER_LENGTHS = range(7, 9)  # DESIGN.md: 7–8 digit local number
_FIXED_TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


# -- what phonenumbers says about a Chinese number --------------------------------------
# Every method takes the national significant number as phonenumbers writes it: ASCII
# digits without a leading 0 (``str(PhoneNumber(86, int(nsn)).national_number)``).


class _Reference:
    """phonenumbers' public API: the definition the tables must agree with."""

    def number_type(self, nsn: str) -> int:
        # number_type() is UNKNOWN for a number that matches none of the region's tables,
        # so it doubles as the validity check; is_valid_number() would match them twice.
        return int(phonenumbers.number_type(_cn_number(nsn)))

    def region(self, nsn: str) -> str | None:
        """Attribution of a number already known valid (Chinese, English as the fallback)."""
        n = _cn_number(nsn)
        return (
            geocoder.description_for_valid_number(n, "zh")
            or geocoder.description_for_valid_number(n, "en")
            or None
        )

    def operator(self, nsn: str) -> str | None:
        n = _cn_number(nsn)
        return (carrier.name_for_valid_number(n, "zh")
                or carrier.name_for_valid_number(n, "en") or None)


def _cn_number(nsn: str) -> PhoneNumber:
    return PhoneNumber(country_code=_CN, national_number=int(nsn))


class _Cascade:
    """The CN patterns ``number_type`` tries for numbers of one length, in its order."""

    __slots__ = ("fixed", "general", "mobile", "specials")

    def __init__(
        self,
        general: re.Pattern[str],
        specials: tuple[tuple[int, re.Pattern[str]], ...],
        fixed: re.Pattern[str] | None,
        mobile: re.Pattern[str] | None,
    ) -> None:
        self.general = general
        self.specials = specials
        self.fixed = fixed
        self.mobile = mobile


class _PrefixMemo:
    """An answer of phonenumbers' prefix tables (geocoder, carrier), memoised by prefix.

    Those lookups walk the E.164 digits from the longest prefix down to the first key of
    the table that names the place in the language asked, so for a +86 number the
    answer depends only on the longest key of the table that prefixes ``86`` + the
    number. The memo is keyed by that key and filled by asking ``compute`` (the public
    API) once per key: at most one entry per key of the table, whatever the input.
    """

    __slots__ = ("_compute", "_data", "_longest", "_memo")

    def __init__(
        self, data: Mapping[str, object], longest: int, compute: Callable[[str], str | None]
    ) -> None:
        self._data = data
        # Only keys that can prefix a +86 number matter: the walk may start at the longest.
        self._longest = min(longest, max(
            (len(k) for k in data if k.startswith(_CN_DIGITS) or _CN_DIGITS.startswith(k)),
            default=0,
        ))
        self._compute = compute
        self._memo: dict[str | None, str | None] = {}

    def get(self, nsn: str) -> str | None:
        e164 = _CN_DIGITS + nsn
        data = self._data
        key: str | None = None
        for size in range(min(self._longest, len(e164)), 0, -1):
            prefix = e164[:size]
            if prefix in data:
                key = prefix
                break
        memo = self._memo
        if key in memo:
            return memo[key]
        value = memo[key] = self._compute(nsn)
        return value


class _Tables:
    """The answers of :class:`_Reference` for +86 numbers, from the same metadata, fast.

    ``number_type`` runs phonenumbers' own cascade (``_number_type_helper``: general
    description, the special types in order, then fixed line and mobile, each pattern
    only for a length its description allows) over patterns compiled once and chosen
    once per length; attribution and operator come from :class:`_PrefixMemo`.
    """

    def __init__(self, reference: _Reference) -> None:
        from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX
        from phonenumbers.geodata import GEOCODE_DATA, GEOCODE_LONGEST_PREFIX

        metadata = PhoneMetadata.metadata_for_region("CN")
        if metadata is None or metadata.country_code != _CN:
            raise LookupError("no CN metadata")
        if phonenumbers.country_mobile_token(_CN):
            # The geocoder strips a mobile token first (Argentina's 9): not handled here.
            raise LookupError("CN has a mobile token")
        self._metadata: Any = metadata
        self._same = bool(metadata.same_mobile_and_fixed_line_pattern)
        self._cascades: dict[int, _Cascade | None] = {}
        self._compiled: dict[str, re.Pattern[str]] = {}
        self._regions = _PrefixMemo(GEOCODE_DATA, GEOCODE_LONGEST_PREFIX, reference.region)
        self._operators = _PrefixMemo(CARRIER_DATA, CARRIER_LONGEST_PREFIX, reference.operator)

    def _pattern(self, desc: Any, length: int) -> re.Pattern[str] | None:
        """The pattern of ``desc`` when a number of ``length`` digits can match it
        (``_is_number_matching_desc``: no description, a length outside its possible
        lengths, or no pattern never match)."""
        if desc is None:
            return None
        lengths = desc.possible_length
        if lengths and length not in lengths:
            return None
        text: str | None = desc.national_number_pattern
        if not text:
            return None
        compiled = self._compiled.get(text)
        if compiled is None:
            compiled = self._compiled[text] = re.compile(text)
        return compiled

    def _cascade(self, length: int) -> _Cascade | None:
        m = self._metadata
        general = self._pattern(m.general_desc, length)
        if general is None:
            return None
        specials = (
            (PhoneNumberType.PREMIUM_RATE, m.premium_rate),
            (PhoneNumberType.TOLL_FREE, m.toll_free),
            (PhoneNumberType.SHARED_COST, m.shared_cost),
            (PhoneNumberType.VOIP, m.voip),
            (PhoneNumberType.PERSONAL_NUMBER, m.personal_number),
            (PhoneNumberType.PAGER, m.pager),
            (PhoneNumberType.UAN, m.uan),
            (PhoneNumberType.VOICEMAIL, m.voicemail),
        )
        found = tuple((int(kind), p) for kind, desc in specials
                      if (p := self._pattern(desc, length)) is not None)
        return _Cascade(general, found, self._pattern(m.fixed_line, length),
                        self._pattern(m.mobile, length))

    def number_type(self, nsn: str) -> int:
        length = len(nsn)
        cascades = self._cascades
        if length in cascades:
            cascade = cascades[length]
        else:
            # One entry per length: bounded by MAX_RAW_LENGTH.
            cascade = cascades[length] = self._cascade(length)
        if cascade is None or cascade.general.fullmatch(nsn) is None:
            return int(PhoneNumberType.UNKNOWN)
        for kind, pattern in cascade.specials:
            if pattern.fullmatch(nsn) is not None:
                return kind
        mobile = cascade.mobile
        if cascade.fixed is not None and cascade.fixed.fullmatch(nsn) is not None:
            if self._same or (mobile is not None and mobile.fullmatch(nsn) is not None):
                return int(PhoneNumberType.FIXED_LINE_OR_MOBILE)
            return int(PhoneNumberType.FIXED_LINE)
        if not self._same and mobile is not None and mobile.fullmatch(nsn) is not None:
            return int(PhoneNumberType.MOBILE)
        return int(PhoneNumberType.UNKNOWN)

    def region(self, nsn: str) -> str | None:
        return self._regions.get(nsn)

    def operator(self, nsn: str) -> str | None:
        return self._operators.get(nsn)


_Oracle = _Reference | _Tables

_REFERENCE = _Reference()


def _build_tables() -> _Oracle:
    try:
        return _Tables(_REFERENCE)
    except (ImportError, LookupError, AttributeError):
        # A phonenumbers release laid out differently: the same answers, only slower.
        return _REFERENCE


_ORACLE: _Oracle = _build_tables()


def _probe_area_codes(pn: _Oracle) -> frozenset[str]:
    """Area codes (without the trunk 0) that phonenumbers' CN fixed-line table accepts.

    Derived from the validity table rather than the geocoder's prefixes: the geocoder
    describes whole blocks ('033x') that hold no assigned area code. A code exists when
    some 7- or 8-digit subscriber number under it is a valid fixed line.
    """
    candidates = ["10", *(f"2{i}" for i in range(10)), *(str(i) for i in range(300, 1000))]
    found: set[str] = set()
    for code in candidates:
        for first in "23456789":
            if any(_valid_fixed(pn, code + first + t) for t in ("234567", "2345678")):
                found.add(code)
                break
    return frozenset(found)


def _valid_fixed(pn: _Oracle, nsn: str) -> bool:
    return pn.number_type(nsn) in _FIXED_TYPES


#: Chinese area codes without the trunk 0 ('10', '20', '898', '999'), from phonenumbers.
AREA_CODES: frozenset[str] = _probe_area_codes(_ORACLE)


def _describe_country(n: PhoneNumber) -> str | None:
    # description_for_number falls back to the country name for non-geographic numbers.
    return (
        geocoder.description_for_number(n, "zh")
        or geocoder.description_for_number(n, "en")
        or None
    )


class _Result:
    """What one classification path found; turned into a Number by ``classify``."""

    __slots__ = ("area_code", "carrier", "cls", "country_code", "e164", "national", "reason",
                 "region")

    def __init__(
        self,
        cls: NumberClass,
        national: str | None = None,
        *,
        reason: str | None = None,
        e164: str | None = None,
        country_code: int | None = None,
        area_code: str | None = None,
        region: str | None = None,
        carrier: str | None = None,
    ) -> None:
        self.cls = cls
        self.national = national
        self.reason = reason
        self.e164 = e164
        self.country_code = country_code
        self.area_code = area_code
        self.region = region
        self.carrier = carrier

    @property
    def valid(self) -> bool:
        return self.cls is not NumberClass.MALFORMED


def _bad(reason: str) -> _Result:
    return _Result(NumberClass.MALFORMED, reason=reason)


def _chinese(cls: NumberClass, national: str, *, e164: bool = True) -> _Result:
    return _Result(cls, national, e164=f"+86{national}" if e164 else None, country_code=_CN)


def _by_length(
    cls: NumberClass, d: str, lengths: range, *, e164: bool = True
) -> _Result:
    if len(d) < lengths.start:
        return _bad("too_short")
    if len(d) >= lengths.stop:
        return _bad("too_long")
    return _chinese(cls, d, e164=e164)


def _fixed(d: str, pn: _Oracle) -> _Result:
    """A fixed-line number in domestic form: '0' + area code + subscriber number."""
    # 010 and 02x carry two-digit codes, everything else three; 01x other than 010 is unused.
    code_len = 2 if d[1:2] in ("1", "2") else 3
    code = d[1 : 1 + code_len]
    if len(d) < 1 + code_len:
        return _bad("too_short")
    if code not in AREA_CODES:
        return _bad("unknown_area_code")
    subscriber_len = len(d) - 1 - code_len
    if subscriber_len < _SUBSCRIBER_LENGTHS.start:
        return _bad("too_short")
    if subscriber_len >= _SUBSCRIBER_LENGTHS.stop:
        return _bad("too_long")
    nsn = d[1:]  # the area code's first digit is never 0: already phonenumbers' form
    if not _valid_fixed(pn, nsn):
        return _bad(_fixed_length_reason(d, pn))
    return _Result(
        NumberClass.FIXED,
        d,
        e164=f"+86{d[1:]}",  # the trunk 0 is not part of the international form
        country_code=_CN,
        area_code="0" + code,
        region=pn.region(nsn),
    )


def _fixed_length_reason(d: str, pn: _Oracle) -> str:
    """Why a fixed number of 7–8 subscriber digits is invalid.

    Areas use either 7- or 8-digit numbers (Guangzhou 8, Yining 7): when one digit more or
    less would make a valid number, the length is what is wrong; otherwise the table
    assigns no such subscriber range there (a reserved block such as 010-1000…).
    """
    if _valid_fixed(pn, d[1:-1]):
        return "too_long"
    for digit in "0123456789":
        if _valid_fixed(pn, d[1:] + digit):
            return "too_short"
    return "reserved_range"


def _mobile(d: str, pn: _Oracle) -> _Result:
    if len(d) < _MOBILE_LENGTH:
        return _bad("too_short")
    if len(d) > _MOBILE_LENGTH:
        return _bad("too_long")
    if pn.number_type(d) not in _MOBILE_TYPES:
        return _bad("reserved_range")  # e.g. 140…, 146…: segments not assigned to mobiles
    result = _chinese(NumberClass.MOBILE, d)
    result.region = pn.region(d)
    result.carrier = pn.operator(d)
    return result


def _domestic(d: str, pn: _Oracle) -> _Result:
    """Classify a non-empty digit string in Chinese domestic form."""
    first = d[0]
    if first == "0":
        return _fixed(d, pn)
    if first == "1":
        second = d[1:2]
        if not second:
            return _bad("too_short")
        if second in "3456789":
            return _mobile(d, pn)
        if d.startswith("106"):
            # SMS ports have no E.164 form: '+86 106…' of 9–10 digits is a Beijing number.
            return _by_length(NumberClass.SMS_CODE, d, range(5, _SMS_MAX_LENGTH + 1), e164=False)
        if d in _SPECIAL_SERVICE:
            return _chinese(NumberClass.SHORT_CODE, d)
        if second == "0" and len(d) > _SHORT_CODE_LENGTH and _fixed("0" + d, pn).valid:
            return _bad("missing_trunk_prefix")  # a Beijing number without its 0
        if second == "1" or len(d) == _MOBILE_LENGTH:
            # 11xxx is no short-code range; 11 digits under 10/11/12 look like a mobile
            # with a prefix that no mobile has.
            return _bad("bad_prefix")
        return _by_length(
            NumberClass.SHORT_CODE, d, range(_SHORT_CODE_LENGTH, _SHORT_CODE_LENGTH + 1)
        )
    if d.startswith(("95", "96")):
        return _by_length(NumberClass.SERVICE, d, _SERVICE_LENGTHS)
    if d.startswith(("400", "800")):
        return _by_length(
            NumberClass.TOLL_FREE, d, range(_TOLL_FREE_LENGTH, _TOLL_FREE_LENGTH + 1)
        )
    # A fixed number that lost its trunk 0 ('2088886666') is not accepted: presenting it is
    # itself non-standard, and without the 0 it collides with other classes (10… Beijing vs
    # 10xxx short codes). The reason says what it most likely was.
    if _fixed("0" + d, pn).valid:
        return _bad("missing_trunk_prefix")
    return _bad("bad_prefix")


def _national_significant(nsn: str, pn: _Oracle) -> _Result:
    """Classify the digits after a +86 / 0086 / 86 country prefix."""
    if not nsn:
        return _bad("too_short")
    if nsn[0] == "0":
        return _bad("trunk_prefix_after_country_code")  # '+86 020…' should be '+86 20…'
    if nsn.startswith("10") and len(nsn) >= 8:
        # Beijing (10 + 8 digits) unless it only makes sense as an SMS port.
        beijing = _fixed("0" + nsn, pn)
        if beijing.valid or not nsn.startswith("106"):
            return beijing
        return _domestic(nsn, pn)
    non_geographic = (
        nsn[0] == "1"
        or (nsn.startswith(("95", "96")) and len(nsn) < _SERVICE_LENGTHS.stop)
        or nsn.startswith(("400", "800"))
    )
    return _domestic(nsn if non_geographic else "0" + nsn, pn)


def _international(digits: str, pn: _Oracle) -> _Result:
    """Classify country code + national number (after '+' or '00')."""
    if digits.startswith("86"):
        return _national_significant(digits[2:], pn)
    if not digits or digits[0] == "0":
        return _bad("unknown_country_code")
    try:
        n = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return _bad("unknown_country_code")
        return _bad("too_short" if len(digits) < 4 else "too_long")
    if phonenumbers.region_code_for_country_code(n.country_code or 0) == "ZZ":
        return _bad("unknown_country_code")
    if not phonenumbers.is_valid_number(n):
        possible = phonenumbers.is_possible_number_with_reason(n)
        if possible == phonenumbers.ValidationResult.TOO_SHORT:
            return _bad("too_short")
        if possible in (
            phonenumbers.ValidationResult.TOO_LONG,
            phonenumbers.ValidationResult.INVALID_LENGTH,
        ):
            return _bad("too_long" if len(str(n.national_number)) > 6 else "too_short")
        return _bad("invalid_international")
    return _Result(
        NumberClass.INTERNATIONAL,
        e164=phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164),
        country_code=n.country_code,
        region=_describe_country(n),
    )


def _classify_digits(digits: str, plus: bool, pn: _Oracle) -> tuple[_Result, bool]:
    """Classify digits; also say whether they carried an international prefix."""
    if plus:
        return _international(digits, pn), True
    if digits.startswith("00"):
        return _international(digits[2:], pn), True
    if digits.startswith("86"):
        # No domestic number starts with 86 (800 toll-free numbers start with 80), so a bare
        # 86 is a country code with its '+' lost.
        return _national_significant(digits[2:], pn), True
    return _domestic(digits, pn), False


def _number(raw: str, digits: str, result: _Result, presented_international: bool) -> Number:
    return Number(
        raw=raw,
        digits=digits,
        cls=result.cls,
        national=result.national,
        e164=result.e164,
        country_code=result.country_code,
        area_code=result.area_code,
        region=result.region,
        presented_international=presented_international,
        malformed_reason=result.reason,
        carrier=result.carrier,
    )


def classify_uncached(raw: str) -> Number:
    """:func:`classify` without the cache, for bulk work such as compiling number sets
    (100k policy entries must not evict the caller IDs of live calls)."""
    if len(raw) > MAX_RAW_LENGTH:
        return _number(raw, "", _bad("too_long"), False)
    return _classify(raw, _ORACLE)


def classify_reference(raw: str) -> Number:
    """:func:`classify_uncached` asking phonenumbers' public API, not the tables: what
    the tests compare the fast path with."""
    if len(raw) > MAX_RAW_LENGTH:
        return _number(raw, "", _bad("too_long"), False)
    return _classify(raw, _REFERENCE)


def _classify(raw: str, pn: _Oracle) -> Number:
    body = raw[1:] if raw[:1] == "+" else raw
    if body.isascii() and body.isdigit():
        # Bare digits, as FreeSWITCH hands most numbers over: folding, stripping and
        # user_part() would each give them back unchanged.
        stripped = raw
    else:
        text = normalise_text(raw).strip()
        if not text:
            return _number(raw, "", _Result(NumberClass.ANONYMOUS), False)
        part = user_part(text)
        if not part or part.lower() in _ANONYMOUS_TOKENS:
            # A header without a user part ('<sip:invalid.unknown.domain>') presents no
            # number, exactly like an absent one; user_part() returning '' must classify
            # as '' does.
            return _number(raw, part, _Result(NumberClass.ANONYMOUS), False)
        stripped = strip_separators(part)
    plus = stripped.startswith("+")
    digits = stripped[1:] if plus else stripped
    if not digits:
        # Only separators: '+', '--', '()'.
        return _number(raw, digits, _bad("empty"), plus)
    # str.isdigit() also accepts other scripts' digits; only ASCII ones are dialable.
    if not (digits.isascii() and digits.isdigit()):
        return _number(raw, digits, _bad("non_digit"), plus)
    if digits.count("0") == len(digits):
        # '0000000000' is FreeSWITCH's default caller ID: a placeholder for "no number".
        return _number(raw, digits, _Result(NumberClass.ANONYMOUS), False)
    result, international = _classify_digits(digits, plus, pn)
    return _number(raw, digits, result, international)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _classify_cached(raw: str) -> Number:
    return _classify(raw, _ORACLE)


def classify(raw: str) -> Number:
    """Classify a presented number (bare, SIP/tel URI or header value). Pure; never raises."""
    if len(raw) > MAX_RAW_LENGTH:
        return _number(raw, "", _bad("too_long"), False)
    return _classify_cached(raw)


#: Cache statistics and reset, for tests and the benchmark.
cache_info = _classify_cached.cache_info
cache_clear = _classify_cached.cache_clear

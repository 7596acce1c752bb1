"""Classifying a presented number by the China numbering plan (see the package docstring)."""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType, carrier, geocoder

from fs_plugin.numbering._model import Number, NumberClass
from fs_plugin.numbering._uri import normalise_text, strip_separators, user_part

__all__ = ["AREA_CODES", "MAX_RAW_LENGTH", "classify", "classify_uncached"]

_CN = 86

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


def _probe_area_codes() -> frozenset[str]:
    """Area codes (without the trunk 0) that phonenumbers' CN fixed-line table accepts.

    Derived from the validity table rather than the geocoder's prefixes: the geocoder
    describes whole blocks ('033x') that hold no assigned area code. A code exists when
    some 7- or 8-digit subscriber number under it is a valid fixed line.
    """
    candidates = ["10", *(f"2{i}" for i in range(10)), *(str(i) for i in range(300, 1000))]
    found: set[str] = set()
    for code in candidates:
        for first in "23456789":
            if any(
                _valid_fixed(PhoneNumber(country_code=_CN, national_number=int(code + first + t)))
                for t in ("234567", "2345678")
            ):
                found.add(code)
                break
    return frozenset(found)


# number_type() is UNKNOWN for a number that matches none of the region's tables, so it
# doubles as the validity check; calling is_valid_number() too would match every table twice.
def _valid_fixed(n: PhoneNumber) -> bool:
    return phonenumbers.number_type(n) in _FIXED_TYPES


#: Chinese area codes without the trunk 0 ('10', '20', '898', '999'), from phonenumbers.
AREA_CODES: frozenset[str] = _probe_area_codes()


def _describe(n: PhoneNumber) -> str | None:
    """Attribution of a number already known valid (Chinese, English as the fallback)."""
    return (
        geocoder.description_for_valid_number(n, "zh")
        or geocoder.description_for_valid_number(n, "en")
        or None
    )


def _describe_country(n: PhoneNumber) -> str | None:
    # description_for_number falls back to the country name for non-geographic numbers.
    return (
        geocoder.description_for_number(n, "zh")
        or geocoder.description_for_number(n, "en")
        or None
    )


def _operator(n: PhoneNumber) -> str | None:
    return carrier.name_for_valid_number(n, "zh") or carrier.name_for_valid_number(n, "en") or None


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


def _fixed(d: str) -> _Result:
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
    n = PhoneNumber(country_code=_CN, national_number=int(d[1:]))
    if not _valid_fixed(n):
        return _bad(_fixed_length_reason(d))
    return _Result(
        NumberClass.FIXED,
        d,
        e164=f"+86{d[1:]}",  # the trunk 0 is not part of the international form
        country_code=_CN,
        area_code="0" + code,
        region=_describe(n),
    )


def _fixed_length_reason(d: str) -> str:
    """Why a fixed number of 7–8 subscriber digits is invalid.

    Areas use either 7- or 8-digit numbers (Guangzhou 8, Yining 7): when one digit more or
    less would make a valid number, the length is what is wrong; otherwise the table
    assigns no such subscriber range there (a reserved block such as 010-1000…).
    """
    shorter = PhoneNumber(country_code=_CN, national_number=int(d[1:-1]))
    if _valid_fixed(shorter):
        return "too_long"
    for digit in "0123456789":
        if _valid_fixed(PhoneNumber(country_code=_CN, national_number=int(d[1:] + digit))):
            return "too_short"
    return "reserved_range"


def _mobile(d: str) -> _Result:
    if len(d) < _MOBILE_LENGTH:
        return _bad("too_short")
    if len(d) > _MOBILE_LENGTH:
        return _bad("too_long")
    n = PhoneNumber(country_code=_CN, national_number=int(d))
    if phonenumbers.number_type(n) not in _MOBILE_TYPES:
        return _bad("reserved_range")  # e.g. 140…, 146…: segments not assigned to mobiles
    result = _chinese(NumberClass.MOBILE, d)
    result.region = _describe(n)
    result.carrier = _operator(n)
    return result


def _domestic(d: str) -> _Result:
    """Classify a non-empty digit string in Chinese domestic form."""
    first = d[0]
    if first == "0":
        return _fixed(d)
    if first == "1":
        second = d[1:2]
        if not second:
            return _bad("too_short")
        if second in "3456789":
            return _mobile(d)
        if d.startswith("106"):
            # SMS ports have no E.164 form: '+86 106…' of 9–10 digits is a Beijing number.
            return _by_length(NumberClass.SMS_CODE, d, range(5, _SMS_MAX_LENGTH + 1), e164=False)
        if d in _SPECIAL_SERVICE:
            return _chinese(NumberClass.SHORT_CODE, d)
        if second == "0" and len(d) > _SHORT_CODE_LENGTH and _fixed("0" + d).valid:
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
    if _fixed("0" + d).valid:
        return _bad("missing_trunk_prefix")
    return _bad("bad_prefix")


def _national_significant(nsn: str) -> _Result:
    """Classify the digits after a +86 / 0086 / 86 country prefix."""
    if not nsn:
        return _bad("too_short")
    if nsn[0] == "0":
        return _bad("trunk_prefix_after_country_code")  # '+86 020…' should be '+86 20…'
    if nsn.startswith("10") and len(nsn) >= 8:
        # Beijing (10 + 8 digits) unless it only makes sense as an SMS port.
        beijing = _fixed("0" + nsn)
        if beijing.valid or not nsn.startswith("106"):
            return beijing
        return _domestic(nsn)
    non_geographic = (
        nsn[0] == "1"
        or (nsn.startswith(("95", "96")) and len(nsn) < _SERVICE_LENGTHS.stop)
        or nsn.startswith(("400", "800"))
    )
    return _domestic(nsn if non_geographic else "0" + nsn)


def _international(digits: str) -> _Result:
    """Classify country code + national number (after '+' or '00')."""
    if digits.startswith("86"):
        return _national_significant(digits[2:])
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


def _classify_digits(digits: str, plus: bool) -> tuple[_Result, bool]:
    """Classify digits; also say whether they carried an international prefix."""
    if plus:
        return _international(digits), True
    if digits.startswith("00"):
        return _international(digits[2:]), True
    if digits.startswith("86"):
        # No domestic number starts with 86 (800 toll-free numbers start with 80), so a bare
        # 86 is a country code with its '+' lost.
        return _national_significant(digits[2:]), True
    return _domestic(digits), False


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
    return _classify(raw)


def _classify(raw: str) -> Number:
    text = normalise_text(raw).strip()
    if not text:
        return _number(raw, "", _Result(NumberClass.ANONYMOUS), False)
    part = user_part(text)
    if not part or part.lower() in _ANONYMOUS_TOKENS:
        # A header without a user part ('<sip:invalid.unknown.domain>') presents no number,
        # exactly like an absent one; user_part() returning '' must classify as '' does.
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
    result, international = _classify_digits(digits, plus)
    return _number(raw, digits, result, international)


_classify_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_classify)


def classify(raw: str) -> Number:
    """Classify a presented number (bare, SIP/tel URI or header value). Pure; never raises."""
    if len(raw) > MAX_RAW_LENGTH:
        return _number(raw, "", _bad("too_long"), False)
    return _classify_cached(raw)


#: Cache statistics and reset, for tests and the benchmark.
cache_info = _classify_cached.cache_info
cache_clear = _classify_cached.cache_clear

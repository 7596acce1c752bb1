"""The value types of the numbering package: a number's class and a classified number."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CHINESE_CLASSES", "Number", "NumberClass"]


class NumberClass(StrEnum):
    """What kind of number a presented caller ID (or callee) is, by the China numbering plan."""

    MOBILE = "mobile"  # 1[3-9] + 9 digits
    FIXED = "fixed"  # 0 + real area code + 7–8 digit subscriber number
    SERVICE = "service"  # 95xxx, 96xxx (5–8 digits)
    TOLL_FREE = "toll_free"  # 400 / 800 + 7 digits
    SHORT_CODE = "short_code"  # 10xxx, 12xxx short codes, 110/112/114/119/120/122
    SMS_CODE = "sms_code"  # 106… SMS ports: not valid as a voice caller ID
    INTERNATIONAL = "international"  # a valid non-Chinese E.164 number
    ANONYMOUS = "anonymous"  # empty, "anonymous", "unknown", "restricted", "0000000000"…
    MALFORMED = "malformed"  # anything else (不规范主叫号码)


#: Classes whose numbers belong to the Chinese (+86) numbering plan.
CHINESE_CLASSES: frozenset[NumberClass] = frozenset(
    {
        NumberClass.MOBILE,
        NumberClass.FIXED,
        NumberClass.SERVICE,
        NumberClass.TOLL_FREE,
        NumberClass.SHORT_CODE,
        NumberClass.SMS_CODE,
    }
)

# Classes that can never stand as a voice caller ID: an SMS port cannot place a voice call,
# and "no number" is not a number.
_NOT_CALLER_ID: frozenset[NumberClass] = frozenset(
    {NumberClass.MALFORMED, NumberClass.SMS_CODE, NumberClass.ANONYMOUS}
)


@dataclass(frozen=True, slots=True)
class Number:
    """One presented number, classified. Built by :func:`fs_plugin.numbering.classify`.

    ``raw`` is kept exactly as presented for the journal; ``national`` is the form policies
    are written in and ``e164`` the form exchanged with other systems.
    """

    raw: str
    #: The user part extracted from ``raw``, visual separators and a leading '+' removed.
    #: May hold non-digits when the number is malformed.
    digits: str
    cls: NumberClass
    #: Chinese domestic form ('13900001111', '02088886666', '95555', '4008123123', '10086');
    #: None for international, anonymous and malformed numbers.
    national: str | None
    #: '+8613900001111', '+862088886666', '+14155550100'; None when there is no E.164 form
    #: (anonymous, malformed, and SMS ports, which are not reachable as E.164 numbers).
    e164: str | None
    country_code: int | None
    #: Fixed lines only, with the trunk 0: '020', '0898'.
    area_code: str | None
    #: Attribution (province/city in Chinese, English where no Chinese name is known);
    #: for mobiles the original segment's attribution (number portability is not visible here).
    region: str | None
    #: The raw form carried '+', '00' or a bare '86' country prefix.
    presented_international: bool
    #: Machine-readable reason when ``cls`` is MALFORMED (see the package docstring).
    malformed_reason: str | None = None
    #: Mobile segment's original operator ('中国移动'); None when unknown or not a mobile.
    carrier: str | None = None

    @property
    def is_chinese(self) -> bool:
        """The number belongs to the Chinese (+86) numbering plan."""
        return self.cls in CHINESE_CLASSES

    @property
    def is_valid_caller_id(self) -> bool:
        """The number may stand as a voice caller ID (not malformed, anonymous or an SMS port)."""
        return self.cls not in _NOT_CALLER_ID

    @property
    def key(self) -> str | None:
        """The comparison key used by number sets and counters.

        The national form for Chinese numbers, E.164 ('+…') for international ones, so the
        two never collide; None for anonymous and malformed numbers.
        """
        if self.national is not None:
            return self.national
        if self.cls is NumberClass.INTERNATIONAL:
            return self.e164
        return None

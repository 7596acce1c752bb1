"""Caller-ID normalisation and classification by the China numbering plan.

Pure code (no I/O): :func:`classify` turns what a switch presents into a :class:`Number`,
:func:`user_part` pulls the user part out of SIP/tel URIs and header values, and
:class:`NumberSet` / :func:`parse_range` hold a trunk's allowed caller IDs.

Classes and the decisions behind them (DESIGN.md "Caller-ID classes"):

* MOBILE ``1[3-9]`` + 9 digits, and valid as a mobile in phonenumbers' CN table: an
  unassigned segment (140…, 146…) is MALFORMED ``reserved_range``; ``10/11/12`` + 9 digits
  is ``bad_prefix``.
* FIXED ``0`` + area code + 7–8 digit subscriber number. ``010`` and ``02x`` carry two-digit
  codes, all others three. The set of area codes is probed once from phonenumbers' fixed-line
  validity table (:data:`AREA_CODES`), not from the geocoder, whose prefixes cover unassigned
  blocks. A code outside it is ``unknown_area_code``; a right-length subscriber number that
  the table does not accept (leading 0/1, 7 digits where the area uses 8) is
  ``reserved_range``. Note: 0999 is a real code (Yining/Ili, Xinjiang) and so FIXED.
* A fixed number without its trunk 0 (``2088886666``) is MALFORMED ``missing_trunk_prefix``
  even when adding the 0 would make it valid: presenting it is itself non-standard and,
  without the 0, ``10…`` Beijing numbers collide with short codes.
* SERVICE ``95``/``96`` + 3–6 digits (5–8 in all); TOLL_FREE ``400``/``800`` + 7 digits;
  SHORT_CODE ``10xxx``/``12xxx`` (5 digits) and the special numbers 110, 112, 114, 119, 120,
  122; SMS_CODE ``106…`` of 5–20 digits, which has no E.164 form (``e164`` is None) because
  SMS ports are not reachable from outside and ``+86 106…`` of 9–10 digits is a Beijing
  number. These have no phonenumbers table, so our own rules apply.
* International forms: ``+``, ``00`` or a bare ``86`` (no domestic number starts with 86)
  prefix. ``+86``/``0086``/``86`` are followed by the national significant number, without
  the trunk 0 (``+86 020…`` is ``trunk_prefix_after_country_code``). Other country codes
  must make a number phonenumbers holds valid: INTERNATIONAL, else ``unknown_country_code``,
  ``too_short``/``too_long`` or ``invalid_international``. Hong Kong, Macao and Taiwan
  (+852, +853, +886) are INTERNATIONAL: they are outside the +86 plan.
* ANONYMOUS: empty or blank (also once separators are removed: '--'), a URI or header
  without a user part ('<sip:host>'), the tokens anonymous/unknown/restricted/private/
  unavailable/withheld/_undef_ (any case, bare or as a URI user part), and all-zero digit
  strings (FreeSWITCH's default ``0000000000``). What :func:`user_part` finds empty
  classifies as ANONYMOUS, so ``classify(user_part(x))`` and ``classify(x)`` agree.
* MALFORMED reasons: ``empty`` (a '+' and no digits),
  ``non_digit``, ``too_short``, ``too_long``, ``unknown_area_code``, ``reserved_range``,
  ``bad_prefix``, ``missing_trunk_prefix``, ``trunk_prefix_after_country_code``,
  ``unknown_country_code``, ``invalid_international``.

Visual separators ('-', '.', ' ', '(', ')', tab, no-break space) and full-width digits and
separators are removed before classifying, whatever the form.
"""

from __future__ import annotations

from fs_plugin.numbering._classify import AREA_CODES, MAX_RAW_LENGTH, classify
from fs_plugin.numbering._model import CHINESE_CLASSES, Number, NumberClass
from fs_plugin.numbering._ranges import NumberRange, NumberSet, parse_range
from fs_plugin.numbering._uri import first_entry, user_part

__all__ = [
    "AREA_CODES",
    "CHINESE_CLASSES",
    "MAX_RAW_LENGTH",
    "Number",
    "NumberClass",
    "NumberRange",
    "NumberSet",
    "classify",
    "first_entry",
    "parse_range",
    "user_part",
]

"""Extracting the user part of what FreeSWITCH and SIP hand us.

Values come as bare user parts (FreeSWITCH already reduced ``variable_sip_P-Asserted-Identity``
to one), as SIP/SIPS/tel URIs, or as whole header values with a display name and header
parameters (Diversion). We only look for the user part: everything else in the header is
ignored, never interpreted.
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["normalise_text", "strip_separators", "user_part"]

# Visual separators that RFC 3966 allows in a telephone-subscriber, plus the spaces and
# brackets people type ('(020) 8888-6666'). Full-width forms are folded to these first.
_SEPARATORS = "-. ()\t\u00a0"
_STRIP = str.maketrans(dict.fromkeys(_SEPARATORS, None))

# Full-width digits, '+' and separators as typed with a Chinese input method. A targeted
# table rather than NFKC: NFKC would also turn '①' or '²' into digits, which no switch sends.
_FULLWIDTH: dict[int, str] = {0xFF10 + i: str(i) for i in range(10)}
_FULLWIDTH.update(
    {
        0xFF0B: "+",  # ＋
        0xFF0D: "-",  # －
        0xFF08: "(",  # （
        0xFF09: ")",  # ）
        0xFF0E: ".",  # ．
        0x3000: " ",  # ideographic space
    }
)
_FOLD = str.maketrans(_FULLWIDTH)

_PHONE_CHARS = frozenset("0123456789+" + _SEPARATORS)

# DESIGN.md: a fixed line's local number has 7–8 digits; only such a number needs the area
# that a phone-context supplies.
_LOCAL_SUBSCRIBER_LENGTHS = (7, 8)


def normalise_text(value: str) -> str:
    """Fold full-width digits and separators to ASCII."""
    return value.translate(_FOLD)


def strip_separators(value: str) -> str:
    """Remove visual separators ('-', '.', ' ', '(', ')')."""
    return value.translate(_STRIP)


def _is_phone_like(value: str) -> bool:
    return bool(value) and all(c in _PHONE_CHARS for c in value)


def _skip_quoted(text: str, start: int) -> int:
    """Index just past the quoted string opening at ``start`` (backslash escapes honoured)."""
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return len(text)


def first_entry(value: str) -> str:
    """The first entry of a header value listing several (``a, b``): the comma that ends
    it is outside quoted display names and ``<…>``, since ``"Zhang, San" <sip:…>`` is
    one entry."""
    i, depth = 0, 0
    while i < len(value):
        c = value[i]
        if c == '"':
            i = _skip_quoted(value, i)
            continue
        if c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
        elif c == "," and not depth:
            return value[:i]
        i += 1
    return value


def _uri_of(value: str) -> str:
    """The URI of a name-addr ('"Name" <uri>;params') or the value itself (addr-spec)."""
    start = _skip_quoted(value, 0) if value.startswith('"') else 0
    lt = value.find("<", start)
    if lt < 0:
        # A display name without '<uri>' carries no number.
        return "" if start else value
    gt = value.find(">", lt + 1)
    return value[lt + 1 : gt if gt >= 0 else len(value)]


def _subscriber(number: str, params: list[str], phone: bool) -> str:
    """Normalise a telephone-subscriber: separators out, a global phone-context prepended
    where the number needs it."""
    number = number.strip()
    if not (phone or _is_phone_like(number)):
        return number
    number = strip_separators(number)
    if number and not number.startswith("+"):
        # RFC 3966: a local number is qualified by its phone-context; when the context is a
        # global number prefix ('+86-20') the number is that prefix followed by the digits.
        for param in params:
            name, _, context = param.partition("=")
            if name.strip().lower() == "phone-context":
                context = strip_separators(unquote(context).strip())
                if context.startswith("+") and context[1:].isdigit():
                    if context.startswith("+86") and _complete_in_china(number):
                        return number
                    return context + number
    return number


def _complete_in_china(number: str) -> bool:
    """A number dialled the same from anywhere in China, so a +86 context adds nothing.

    RFC 3966 (5.1.5) warns that prepending the context's digits need not give the number.
    In China only a 7–8 digit local subscriber number needs its area: a number starting
    with the trunk prefix 0 (or the international prefix 00) is already complete, and so
    are mobiles (11 digits), short codes, 95/96 and 400/800 numbers (other lengths).
    Prepended, '02088886666' in context '+86' would read as '+86 020…' (malformed) and
    '13900001111' in context '+86-20' as a too-long Guangzhou number.
    """
    return number.isascii() and number.isdigit() and (
        number[0] == "0" or len(number) not in _LOCAL_SUBSCRIBER_LENGTHS
    )


# A user part holding these (or a scheme-like "sip:") is the debris of a broken header, not
# a user part; refusing it
# also makes user_part idempotent, so callers may apply it before classify() does.
_NOT_IN_USER = frozenset('<>"@:')


def user_part(value: str) -> str:
    """The user part of a caller/callee value, or '' when it carries none.

    >>> user_part('"Name" <sip:+8613900001111@host;user=phone>;tag=1')
    '+8613900001111'
    """
    body = value[1:] if value[:1] == "+" else value
    if body.isascii() and body.isdigit():
        # Bare digits (how FreeSWITCH hands most numbers over) are their own user part.
        return value
    part = _user_part(value)
    return "" if _NOT_IN_USER.intersection(part) else part


def _user_part(value: str) -> str:
    text = normalise_text(value).strip()
    if not text:
        return ""
    uri = _uri_of(text).strip()
    scheme, colon, rest = uri.partition(":")
    scheme = scheme.lower()
    if colon and scheme == "tel":
        number, *params = rest.split(";")
        return _subscriber(unquote(number), params, phone=True)
    if colon and scheme in ("sip", "sips"):
        at = rest.find("@")
        if at < 0:
            return ""  # 'sip:host' has no user part
        uri_params = rest[at + 1 :].lower().split(";")[1:]
        phone = "user=phone" in (p.strip() for p in uri_params)
        userinfo = rest[:at].split(":", 1)[0]  # drop a (deprecated) password
        number, *params = userinfo.split(";")
        return _subscriber(unquote(number), params, phone=phone)
    # A bare user part, or 'user@host' as in FreeSWITCH's sip_from_uri.
    at = uri.find("@")
    if at >= 0:
        uri = uri[:at]
    return _subscriber(uri, [], phone=False)

"""URL encoding exactly as FreeSWITCH's ``switch_url_encode`` does it, and its inverse.

FreeSWITCH encodes plain-event and channel-data header values with these rules (facts
read from switch_utils.c/.h and confirmed by the captures):

- every byte below 0x20 or above 0x7E (so every byte of a multi-byte UTF-8 character)
  and every byte of ``SWITCH_URL_UNSAFE`` becomes ``%XX`` with upper-case hex;
- every other printable ASCII byte stays (``/``, ``,``, ``(``, ``!``, ``$`` ...);
- a ``%`` that already starts an upper-case ``%XX`` is *not* encoded again, so the
  value ``hello%20world`` goes on the wire unchanged and decodes to ``hello world``
  (seen in ``out_answer_playback_setvar_transfer``). The encoding is therefore not
  injective; decoding is the best a reader can do.
"""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

__all__ = ["fs_url_decode", "fs_url_decode_bytes", "fs_url_encode"]

_UNSAFE = frozenset(b'\r\n #%&+:;<=>?@[\\]^`{|}"')
_UPPER_HEX = frozenset(b"0123456789ABCDEF")

# One lookup per byte: the encoded form of every byte value when it is not the start of
# an already-encoded ``%XX``.
_TABLE: tuple[bytes, ...] = tuple(
    (b"%%%02X" % b) if (b < 0x20 or b > 0x7E or b in _UNSAFE) else bytes([b]) for b in range(256)
)


def fs_url_encode(value: str) -> str:
    """Encode ``value`` the way FreeSWITCH serialises an event header value."""
    raw = value.encode("utf-8", errors="surrogateescape")
    out: list[bytes] = []
    n = len(raw)
    i = 0
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and raw[i + 1] in _UPPER_HEX and raw[i + 2] in _UPPER_HEX:
            out.append(b"%")
        else:
            out.append(_TABLE[b])
        i += 1
    return b"".join(out).decode("ascii")


def fs_url_decode(value: str) -> str:
    """Decode a URL-encoded header value; invalid UTF-8 becomes U+FFFD, never an error."""
    if "%" not in value:
        return value
    return unquote(value, encoding="utf-8", errors="replace")


def fs_url_decode_bytes(value: bytes) -> str:
    """Like :func:`fs_url_decode` for raw wire bytes."""
    if b"%" not in value:
        return value.decode("utf-8", errors="replace")
    return unquote_to_bytes(value).decode("utf-8", errors="replace")

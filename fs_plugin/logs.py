"""structlog set-up and the masking of phone numbers in logs.

NOC logs leave the switch (log shippers, tickets), so subscriber numbers are
masked by default: ``13900001111`` → ``139****1111``. Operators who need clear
numbers (a lab) turn masking off in the configuration.

Numbers are masked in the fields that hold one (:data:`NUMBER_FIELDS`, strings or lists
of them) and, by pattern, inside the free text that may quote one (:data:`TEXT_FIELDS`:
an error message, a rule's reason, a traceback). Credentials are never logged, masking
or not: the password of a ``scheme://user:password@host`` URL and ``password=`` /
``token=`` values in any string field are replaced with ``***``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog

__all__ = ["NUMBER_FIELDS", "TEXT_FIELDS", "configure_logging", "mask_number", "mask_text",
           "redact_secrets"]

#: Log fields that hold phone numbers (or lists of them) and are masked by the processor.
NUMBER_FIELDS = frozenset({
    "caller", "callee", "from_user", "pai", "diversion", "number", "numbers", "destination",
    "to", "msisdn", "reporter", "reported_number", "caller_id", "from_norm", "pai_norm",
    "diversion_norm",
})
#: Free-text log fields that may quote a number (a message, a header as received):
#: masked by pattern, so a SIP URI keeps its host and a message its words.
TEXT_FIELDS = frozenset({
    "reason", "error", "detail", "exception", "reply", "payload", "pattern", "call_id",
    "sip_call_id", "label", "text", "message", "key", "keys", "from_raw", "pai_raw",
    "diversion_raw", "caller_name", "header", "headers",
})

_DIGITS = re.compile(r"\d")
#: A number-looking run in free text (as the NOC page masks them, ``fs_plugin.web.bus``).
_LONG_DIGITS = re.compile(r"\+?\d[\d\- ]{6,}\d")
#: Dates are no numbers: ``2024-05-01`` (and ``2024-05-01 12`` of a timestamp) stay.
_DATE = re.compile(r"\d{4}-\d\d-\d\d(?: \d\d)?")
#: ``scheme://user:password@`` (the password up to the last ``@`` before a space) and
#: ``password=…`` / ``token=…`` (libpq key/value DSNs, query strings).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):\S*@")
_KV_SECRET = re.compile(r"(?i)\b(password|passwd|pwd|token|secret)=([^\s&;'\"]+)")


def mask_number(value: str) -> str:
    """Keep the first 3 and last 4 digits of a number long enough to identify a subscriber."""
    digits = sum(1 for _ in _DIGITS.finditer(value))
    if digits < 8:
        return value
    head, tail = 3, 4
    out = []
    seen = 0
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= head or seen > digits - tail else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run if _DATE.fullmatch(run) else mask_number(run)


def mask_text(text: str) -> str:
    """Mask every number-looking run in free text (``From 02155550123 is …``)."""
    return _LONG_DIGITS.sub(_mask_run, text)


def redact_secrets(text: str) -> str:
    """Replace URL passwords and ``password=``/``token=`` values with ``***``."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1:***@", text)
    if "=" in text:
        text = _KV_SECRET.sub(r"\1=***", text)
    return text


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v, mask) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, mask) for k, v in value.items()}
    return value


def _mask_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in NUMBER_FIELDS.intersection(event_dict):
        event_dict[key] = _masked(event_dict[key], mask_number)
    for key in TEXT_FIELDS.intersection(event_dict):
        event_dict[key] = _masked(event_dict[key], mask_text)
    return event_dict


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Every line passes here: a substring test per string field, a regex only on a hit.
    for key, value in event_dict.items():
        if isinstance(value, str):
            if ("://" in value and "@" in value) or "=" in value:
                event_dict[key] = redact_secrets(value)
        elif isinstance(value, list | tuple | dict):
            event_dict[key] = _masked(value, redact_secrets)
    return event_dict


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(*, json: bool = True, level: str = "info", mask: bool = True) -> None:
    """JSON lines on stderr for services; a console renderer for humans at a terminal."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become text first, so the masking and redaction below see them too.
    processors.append(structlog.processors.format_exc_info)
    if mask:
        processors.append(_mask_processor)
    processors.append(_redact_processor)
    processors.append(
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # Resolved at each logger's creation, not now: whoever replaces sys.stderr later
        # (a supervisor, a test harness) gets the lines instead of a closed stream.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )

"""structlog set-up and the masking of phone numbers in logs.

NOC logs leave the switch (log shippers, tickets), so subscriber numbers are
masked by default: ``13900001111`` → ``139****1111``. Operators who need clear
numbers (a lab) turn masking off in the configuration.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["NUMBER_FIELDS", "configure_logging", "mask_number"]

#: Log fields that hold phone numbers and are masked by the processor.
NUMBER_FIELDS = frozenset({"caller", "callee", "from_user", "pai", "diversion", "number"})

_DIGITS = re.compile(r"\d")


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


def _mask_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in NUMBER_FIELDS.intersection(event_dict):
        value = event_dict[key]
        if isinstance(value, str):
            event_dict[key] = mask_number(value)
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
    if mask:
        processors.append(_mask_processor)
    processors.append(structlog.processors.format_exc_info)
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

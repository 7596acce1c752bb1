"""The desks' input and output: complaint tickets (12321), credit set by hand, and the
ledger's answers from PostgreSQL, as the API takes and returns them.

Kept apart from the handlers (``app.py``) so every rule about what a body may carry is
in one place and testable without a server. Every problem is an :class:`InputError`
whose ``reason`` names the field; the API answers it ``400``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Final

from fs_plugin.journal.complaints import CHANNELS, STATUSES, ComplaintIn, Ticket
from fs_plugin.numbering import classify, user_part
from fs_plugin.policy.catalogue import LabelCategory

__all__ = [
    "CREDIT_ACTIONS",
    "MAX_TEXT",
    "InputError",
    "ledger_record_json",
    "parse_advance",
    "parse_complaint",
    "parse_credit",
    "parse_ticket_id",
    "ticket_json",
]

#: Longest complaint text or answer: a hotline ticket's free text, not a document; a
#: bound keeps one request from filling the ledger.
MAX_TEXT: Final = 4000
#: Longest reason of a blacklisting or a lift (it is shown in every blocked call's trail).
MAX_REASON: Final = 500
#: How far a complaint's ``received_at`` may lie ahead of our clock (clock skew between
#: the hotline's system and ours); further is a typo that would push the due date away.
MAX_FUTURE_S: Final = 300.0
CREDIT_ACTIONS: Final = ("blacklist", "lift")

_COMPLAINT_FIELDS: Final = frozenset(
    {"reported_number", "category", "channel", "text", "reporter", "received_at", "ref"})
_ADVANCE_FIELDS: Final = frozenset({"status", "answer"})
_CREDIT_FIELDS: Final = frozenset({"action", "reason"})
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
_PHONE = re.compile(r"^[+\d][\d\- ]{0,31}$")
#: Ticket ids are PostgreSQL ``bigint``: at most 19 digits.
_TICKET_ID = re.compile(r"^[1-9]\d{0,17}$")


class InputError(Exception):
    """A request body or parameter the desk cannot accept; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _only(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    # A misspelt field must not be dropped in silence (an answer sent as "anwser").
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InputError(f"unknown field {unknown[0][:64]!r}; expected "
                         + ", ".join(sorted(allowed)))


def _text(body: Mapping[str, Any], name: str, *, limit: int, required: bool = False) -> str:
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string")
    value = value.strip()
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL: the insert would fail as a storage outage.
        raise InputError(f"{name} must not contain NUL characters")
    if required and not value:
        raise InputError(f"{name} is required")
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    return value


def parse_complaint(body: Mapping[str, Any], now: float) -> ComplaintIn:
    """A complaint as the desk posts it (``now``: epoch seconds, to refuse a receipt time
    in the future)."""
    _only(body, _COMPLAINT_FIELDS)
    number = _text(body, "reported_number", limit=40, required=True)
    if not _PHONE.match(number) or classify(user_part(number)).key is None:
        raise InputError("reported_number must be a valid phone number")
    raw_category = _text(body, "category", limit=40, required=True)
    try:
        category = LabelCategory(raw_category)
    except ValueError:
        raise InputError("category must be one of "
                         + ", ".join(c.value for c in LabelCategory)) from None
    channel = _text(body, "channel", limit=20) or "12321"
    if channel not in CHANNELS:
        raise InputError("channel must be one of " + ", ".join(CHANNELS))
    reporter = _text(body, "reporter", limit=40)
    if reporter and not _PHONE.match(reporter):
        raise InputError("reporter must be a phone number (it is stored masked)")
    received: dt.datetime | None = None
    when = _text(body, "received_at", limit=64)
    if when:
        try:
            received = dt.datetime.fromisoformat(when)
        except ValueError:
            raise InputError("received_at must be an ISO time with a zone") from None
        if received.tzinfo is None:
            raise InputError("received_at must carry a time zone")
        if received.timestamp() > now + MAX_FUTURE_S:
            raise InputError("received_at lies in the future")
        if received.timestamp() < 0:
            # Year 1 at +14:00 is year 0 in UTC, which neither Python's dates (the due
            # date is computed from it) nor PostgreSQL's hold; no hotline is that old.
            raise InputError("received_at lies before 1970")
    ref = _text(body, "ref", limit=64) or None
    if ref is not None and not _REF.match(ref):
        raise InputError("ref must be letters, digits and _.:/- (at most 64)")
    return ComplaintIn(number, category, channel, _text(body, "text", limit=MAX_TEXT),
                       reporter, received, ref)


def parse_advance(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """``{"status": ..., "answer": ...}`` → (status, answer or None)."""
    _only(body, _ADVANCE_FIELDS)
    status = _text(body, "status", limit=20, required=True)
    if status not in STATUSES[1:]:
        raise InputError("status must be one of " + ", ".join(STATUSES[1:]))
    answer = _text(body, "answer", limit=MAX_TEXT) or None
    if status == "answered" and answer is None:
        raise InputError("answer is required to answer a ticket")
    return status, answer


def parse_credit(body: Mapping[str, Any]) -> tuple[str, str]:
    """``{"action": "blacklist" | "lift", "reason": ...}`` → (action, reason)."""
    _only(body, _CREDIT_FIELDS)
    action = _text(body, "action", limit=20, required=True)
    if action not in CREDIT_ACTIONS:
        raise InputError("action must be blacklist or lift")
    # The reason is the record: a blacklisting without one cannot be reviewed or appealed.
    return action, _text(body, "reason", limit=MAX_REASON, required=True)


def parse_ticket_id(raw: str) -> int:
    if not _TICKET_ID.match(raw):
        raise InputError("ticket id must be a positive integer")
    return int(raw)


def ticket_json(ticket: Ticket, now: float) -> dict[str, Any]:
    """A ticket for the desk: the reporter is already masked (at intake, never stored in
    full); ``overdue`` says whether the answer is late."""
    out = asdict(ticket)
    out["overdue"] = ticket.status != "answered" and ticket.due_at.timestamp() < now
    return out


def ledger_record_json(row: Mapping[str, Any] | None, blacklisted: str | None,
                       today: dt.date) -> dict[str, Any] | None:
    """A customer as :meth:`Ledger.customer` gives it, shaped for the regulator: contact,
    licence with its validity today, credit history, trunks, numbers, contract."""
    if row is None:
        return None
    start, end = row.get("licence_from"), row.get("licence_until")
    valid = (start is None or start <= today) and (end is None or today <= end)
    record = {k: v for k, v in row.items()
              if k not in ("trunks", "numbers", "contract", "credit")}
    return {
        "record": record,
        "contact": {"name": row.get("contact_name") or "", "phone": row.get("contact_phone")
                    or ""},
        "licence": {"number": row.get("licence") or "", "from": start, "until": end,
                    "valid": valid},
        "blacklisted": blacklisted,
        "credit": list(row.get("credit") or ()),
        "trunks": list(row.get("trunks") or ()),
        "numbers": list(row.get("numbers") or ()),
        "contract": row.get("contract"),
    }

"""ESL-specific protocol errors: the shared error tree plus a machine-readable reason.

They subclass ``fs_plugin.errors.LocalProtocolError`` / ``RemoteProtocolError``, so a
caller that catches the shared types catches these too; code that needs to know *why*
reads ``.reason`` (a stable code) instead of the message text.
"""

from __future__ import annotations

from enum import StrEnum

from fs_plugin.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["LocalEslError", "Reason", "RemoteEslError"]


class Reason(StrEnum):
    """Stable codes for every protocol error the codec raises."""

    # -- framing (what the peer sent cannot be split into frames) --
    BAD_HEADER_LINE = "bad_header_line"
    BAD_HEADER_NAME = "bad_header_name"
    BAD_CONTENT_LENGTH = "bad_content_length"
    CONFLICTING_CONTENT_LENGTH = "conflicting_content_length"
    HEADER_TOO_LARGE = "header_too_large"
    FRAME_TOO_LARGE = "frame_too_large"
    TRUNCATED_FRAME = "truncated_frame"
    # -- content (well framed, but the payload is not what its type promises) --
    BAD_EVENT_BODY = "bad_event_body"
    BAD_CHANNEL_DATA = "bad_channel_data"
    # -- state machine --
    UNEXPECTED_FRAME = "unexpected_frame"
    COMMAND_NOT_ALLOWED = "command_not_allowed"
    CONNECTION_ERRORED = "connection_errored"
    DATA_AFTER_EOF = "data_after_eof"
    # -- our own commands --
    BAD_VALUE = "bad_value"


class RemoteEslError(RemoteProtocolError):
    """FreeSWITCH (or, on the switch side, the client) broke the protocol.

    ``reason`` says what was wrong; ``state`` is the connection state's name when the
    error came from the state machine (else None).
    """

    def __init__(self, reason: Reason, detail: str, *, state: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.state = state


class LocalEslError(LocalProtocolError):
    """We were asked to send something the protocol or the current state does not allow."""

    def __init__(self, reason: Reason, detail: str, *, state: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.state = state

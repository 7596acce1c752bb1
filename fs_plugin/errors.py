"""One error tree for the whole plug-in.

Every error carries machine-readable fields so callers branch on types and
attributes, never on message text.
"""

from __future__ import annotations

__all__ = [
    "CommandFailed",
    "ConfigError",
    "FsPluginError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "StorageError",
]


class FsPluginError(Exception):
    """Root of every error the plug-in raises on purpose."""


class ProtocolError(FsPluginError):
    """The ESL (or SIP) byte stream broke its protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (garbage, oversize, bad length)."""


class CommandFailed(FsPluginError):
    """FreeSWITCH answered a command with ``-ERR``.

    ``reply`` is the text after ``-ERR`` (stripped); ``command`` is what was sent.
    """

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class ConfigError(FsPluginError):
    """Configuration or policy that cannot be used.

    ``file``, ``line`` (1-based) and ``column`` (1-based) locate the problem when
    known; ``key`` is the dotted path of the offending YAML key.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        super().__init__(self.location_text())

    def location_text(self) -> str:
        """``file:line:column: key: message`` with whatever parts are known."""
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class StorageError(FsPluginError):
    """A backing store (counters, journal) failed or is unreachable."""

"""Container health: is the controller's outbound socket listening?

Reads the kernel's socket tables instead of connecting: a test connection would look
like a call to the controller (it would send ``connect`` and wait for channel data).
Exit status 0 when a socket is in LISTEN state on the given port, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["listening"]

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}
_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def listening(port: int, tables: tuple[Path, ...] = _TABLES) -> bool:
    """True when any socket in ``tables`` listens on ``port`` (any address)."""
    want = f"{port:04X}"
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].rsplit(":", 1)[-1] == want and fields[3] == _LISTEN:
                return True
    return False


if __name__ == "__main__":
    sys.exit(0 if listening(int(sys.argv[1]) if len(sys.argv) > 1 else 8084) else 1)

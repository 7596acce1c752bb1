"""The journal's local spool: an append-only JSON-lines file for records PostgreSQL
could not take yet (unreachable, or the in-memory queue was full).

Properties the journal relies on:

- Every write is one ``os.write`` of whole lines on an ``O_APPEND`` descriptor, so
  lines from the writer task and from the call path never interleave.
- The writer's batches are ``fsync``'d in a worker thread (an fsync can take
  milliseconds; the event loop also serves calls). The call path's rare direct
  append (queue full) does not fsync; the next writer batch's fsync covers it.
- The file is bounded by ``max_bytes``. Past the bound new lines are **refused**
  (the caller counts and logs them as dropped): the spool shares its disk with the
  switch's own logs and CDRs, and filling that disk would take the switch down,
  which costs more than losing journal lines. Lines already spooled are kept.
- A reader only takes complete lines (up to the last newline); a torn last line
  left by a crash is closed with a newline at open so it becomes one bad line that
  the journal moves to ``<spool>.rejected``, instead of gluing onto the next record.
- The file is truncated only when everything in it has been committed to
  PostgreSQL (the journal calls :meth:`Spool.truncate_if_drained` after the COPY).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

__all__ = ["Spool"]

#: Bytes read per drain step; lines are bounded (rows.py clips text), ~1–3 KiB each.
READ_CHUNK: Final = 4 * 1024 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_and_sync(fd: int, data: bytes) -> None:
    _write_all(fd, data)
    os.fsync(fd)


def _read_lines(path: Path, offset: int, chunk: int) -> tuple[list[bytes], int]:
    with path.open("rb") as f:
        f.seek(offset)
        buf = f.read(chunk)
        end = buf.rfind(b"\n")
        while end < 0 and len(buf) >= chunk:
            # One line longer than a chunk (only a corrupt file has one): read on to its end.
            more = f.read(chunk)
            if not more:
                break
            buf += more
            end = buf.rfind(b"\n")
    if end < 0:
        return [], offset
    lines = buf[: end + 1].splitlines()
    return [line for line in lines if line.strip()], offset + end + 1


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as f:
        while block := f.read(READ_CHUNK):
            count += block.count(b"\n")
    return count


class Spool:
    """See the module docstring. Create with :meth:`open`."""

    def __init__(self, path: Path, fd: int, size: int, records: int, max_bytes: int) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self.max_bytes = max_bytes
        self._fd = fd
        self._size = size
        self._records = records

    @classmethod
    async def open(cls, path: Path, *, max_bytes: int) -> Spool:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size:
            with path.open("rb") as f:
                f.seek(size - 1)
                torn = f.read(1) != b"\n"
            if torn:
                await asyncio.to_thread(_write_and_sync, fd, b"\n")
                size += 1
        records = await asyncio.to_thread(_count_lines, path) if size else 0
        return cls(path, fd, size, records, max_bytes)

    @property
    def size_bytes(self) -> int:
        return self._size

    @property
    def records(self) -> int:
        """Lines in the file (committed ones included until the next truncation)."""
        return self._records

    def _admit(self, lines: list[bytes]) -> tuple[bytes, int]:
        """Take the lines that fit under the bound; return them joined and how many fit."""
        room = self.max_bytes - self._size
        taken = 0
        total = 0
        for line in lines:
            if total + len(line) > room:
                break
            total += len(line)
            taken += 1
        data = b"".join(lines[:taken])
        self._size += len(data)
        self._records += taken
        return data, taken

    def append_now(self, lines: list[bytes], *, sync: bool = False) -> int:
        """Append at once (the call path's overflow; no fsync unless ``sync``).

        Returns the lines written. After :meth:`close` the file is reopened for the
        one write, so a record that arrives during shutdown is still kept.
        """
        data, taken = self._admit(lines)
        if not data:
            return taken
        fd = self._fd
        if fd < 0:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            if fd != self._fd:
                os.close(fd)
        return taken

    async def append(self, lines: list[bytes]) -> int:
        """Append and fsync in a worker thread. Returns lines written (the rest were refused)."""
        data, taken = self._admit(lines)
        # fsync even with nothing new: it also makes earlier call-path appends durable.
        await asyncio.to_thread(_write_and_sync, self._fd, data)
        return taken

    async def read(self, offset: int) -> tuple[list[bytes], int]:
        """Complete lines from ``offset``; returns them and the offset after the last one."""
        if offset >= self._size:
            return [], offset
        return await asyncio.to_thread(_read_lines, self.path, offset, READ_CHUNK)

    def truncate_if_drained(self, offset: int) -> bool:
        """Empty the file if ``offset`` is its end (everything up to it is committed)."""
        if os.fstat(self._fd).st_size != offset:
            return False
        os.ftruncate(self._fd, 0)
        self._size = 0
        self._records = 0
        return True

    async def reject(self, lines: list[bytes]) -> None:
        """Keep lines PostgreSQL refuses (bad data) aside, for an operator to look at."""

        def _do() -> None:
            fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                _write_and_sync(fd, b"".join(line.rstrip(b"\n") + b"\n" for line in lines))
            finally:
                os.close(fd)

        await asyncio.to_thread(_do)

    def resync(self) -> None:
        """Re-read the size after a failed write (disk full): the bound stays honest."""
        self._size = os.stat(self.path).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

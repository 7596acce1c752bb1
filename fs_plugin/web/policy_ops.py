"""Policy life cycle from the web layer: reload (API, file change), checked edits.

Every path goes through :meth:`PolicyManager.reload`: one reload at a time, the
files loaded and validated off the event loop (a large label list must not stall
calls), then the holder swaps its snapshot reference in one assignment — a call
reads the snapshot once, so it sees the old policy or the new one, never a mix.
A policy that does not validate is refused and the old one stays.

An edit (``PUT /api/policy/files/{name}``) is validated as part of the *whole*
policy first, in a scratch copy of the directory; only then is the file replaced
(write to a temporary name, then ``os.replace``) and the policy reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from fs_plugin.clock import Clock
from fs_plugin.errors import ConfigError
from fs_plugin.policy import PolicySnapshot, load_policy

__all__ = ["FILE_NAME", "PolicyManager", "ReloadEvent", "error_json", "watch_policy"]

log = structlog.get_logger(__name__)

#: Editable files: policy YAML at the top level, list CSVs under ``data/``. Nothing
#: else — no path can leave the policy directory.
FILE_NAME = re.compile(r"^(?:data/)?[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(?:ya?ml|csv)$")
#: An edited file may be this large (the loader's own limit is far above a hand edit).
MAX_EDIT_BYTES = 8 * 1024 * 1024
_WATCHED_SUFFIXES = (".yaml", ".yml", ".csv")


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    at: float
    trigger: str
    result: str
    old: str
    new: str
    error: str | None = None


def error_json(exc: ConfigError) -> dict[str, Any]:
    return {
        "error": "policy_invalid", "reason": exc.location_text(), "file": exc.file,
        "line": exc.line, "column": exc.column, "key": exc.key,
    }


class PolicyManager:
    def __init__(self, holder: Any, clock: Clock,
                 on_reload: Callable[[ReloadEvent], None] | None = None) -> None:
        #: ``fs_plugin.service.PolicyHolder`` (``path``, ``snapshot``, ``version``, ``reload``).
        self.holder = holder
        self._clock = clock
        self._lock = asyncio.Lock()
        self._on_reload = on_reload
        #: The last reloads for the API and the NOC page (bounded: a history, not a log).
        self.history: deque[ReloadEvent] = deque(maxlen=50)

    @property
    def directory(self) -> Path | None:
        path = Path(self.holder.path)
        return path if path.is_dir() else None

    def _record(self, trigger: str, old: str, error: ConfigError | None) -> ReloadEvent:
        event = ReloadEvent(
            at=self._clock.time(), trigger=trigger, result="refused" if error else "applied",
            old=old, new=self.holder.version, error=error.location_text() if error else None,
        )
        self.history.append(event)
        if self._on_reload is not None:
            self._on_reload(event)
        return event

    async def reload(self, trigger: str) -> ConfigError | None:
        """Reload from disk; return the error (old policy kept) or ``None``."""
        async with self._lock:
            old = self.holder.version
            # The holder loads, validates and swaps; in a thread so calls keep flowing.
            error: ConfigError | None = await asyncio.to_thread(self.holder.reload)
            if error is not None:
                log.error("policy_refused", trigger=trigger, error=error.location_text(),
                          kept=old)
            self._record(trigger, old, error)
            return error

    async def check_disk(self) -> ConfigError | None:
        """Validate what is on disk without applying it."""
        try:
            await asyncio.to_thread(load_policy, self.holder.path)
        except ConfigError as exc:
            return exc
        return None

    def read_file(self, name: str) -> bytes | None:
        root = self.directory
        if root is None:
            return None
        path = root / name
        return path.read_bytes() if path.is_file() else None

    async def candidate(self, files: Mapping[str, bytes]) -> PolicySnapshot:
        """The policy as it would be with ``files`` replaced; raises :class:`ConfigError`
        naming the file (by its name in the policy directory), line and key."""
        root = self.directory
        if root is None:
            raise ConfigError("the policy is a single file; edit it on disk",
                              file=str(self.holder.path))
        return await asyncio.to_thread(_load_with, root, files)

    async def write_file(self, name: str, content: bytes) -> tuple[str, str]:
        """Validate the whole policy with ``name`` replaced, then write and apply it.

        Returns (old version, new version). Raises :class:`ConfigError` when the
        policy would not load; nothing is written then.
        """
        async with self._lock:
            await self.candidate({name: content})
            root = self.directory
            assert root is not None
            await asyncio.to_thread(_atomic_write, root / name, content)
            old = self.holder.version
            error: ConfigError | None = await asyncio.to_thread(self.holder.reload)
            self._record("api-edit", old, error)
            if error is not None:  # changed on disk by someone else in between
                raise error
            log.info("policy_file_written", file=name, old=old, new=self.holder.version)
            return old, self.holder.version


def _load_with(root: Path, files: Mapping[str, bytes]) -> PolicySnapshot:
    with tempfile.TemporaryDirectory(prefix="fsp-policy-") as scratch:
        copy = Path(scratch) / root.name
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".*"))
        for name, content in files.items():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        try:
            return load_policy(copy)
        except ConfigError as exc:
            raise _relocated(exc, copy, root) from None


def _relocated(exc: ConfigError, scratch: Path, root: Path) -> ConfigError:
    """The same error, naming the real file instead of the scratch copy."""
    file = exc.file
    if file is not None and file.startswith(str(scratch)):
        file = str(root) + file[len(str(scratch)):]
    return ConfigError(exc.message, file=file, line=exc.line, column=exc.column, key=exc.key)


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _interesting(_change: Any, path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name.endswith(_WATCHED_SUFFIXES)


async def watch_policy(
    manager: PolicyManager, *, debounce_ms: int = 500, stop: asyncio.Event | None = None
) -> None:
    """Reload when a policy file changes (editors saving several files at once are
    one reload: watchfiles groups changes within ``debounce_ms``)."""
    from watchfiles import awatch

    path = Path(manager.holder.path)
    async for _changes in awatch(path, watch_filter=_interesting, debounce=debounce_ms,
                                 step=50, stop_event=stop, recursive=True):
        log.info("policy_files_changed")
        await manager.reload("file-change")

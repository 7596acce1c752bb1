"""Stopping background tasks without losing a cancellation of the one who stops them."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

__all__ = ["cancel_and_wait"]

log = structlog.get_logger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until each has ended.

    The usual ``task.cancel()`` then ``await task`` under ``suppress(CancelledError)``
    also swallows a cancellation aimed at the caller while it waits, so a shutdown with
    a deadline could run on past it. ``asyncio.wait`` lets that cancellation through.
    A task that had ended with an exception of its own is logged (``task_failed``) rather
    than raised: stopping goes on with the other tasks.
    """
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    if not live:
        return
    await asyncio.wait(live)
    for task in live:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            log.error("task_failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}",
                      exc_info=exc)

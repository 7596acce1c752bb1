"""Stopping background tasks without losing a cancellation of the one who stops them."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until each has ended.

    The usual ``task.cancel()`` then ``await task`` under ``suppress(CancelledError)``
    also swallows a cancellation aimed at the caller while it waits, so a shutdown with
    a deadline could run on past it. ``asyncio.wait`` lets that cancellation through and
    never raises the tasks' own exceptions (they stay on the tasks, retrieved here so
    asyncio does not report them as never retrieved).
    """
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    if not live:
        return
    await asyncio.wait(live)
    for task in live:
        if not task.cancelled():
            task.exception()

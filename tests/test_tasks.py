"""cancel_and_wait: tasks end, the caller's own cancellation is never swallowed."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from fs_plugin.tasks import cancel_and_wait


async def _forever() -> None:
    await asyncio.Event().wait()


async def _fails() -> None:
    raise RuntimeError("boom")


async def _slow_to_stop() -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0.05)  # cleanup that takes a while after the cancel


async def test_cancels_every_task_and_waits_for_it() -> None:
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_forever()), loop.create_task(_slow_to_stop())]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks[0], None, tasks[1])
    assert all(t.done() and t.cancelled() for t in tasks)


async def test_a_failed_task_is_logged_not_raised() -> None:
    loop = asyncio.get_running_loop()
    failed = loop.create_task(_fails(), name="fsp-test")
    await asyncio.sleep(0)
    with capture_logs() as logs:
        # Not raised; and retrieved, so asyncio does not report it again (the conftest
        # fails a test on unhandled loop errors).
        await cancel_and_wait(failed)
    assert [(e["event"], e["task"], e["error"]) for e in logs] == [
        ("task_failed", "fsp-test", "RuntimeError: boom")]


async def test_the_callers_cancellation_goes_through() -> None:
    loop = asyncio.get_running_loop()
    slow = loop.create_task(_slow_to_stop())
    await asyncio.sleep(0)
    stopping = loop.create_task(cancel_and_wait(slow))
    await asyncio.sleep(0.01)  # the slow task is in its cleanup, the stopper waits
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await cancel_and_wait(slow)
    assert slow.cancelled()


async def test_nothing_to_stop() -> None:
    await cancel_and_wait()
    await cancel_and_wait(None)

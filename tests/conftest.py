"""Test-wide rules: warnings are errors (pyproject), and an exception that reaches the
event loop unhandled (a task nobody awaited that failed, a callback that raised)
fails the test that caused it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FSP_SHARED", REPO.parent / "shared"))

_unhandled: list[dict[str, Any]] = []


def _record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    _unhandled.append(context)
    loop.default_exception_handler(context)


class _StrictPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_exception_handler(_record)
        return loop


# pytest-asyncio creates every test's loop from the current policy.
asyncio.set_event_loop_policy(_StrictPolicy())


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    # A test that runs the CLI in-process configures structlog; the next test starts clean.
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _no_unhandled_loop_errors() -> Iterator[None]:
    _unhandled.clear()
    yield
    errors = list(_unhandled)
    _unhandled.clear()
    assert not errors, f"exceptions reached the event loop unhandled: {errors}"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared fixtures not found at {SHARED}; set FSP_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO

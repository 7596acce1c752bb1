"""Fixtures for the flash-SMS tests: a real fake gateway on loopback and a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from warn_support import RecordingSleep

from fs_plugin.clock import ManualClock
from fs_plugin.warn.fake_gateway import FakeSmsGateway


@pytest.fixture
async def fake_gateway() -> AsyncIterator[FakeSmsGateway]:
    async with FakeSmsGateway() as gateway:
        yield gateway


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()

"""Fixtures for transport and end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fsp_rig import Rig, make_rig


@pytest.fixture
def policy_dir(repo_dir: Path) -> Path:
    return repo_dir / "policies"


@pytest.fixture
async def rig(policy_dir: Path) -> AsyncIterator[Rig]:
    r = await make_rig(policy_dir)
    try:
        yield r
    finally:
        await r.service.stop()
        await r.switch.stop()

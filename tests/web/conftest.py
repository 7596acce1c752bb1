"""Fixtures for the web tests (helpers live in web_support.py)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from web_support import Env, close_env, make_env


@pytest.fixture
def policy_copy(repo_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(repo_dir / "policies", target)
    return target


@pytest.fixture
async def env(policy_copy: Path) -> AsyncIterator[Env]:
    e = await make_env(policy_copy)
    try:
        yield e
    finally:
        await close_env(e)

"""Static checks are part of the test run: ruff, mypy --strict and the layer contracts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it is in the [test] extra)")
    return found


def _check(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_ruff(repo_dir: Path) -> None:
    _check([_tool("ruff"), "check", "fs_plugin", "tests", "bench"], repo_dir)


def test_mypy_strict(repo_dir: Path) -> None:
    _check([_tool("mypy")], repo_dir)


def test_layer_contracts(repo_dir: Path) -> None:
    _check([_tool("lint-imports")], repo_dir)

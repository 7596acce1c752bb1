"""Helpers for policy tests: write YAML files into a temporary policy directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

WriteFile = Callable[[str, str], Path]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "policy"
    d.mkdir()
    return d


@pytest.fixture
def write(policy_dir: Path) -> WriteFile:
    """``write(name, yaml_text)``: dedent and write a file into ``policy_dir``."""

    def _write(name: str, text: str) -> Path:
        path = policy_dir / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write

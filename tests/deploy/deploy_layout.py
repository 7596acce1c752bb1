"""Where the deployment files live, and the lab compose file as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["CORE_GLOBALS", "DIALPLAN", "LAB", "REPO", "compose", "freeswitch_mounts"]

REPO = Path(__file__).resolve().parents[2]
DIALPLAN = REPO / "dialplan"
LAB = REPO / "lab"
#: What FreeSWITCH itself sets before reading its XML; the value is arbitrary here.
CORE_GLOBALS = {"local_ip_v4": "172.30.0.2"}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((LAB / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def freeswitch_mounts() -> dict[str, Path]:
    """Container path -> host path for the lab switch, read from lab/compose.yaml."""
    mounts: dict[str, Path] = {}
    for vol in compose()["services"]["freeswitch"]["volumes"]:
        src, dst, *_ = vol.split(":")
        mounts[dst] = (LAB / src).resolve()
    return mounts

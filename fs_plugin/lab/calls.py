"""Call descriptions for the lab switch: what a SIP caller would present on a trunk.

A calls file is YAML::

    calls:
      - name: legitimate enterprise call
        from: "02088881234"          # From user
        to: "13900001111"            # Request-URI user (the callee)
        trunk: ent-1                 # what the trunk's dialplan puts in fsp_trunk
        on_error: pass               # the dialplan's fail-safe for that trunk
        pai: "02088881234"           # optional P-Asserted-Identity user
        diversion: "<sip:02088880001@10.0.0.1>;reason=unconditional"   # optional
        expect: {verdict: pass, sip: 200}   # optional: the lab reports mismatches
        repeat: 1                    # optional: place this call N times
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fs_plugin.errors import ConfigError

__all__ = ["LabCall", "load_calls", "parse_calls"]

_KEYS = {
    "name", "from", "to", "trunk", "on_error", "pai", "diversion", "profile", "network_ip",
    "user_agent", "caller_name", "gateway", "expect", "repeat", "ring_s", "talk_s",
}


@dataclass(frozen=True, slots=True)
class LabCall:
    from_user: str
    to: str
    name: str = ""
    trunk: str | None = None
    on_error: str = "pass"
    pai: str | None = None
    diversion: str | None = None
    profile: str = "trunks"
    network_ip: str = "127.0.0.1"
    user_agent: str | None = None
    caller_name: str | None = None
    gateway: str | None = None
    #: Seconds the caller lets it ring before cancelling (``None``: waits for an answer).
    ring_s: float | None = None
    #: Seconds an answered call lasts.
    talk_s: float = 30.0
    expect: Mapping[str, Any] = field(default_factory=dict)


def parse_calls(doc: Any, source: str = "<calls>") -> list[LabCall]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("calls"), Sequence):
        raise ConfigError("expected a mapping with a 'calls' list", file=source)
    out: list[LabCall] = []
    for i, raw in enumerate(doc["calls"]):
        key = f"calls[{i}]"
        if not isinstance(raw, Mapping):
            raise ConfigError("each call is a mapping", file=source, key=key)
        unknown = set(raw) - _KEYS
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", file=source, key=key)
        for required in ("from", "to"):
            if required not in raw:
                raise ConfigError(f"missing '{required}'", file=source, key=key)
        on_error = str(raw.get("on_error", "pass"))
        if on_error not in ("pass", "block"):
            raise ConfigError("on_error must be pass or block", file=source, key=f"{key}.on_error")
        call = LabCall(
            from_user=str(raw["from"]),
            to=str(raw["to"]),
            name=str(raw.get("name", "")),
            trunk=None if raw.get("trunk") is None else str(raw["trunk"]),
            on_error=on_error,
            pai=None if raw.get("pai") is None else str(raw["pai"]),
            diversion=None if raw.get("diversion") is None else str(raw["diversion"]),
            profile=str(raw.get("profile", "trunks")),
            network_ip=str(raw.get("network_ip", "127.0.0.1")),
            user_agent=raw.get("user_agent"),
            caller_name=raw.get("caller_name"),
            gateway=raw.get("gateway"),
            ring_s=None if raw.get("ring_s") is None else float(raw["ring_s"]),
            talk_s=float(raw.get("talk_s", 30.0)),
            expect=dict(raw.get("expect") or {}),
        )
        out.extend([call] * int(raw.get("repeat", 1)))
    return out


def load_calls(path: str | Path) -> list[LabCall]:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            str(getattr(exc, "problem", exc)), file=str(p),
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from exc
    return parse_calls(doc, str(p))

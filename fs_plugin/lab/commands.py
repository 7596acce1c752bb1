"""``fs-plugin lab …``: drive the lab switch."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host.strip("[]") or "127.0.0.1", int(port)


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="lab switch tools")
    labsub = lab.add_subparsers(dest="lab_command", required=True)
    calls = labsub.add_parser("calls", help="place the calls of a file at a running controller")
    calls.add_argument("file", type=Path)
    calls.add_argument("--controller", default="127.0.0.1:8084")
    calls.add_argument("--socket-timeout", type=float, default=25.0)
    calls.add_argument("--json", action="store_true")
    calls.set_defaults(handler=lambda args: asyncio.run(_lab_calls(args)))


async def _lab_calls(args: argparse.Namespace) -> int:
    from fs_plugin.lab.calls import load_calls
    from fs_plugin.lab.report import print_results
    from fs_plugin.lab.switch import LabSwitch

    host, port = _hostport(args.controller, 8084)
    switch = LabSwitch(host, port, socket_timeout_s=args.socket_timeout)
    results = await switch.place_all(load_calls(args.file))
    return print_results(results, as_json=args.json)

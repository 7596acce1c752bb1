"""``fs-plugin lab …``: drive the lab switch."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _controller_arg(text: str) -> str:
    """argparse type of --controller: a bad HOST:PORT is a usage error, not a traceback."""
    from fs_plugin.cli import hostport  # cli imports this module to register it

    hostport(text, 8084)
    return text


def register(sub: Any) -> None:
    lab = sub.add_parser("lab", help="lab switch tools")
    labsub = lab.add_subparsers(dest="lab_command", required=True)
    calls = labsub.add_parser("calls", help="place the calls of a file at a running controller")
    calls.add_argument("file", type=Path)
    calls.add_argument("--controller", default="127.0.0.1:8084", type=_controller_arg,
                       help="the controller's outbound socket HOST:PORT")
    calls.add_argument("--socket-timeout", type=float, default=25.0)
    calls.add_argument("--json", action="store_true")
    calls.set_defaults(handler=lambda args: asyncio.run(_lab_calls(args)))

    run = labsub.add_parser(
        "run", help="run a SIPp scenario against the emulator and the real controller",
        description="Start the controller (in-process, memory counters, free port), the lab "
                    "switch with its SIP front and event socket, run SIPp with the scenario "
                    "and print the result per call and per rule. Exit 1 when a call's "
                    "response differs from the scenario's expectation.",
    )
    run.add_argument("scenario", help="scenario name from the catalogue, or 'list'")
    run.add_argument("--policy", type=Path, default=Path("policies"))
    run.add_argument("--catalogue", type=Path, default=None,
                     help="scenario catalogue (default lab/sipp/scenarios.yaml)")
    run.add_argument("--at", default=None,
                     help="ISO instant the lab clock starts at (default: the scenario's)")
    run.add_argument("--workdir", type=Path, default=None,
                     help="keep SIPp's logs here (default: a temporary directory)")
    run.add_argument("--json", action="store_true", help="print results as JSON lines")
    run.set_defaults(handler=lambda args: asyncio.run(_lab_run(args)))


async def _lab_calls(args: argparse.Namespace) -> int:
    from fs_plugin.cli import hostport
    from fs_plugin.lab.calls import load_calls
    from fs_plugin.lab.report import print_results
    from fs_plugin.lab.switch import LabSwitch

    host, port = hostport(args.controller, 8084)
    switch = LabSwitch(host, port, socket_timeout_s=args.socket_timeout)
    results = await switch.place_all(load_calls(args.file))
    return print_results(results, as_json=args.json)


async def _lab_run(args: argparse.Namespace) -> int:
    import json
    import sys

    from fs_plugin.lab.scenarios import format_run, load_catalogue, run_scenario
    from fs_plugin.lab.sipp import find_sipp
    from fs_plugin.logs import configure_logging

    catalogue = load_catalogue(args.catalogue)
    if args.scenario == "list":
        for name, sc in catalogue.items():
            print(f"{name:14} {sc.description}")
        return 0
    scenario = catalogue.get(args.scenario)
    if scenario is None:
        print(f"error: no scenario {args.scenario!r}; known: {', '.join(catalogue)}",
              file=sys.stderr)
        return 2
    if find_sipp() is None:
        print("error: sipp not found (Debian/Ubuntu: apt-get install sip-tester)",
              file=sys.stderr)
        return 2
    if not args.policy.exists():
        print(f"error: policy {args.policy} not found", file=sys.stderr)
        return 2
    configure_logging(json=True, level="warning")
    run = await run_scenario(scenario, args.policy, at=args.at, workdir=args.workdir)
    if args.json:
        for c in run.calls:
            print(json.dumps({
                "step": c.step + 1, "call": c.index, "call_id": c.call_id,
                "caller": c.expected.caller, "callee": c.expected.callee,
                "trunk": c.expected.trunk, "sip_status": c.sip_seen, "verdict": c.verdict,
                "rule": c.rule, "errors": c.errors,
            }, ensure_ascii=False))
    else:
        print(format_run(run))
    return 0 if run.ok else 1

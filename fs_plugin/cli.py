"""``fs-plugin``: run the controller, check and explain policies, drive the lab switch."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from fs_plugin.errors import ConfigError

__all__ = ["main"]

DEFAULT_POLICY = Path("policies")
_COMMAND_MODULES = (
    "fs_plugin.lab.commands", "fs_plugin.replay.commands", "fs_plugin.web.commands",
    "fs_plugin.journal.commands",
)
DEFAULT_DEMO_CALLS = Path("lab/calls/demo.yaml")


def hostport(text: str, default_port: int) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) or a bare host with ``default_port``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is not 0–65535: {text!r}")
    return host, number


def _hostport_arg(text: str) -> str:
    """argparse type of the HOST:PORT options: checked while the command line is parsed,
    so a bad one is a usage error (exit 2), not a traceback once the service starts."""
    hostport(text, 0)
    return text


def _network_arg(text: str) -> str:
    try:
        ipaddress.ip_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _iso_time_arg(text: str) -> str:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fs-plugin", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the controller for a FreeSWITCH switch")
    run.add_argument("--policy", type=Path, required=True, help="policy directory or file")
    run.add_argument("--listen", default="127.0.0.1:8084", type=_hostport_arg,
                     help="outbound socket HOST:PORT")
    run.add_argument("--esl", default=None, type=_hostport_arg,
                     help="FreeSWITCH event socket HOST:PORT for outcomes (password from "
                          "$FSP_ESL_PASSWORD); omit to run without outcomes")
    run.add_argument("--allow", action="append", default=None, type=_network_arg,
                     help="CIDR allowed to connect to the outbound socket (repeatable; "
                          "default loopback)")
    run.add_argument("--deadline-ms", type=float, default=250.0,
                     help="decision deadline before the trunk's on_error applies")
    run.add_argument("--log-format", choices=("json", "console"), default="json")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                     default="info")
    run.add_argument("--no-mask", action="store_true", help="log phone numbers unmasked")
    run.add_argument("--counters", default=os.environ.get("FSP_COUNTERS_URL", "memory://"),
                     help="counter store: memory:// (default), redis://HOST:PORT/DB or "
                          "redis+cluster://HOST:PORT[,HOST:PORT] ($FSP_COUNTERS_URL)")
    run.add_argument("--counters-timeout-ms", type=float, default=150.0,
                     help="deadline of the counter round trip inside the decision deadline")
    run.add_argument("--journal", default=os.environ.get("FSP_JOURNAL_DSN", "embedded"),
                     help="'embedded' (PostgreSQL under --state-dir, the default), 'off', "
                          "or a PostgreSQL DSN ($FSP_JOURNAL_DSN)")
    run.add_argument("--state-dir", type=Path, default=Path("state"),
                     help="embedded PostgreSQL, journal spool")
    run.add_argument("--switch-name", default=socket.gethostname(),
                     help="this switch's name in the journal")
    run.add_argument("--http", default=None, type=_hostport_arg,
                     help="HOST:PORT of the HTTP API, NOC page and /metrics (off by default)")
    run.add_argument("--tokens", type=Path, default=os.environ.get("FSP_TOKENS_FILE"),
                     help="API tokens file (sha256 → role), see fs_plugin/web/auth.py "
                          "($FSP_TOKENS_FILE)")
    run.add_argument("--noc-bus", default=os.environ.get("FSP_NOC_BUS_URL"),
                     help="redis://… stream shared by every switch's NOC page "
                          "($FSP_NOC_BUS_URL); none: this switch only")
    run.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                     help="event loop (uvloop when installed, else asyncio)")
    run.add_argument("--sms-gateway", default=os.environ.get("FSP_SMS_GATEWAY_URL"),
                     help="flash-SMS gateway URL ($FSP_SMS_GATEWAY_URL); none: no flash SMS")

    check = sub.add_parser("check", help="validate a policy; exit 1 with file:line errors")
    check.add_argument("path", type=Path)

    ex = sub.add_parser("explain", help="show what the policy decides for one call")
    ex.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    ex.add_argument("--trunk", default=None, help="trunk id (the dialplan's fsp_trunk)")
    ex.add_argument("--from", dest="from_user", required=True)
    ex.add_argument("--pai", default=None)
    ex.add_argument("--diversion", default=None)
    ex.add_argument("--to", required=True)
    ex.add_argument("--source-ip", default=None)
    ex.add_argument("--at", default=None, type=_iso_time_arg,
                    help="ISO time of the call (default now)")
    ex.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="run a realistic mix of calls through the lab switch "
                                       "and the real controller over TCP")
    demo.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    demo.add_argument("--calls", type=Path, default=DEFAULT_DEMO_CALLS)
    demo.add_argument("--json", action="store_true", help="print results as JSON lines")
    demo.add_argument("--journal", default="embedded",
                      help="'embedded' (default: PostgreSQL under --state-dir), 'off' or a DSN")
    demo.add_argument("--state-dir", type=Path, default=Path("state"))

    counters = sub.add_parser("counters", help="inspect or reset the counter store")
    counters.add_argument("action", choices=("show", "reset"))
    counters.add_argument("pattern", nargs="?", default="*",
                          help="key glob after the namespace, e.g. 'rate:*' (default all)")
    counters.add_argument("--counters", default=os.environ.get("FSP_COUNTERS_URL", "memory://"))
    counters.add_argument("--limit", type=int, default=1000)

    # Commands that live with their layer: each module has `register(subparsers)`, which
    # adds its parsers with `set_defaults(handler=fn)`; fn(args) returns the exit status.
    for module in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args))
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "explain":
            return _cmd_explain(args)
        if args.command == "demo":
            return asyncio.run(_cmd_demo(args))
        if args.command == "counters":
            return asyncio.run(_cmd_counters(args))
    except ConfigError as exc:
        from fs_plugin.logs import redact_secrets

        # stderr is the service's log: a mistyped URL is quoted, never its password.
        print(f"error: {redact_secrets(exc.location_text())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


def _cmd_run(args: argparse.Namespace) -> int:
    from fs_plugin.logs import configure_logging
    from fs_plugin.service import ServiceConfig
    from fs_plugin.transport.inbound import InboundSettings
    from fs_plugin.transport.outbound import OutboundSettings

    configure_logging(json=args.log_format == "json", level=args.log_level,
                      mask=not args.no_mask)
    host, port = hostport(args.listen, 8084)
    outbound = OutboundSettings(host=host, port=port, decision_deadline_s=args.deadline_ms / 1e3)
    if args.allow:
        outbound = replace(outbound, allow=tuple(args.allow))
    inbound = None
    if args.esl:
        esl_host, esl_port = hostport(args.esl, 8021)
        inbound = InboundSettings(
            host=esl_host, port=esl_port, password=os.environ.get("FSP_ESL_PASSWORD", "")
        )
    web = None
    if args.http:
        from fs_plugin.web import WebSettings

        http_host, http_port = hostport(args.http, 8088)
        web = WebSettings(host=http_host, port=http_port,
                          tokens_file=Path(args.tokens) if args.tokens else None,
                          bus_redis_url=args.noc_bus)
    config = ServiceConfig(
        args.policy, outbound=outbound, inbound=inbound, counters_url=args.counters, web=web,
        counters_timeout_s=args.counters_timeout_ms / 1e3, journal=args.journal,
        state_dir=args.state_dir, switch_name=args.switch_name,
        sms_gateway_url=args.sms_gateway,
    )
    if args.loop == "uvloop":
        _install_fast_loop()
    asyncio.run(_run_service(config))
    return 0


def _install_fast_loop() -> str:
    """Use uvloop when it is installed: the same asyncio API, about twice the socket
    throughput per core (the controller is one process per switch)."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def _run_service(config: Any) -> None:
    from fs_plugin.service import Service

    # Built inside the loop: the service's queues and events belong to it.
    await Service(config).run_forever()


async def _cmd_counters(args: argparse.Namespace) -> int:
    from fs_plugin.counters import open_store

    store = open_store(args.counters)
    try:
        if args.action == "show":
            shown = await store.show(args.pattern, limit=args.limit, timeout_s=5.0)
            print(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
        else:
            print(f"deleted {await store.reset(args.pattern, timeout_s=5.0)} key(s)")
    finally:
        await store.close()
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from fs_plugin.policy import check_policy

    errors = check_policy(args.path)
    for err in errors:
        print(err.location_text(), file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {args.path}", file=sys.stderr)
        return 1
    print(f"{args.path}: OK")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    import time

    from fs_plugin.clock import ManualClock
    from fs_plugin.counters import open_store
    from fs_plugin.policy import load_policy
    from fs_plugin.screening import CounterReadings, decide, explain, plan_counters
    from fs_plugin.screening.model import CallFacts

    snapshot = load_policy(args.policy)
    now = datetime.fromisoformat(args.at).timestamp() if args.at else time.time()
    facts = CallFacts(
        uuid="explain", from_user=args.from_user, destination=args.to, pai=args.pai,
        diversion=args.diversion, trunk_hint=args.trunk, network_ip=args.source_ip,
    )
    # Counters as for the first call in every window: caps show what they would check.
    plan = plan_counters(facts, snapshot, now=now)
    store = open_store("memory://", clock=ManualClock(now))
    results = asyncio.run(store.execute(plan.ops)) if plan.ops else ()
    decision = decide(facts, snapshot, CounterReadings(plan, results, None), now=now)
    if args.json:
        print(json.dumps(_decision_json(decision), ensure_ascii=False, indent=2))
    else:
        print(explain(decision))
    return 0


def _decision_json(decision: Any) -> dict[str, Any]:
    return {
        "verdict": decision.verdict.value, "rule": decision.rule, "cause": decision.cause,
        "sip_status": decision.sip_status, "reason": decision.reason, "label": decision.label,
        "trunk": decision.trunk, "customer": decision.customer,
        "policy_version": decision.policy_version, "fallback": decision.fallback,
        "trail": [
            {"rule": r.rule, "fired": r.fired, "verdict": r.verdict.value, "mode": r.mode.value,
             "reason": r.reason}
            for r in decision.trail
        ],
    }


async def _cmd_demo(args: argparse.Namespace) -> int:
    from fs_plugin.lab.calls import load_calls
    from fs_plugin.lab.report import print_results
    from fs_plugin.lab.switch import LabSwitch
    from fs_plugin.logs import configure_logging
    from fs_plugin.service import Service, ServiceConfig
    from fs_plugin.transport.inbound import InboundSettings
    from fs_plugin.transport.outbound import OutboundSettings
    from fs_plugin.warn.fake_gateway import FakeSmsGateway

    for path, what in ((args.policy, "policy"), (args.calls, "calls file")):
        if not path.exists():
            print(f"error: {what} {path} not found (run from the repository root)",
                  file=sys.stderr)
            return 1
    configure_logging(json=True, level="warning")
    calls = load_calls(args.calls)
    switch = LabSwitch()
    esl_port = await switch.start_event_socket(password="lab-demo")
    async with FakeSmsGateway() as sms_gateway:
        service = Service(ServiceConfig(
            args.policy,
            outbound=OutboundSettings(port=0),
            inbound=InboundSettings(port=esl_port, password="lab-demo"),
            journal=args.journal, state_dir=args.state_dir, switch_name="demo",
            sms_gateway_url=sms_gateway.url,
        ))
        outcomes: list[Any] = []
        all_outcomes = asyncio.Event()

        def on_outcome(outcome: Any) -> None:
            outcomes.append(outcome)
            if len(outcomes) >= len(calls):
                all_outcomes.set()

        service.outcome_hooks.append(on_outcome)
        await service.start()
        journaled: list[dict[str, Any]] = []
        try:
            assert service.inbound is not None
            await service.inbound.wait_connected(5.0)
            switch.controller_port = service.outbound.bound_port or 0
            results = await switch.place_all(calls, concurrency=20)
            with contextlib.suppress(TimeoutError):  # outcomes come over the event socket
                await asyncio.wait_for(all_outcomes.wait(), 5.0)
            if service.journal is not None:
                await service.journal.flush()
                uuids = {r.uuid for r in results}
                journaled = [row for row in await service.journal.trace(limit=1000)
                             if row.get("uuid") in uuids]
            if service.sms is not None:
                await service.sms.flush(5.0)
        finally:
            await service.stop()
            await switch.stop()
        status = print_results(results, as_json=args.json, outcomes=len(outcomes),
                               policy=service.policy.version)
        if not args.json:
            if service.journal is not None:
                print(f"journal ({args.journal}): {len(journaled)} of {len(results)} calls "
                      f"traceable with their outcome")
            for message in sms_gateway.messages:
                print(f"flash SMS to {message.get('to')}: {message.get('text')}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())

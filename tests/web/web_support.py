"""A real service on loopback (lab switch → TCP → controller) with the web side attached."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult, LabSwitch
from fs_plugin.screening.model import Outcome
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.inbound import InboundSettings
from fs_plugin.transport.outbound import DecisionRecord, OutboundSettings
from fs_plugin.web.app import WebServer, WebSettings, start_web
from fs_plugin.web.auth import Principal, Role, TokenStore, hash_token

#: One token per role; the web side only ever sees their digests.
TOKENS = {role: f"test-token-{role.value}-0123456789" for role in Role}
ESL_PASSWORD = "web-test-password"


def token_store() -> TokenStore:
    return TokenStore({hash_token(t): Principal(f"{r.value}-user", r) for r, t in TOKENS.items()})


def auth(role: Role | None) -> dict[str, str]:
    return {} if role is None else {"Authorization": f"Bearer {TOKENS[role]}"}


@dataclass
class Rig:
    service: Service
    switch: LabSwitch
    outcomes: list[Outcome] = field(default_factory=list)
    records: list[DecisionRecord] = field(default_factory=list)


@dataclass
class Env:
    rig: Rig
    web: WebServer
    http: aiohttp.ClientSession
    policy_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web.port}"

    async def call(self, method: str, path: str, role: Role | None = Role.ADMIN,
                   **kw: Any) -> tuple[int, Any]:
        headers = {**auth(role), **kw.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers, **kw) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()


async def make_rig(policy_dir: Path, **config: Any) -> Rig:
    """The controller (``Service``) and a lab switch on loopback; ``config`` goes to
    :class:`ServiceConfig` (``journal=DSN``, ``switch_name=…``, ``state_dir=…``)."""
    switch = LabSwitch(socket_timeout_s=3.0)
    esl_port = await switch.start_event_socket(password=ESL_PASSWORD)
    service = Service(ServiceConfig(
        policy_dir,
        outbound=OutboundSettings(port=0, decision_deadline_s=0.25),
        inbound=InboundSettings(port=esl_port, password=ESL_PASSWORD, backoff_initial_s=0.05,
                                backoff_max_s=0.2),
        shutdown_grace_s=2.0,
        counters_timeout_s=0.12,
        **config,
    ))
    rig = Rig(service, switch)
    service.outcome_hooks.append(rig.outcomes.append)
    service.outbound.add_listener(rig.records.append)
    await service.start()
    assert service.inbound is not None
    await service.inbound.wait_connected(5.0)
    port = service.outbound.bound_port
    assert port is not None
    switch.controller_port = port
    return rig


async def make_env(policy_dir: Path, *, service: dict[str, Any] | None = None,
                   **settings: Any) -> Env:
    rig = await make_rig(policy_dir, **(service or {}))
    options: dict[str, Any] = {"port": 0, "tokens": token_store(), "watch_policy": False,
                               "probe_interval_s": 0.2, "status_interval_s": 0.5}
    options.update(settings)
    try:
        web = await start_web(rig.service, WebSettings(**options))
    except BaseException:
        await rig.service.stop()
        await rig.switch.stop()
        raise
    # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1).
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    return Env(rig, web, http, policy_dir)


async def close_env(env: Env) -> None:
    await env.http.close()
    await env.web.stop()
    await env.rig.service.stop()
    await env.rig.switch.stop()


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Wait for something another task or process does (a reconnect, a hang-up event);
    no window of time is waited for, the loop only yields while polling."""
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class SseReader:
    """Frames of one open ``/api/stream`` response."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, kind: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """Read frames until one of ``kind`` arrives."""
        event, data = "", ""
        async with asyncio.timeout(timeout_s):
            while True:
                line = (await self.resp.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    if event == kind:
                        return dict(json.loads(data))
                    event, data = "", ""

    async def decision(self, uuid: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """Read decision frames until the one of call ``uuid``."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self.next("decision", timeout_s)
                if event["uuid"] == uuid:
                    return event


async def place_and_journal(env: Env, *calls: LabCall) -> list[CallResult]:
    """Place calls, wait for their hang-ups, and commit everything to PostgreSQL."""
    results = [await env.rig.switch.place(c) for c in calls]
    wanted = {r.uuid for r in results}
    await until(lambda: wanted <= {o.uuid for o in env.rig.outcomes}, "the hang-up events")
    journal = env.rig.service.journal
    assert journal is not None
    assert await journal.flush() is True
    return results

"""A real service on loopback (lab switch → TCP → controller) with the web side attached."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))

from fsp_rig import Rig, make_rig

from fs_plugin.web.app import WebServer, WebSettings, start_web
from fs_plugin.web.auth import Principal, Role, TokenStore, hash_token

#: One token per role; the web side only ever sees their digests.
TOKENS = {role: f"test-token-{role.value}-0123456789" for role in Role}


def token_store() -> TokenStore:
    return TokenStore({hash_token(t): Principal(f"{r.value}-user", r) for r, t in TOKENS.items()})


def auth(role: Role | None) -> dict[str, str]:
    return {} if role is None else {"Authorization": f"Bearer {TOKENS[role]}"}


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


async def make_env(policy_dir: Path, **settings: Any) -> Env:
    rig = await make_rig(policy_dir)
    options: dict[str, Any] = {"port": 0, "tokens": token_store(), "watch_policy": False,
                               "probe_interval_s": 0.2, "status_interval_s": 0.5}
    options.update(settings)
    web = await start_web(rig.service, WebSettings(**options))
    # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1).
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    return Env(rig, web, http, policy_dir)


async def close_env(env: Env) -> None:
    await env.http.close()
    await env.web.stop()
    await env.rig.service.stop()
    await env.rig.switch.stop()

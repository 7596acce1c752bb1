"""The live stream and the metrics, fed by real calls through the lab switch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from web_support import TOKENS, Env

from fs_plugin.lab.calls import LabCall
from fs_plugin.web.auth import Role

BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
PASSED = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")


async def _next_event(resp: aiohttp.ClientResponse, kind: str) -> dict[str, Any]:
    """Read SSE frames until one of ``kind`` arrives."""
    event, data = "", ""
    async with asyncio.timeout(5):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                if event == kind:
                    return dict(json.loads(data))
                event, data = "", ""


async def test_blocked_call_appears_live_and_filters_apply(env: Env) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[Role.NOC]}"}
    url = env.base + "/api/stream?verdict=block&backlog=0"
    async with env.http.get(url, headers=headers) as resp:
        assert resp.status == 200
        status = await _next_event(resp, "status")
        assert status["esl_connected"] == 1 and status["policy"] == env.rig.service.policy.version
        passed = await env.rig.switch.place(PASSED)
        blocked = await env.rig.switch.place(BLOCKED)
        assert (passed.verdict, blocked.verdict) == ("pass", "block")
        event = await _next_event(resp, "decision")
    # The passed call came first but the filter kept it out.
    assert event["uuid"] == blocked.uuid
    assert (event["verdict"], event["rule"]) == ("block", "cid.not_allowed")
    assert event["trunk"] == "ent-1"
    assert event["caller"] == "021****0123" and event["callee"] == "139****1113"
    assert event["policy"] == env.rig.service.policy.version


async def test_stream_sends_backlog_and_shadow_hits(env: Env) -> None:
    # A label.telemarketing number is a shadow rule in the example policy: recorded, not enforced.
    labelled = env.rig.service.policy.snapshot.labels
    number = next(lbl.number for lbl in labelled.values() if lbl.rule == "label.telemarketing")
    result = await env.rig.switch.place(
        LabCall(from_user=number, to="13900001111", trunk="ic-1"))
    headers = {"Authorization": f"Bearer {TOKENS[Role.NOC]}"}
    async with env.http.get(env.base + "/api/stream?shadow=true", headers=headers) as resp:
        event = await _next_event(resp, "decision")
    assert event["uuid"] == result.uuid
    assert [h["rule"] for h in event["shadow"]] == ["label.telemarketing"]


async def test_metrics_after_calls(env: Env) -> None:
    await env.rig.switch.place_all([BLOCKED, PASSED, BLOCKED], concurrency=3)
    async with asyncio.timeout(5):  # the probe runs every 0.2 s in these tests
        while env.web.metrics.store_latency._sum.get() == 0:
            await asyncio.sleep(0.01)
    status, text = await env.call("GET", "/metrics", Role.NOC)
    assert status == 200
    lines = set(text.splitlines())
    assert 'fsp_calls_total{rule="cid.not_allowed",trunk="ent-1",verdict="block"} 2.0' in lines
    assert 'fsp_calls_total{rule="",trunk="ent-1",verdict="pass"} 1.0' in lines
    assert "fsp_decision_latency_seconds_count 3.0" in lines
    assert "fsp_esl_connected 1.0" in lines
    assert "fsp_outbound_accepting 1.0" in lines
    assert "fsp_outbound_calls_total 3.0" in lines
    assert "fsp_counter_store_up 1.0" in lines
    assert f'fsp_policy_info{{version="{env.rig.service.policy.version}"}} 1.0' in lines
    assert any(line.startswith("fsp_counter_store_latency_seconds_count ") for line in lines)
    assert any(line.startswith("fsp_outcome_queue_depth ") for line in lines)


async def test_rates_and_series(env: Env) -> None:
    await env.rig.switch.place_all([BLOCKED, BLOCKED, PASSED], concurrency=3)
    status, rates = await env.call("GET", "/api/rates?window=300", Role.NOC)
    assert status == 200
    assert rates["by_trunk"]["ent-1"]["block"] == 2 and rates["by_trunk"]["ent-1"]["pass"] == 1
    assert rates["by_rule"]["cid.not_allowed"]["block"] == 2
    status, series = await env.call("GET", "/api/series?span=hour", Role.NOC)
    assert len(series["points"]) == 60
    assert sum(p["block"] for p in series["points"]) == 2


async def test_dashboard_and_alerts_use_exposed_metrics(env: Env, repo_dir: Path) -> None:
    import re

    await env.rig.switch.place(BLOCKED)
    # Labelled series appear once a label set was used; touch the ones no call here makes.
    env.web.metrics.reloads.labels("applied", "api").inc(0)
    env.web.metrics.fallbacks.labels("ent-1").inc(0)
    env.web.metrics.shadow.labels("label.telemarketing", "ent-1").inc(0)
    _, text = await env.call("GET", "/metrics", Role.ADMIN)
    exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
               if line and not line.startswith("#")}
    used: set[str] = set()
    for name in ("docker/grafana-dashboard.json", "docker/prometheus-alerts.yaml"):
        used |= set(re.findall(r"\bfsp_[a-z_]+", (repo_dir / name).read_text()))
    # Journal gauges appear only with a journal attached.
    missing = {m for m in used if m not in exposed and not m.startswith("fsp_journal_")}
    assert missing == set()

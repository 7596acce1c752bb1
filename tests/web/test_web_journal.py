"""Call tracing and the drill-down against a real journal in a real PostgreSQL.

The journal is attached the way production does it (``ServiceConfig(journal=DSN)``);
calls go through the lab switch, their hang-ups come back over the event socket,
and the API answers from the database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from web_support import Env, place_and_journal

from fs_plugin.lab.calls import LabCall
from fs_plugin.web.auth import Role

BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
ANSWERED = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1", talk_s=42.0)
CANCELLED = LabCall(from_user="02088881234", to="13900001112", trunk="ent-1", ring_s=3.0)


def _by_uuid(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["uuid"]: r for r in rows}


async def test_trace_by_number_returns_decision_and_outcome(jenv: Env) -> None:
    blocked, answered, cancelled = await place_and_journal(jenv, BLOCKED, ANSWERED, CANCELLED)

    status, body = await jenv.call("GET", "/api/trace?number=02155550123", Role.REGULATOR)
    assert status == 200, body
    [row] = body["rows"]
    # The regulator's desk sees numbers in full.
    assert (row["uuid"], row["from_raw"], row["callee"]) == (
        blocked.uuid, "02155550123", "13900001113")
    assert (row["switch"], row["trunk"], row["customer"]) == ("sw-j", "ent-1", "acme")
    assert (row["verdict"], row["rule"], row["cause"], row["sip_status"]) == (
        "block", "cid.not_allowed", "UNWANTED", 607)
    assert row["policy_version"] == jenv.rig.service.policy.version
    assert [t["rule"] for t in row["trail"] if t["fired"]] == ["cid.not_allowed"]
    assert (row["hangup_cause"], row["disposition"], row["answered"]) == (
        "UNWANTED", "send_refuse", False)
    assert datetime.fromisoformat(row["decided_at"]) <= datetime.fromisoformat(row["ended_at"])

    # One caller, two calls: newest first, each with how it ended.
    status, body = await jenv.call("GET", "/api/trace?number=02088881234", Role.REGULATOR)
    assert status == 200
    rows = _by_uuid(body["rows"])
    assert set(rows) == {answered.uuid, cancelled.uuid}
    assert [r["uuid"] for r in body["rows"]] == [cancelled.uuid, answered.uuid]
    talk = rows[answered.uuid]
    assert (talk["verdict"], talk["rule"], talk["hangup_cause"], talk["disposition"]) == (
        "pass", None, "NORMAL_CLEARING", "recv_bye")
    assert talk["answered"] is True and talk["billsec"] == 42
    ring = rows[cancelled.uuid]
    assert (ring["hangup_cause"], ring["disposition"], ring["answered"]) == (
        "ORIGINATOR_CANCEL", "recv_cancel", False)
    assert ring["ring_time_s"] == pytest.approx(3.0, abs=0.01)

    # The callee side matches too; trunk and a time window narrow it.
    status, body = await jenv.call("GET", "/api/trace?number=13900001111", Role.REGULATOR)
    assert [r["uuid"] for r in body["rows"]] == [answered.uuid]
    since = datetime.fromtimestamp(jenv.rig.records[0].decided_at - 1, UTC).isoformat()
    status, body = await jenv.call(
        "GET", "/api/trace", Role.REGULATOR,
        params={"trunk": "ent-1", "since": since, "limit": "2"})
    assert status == 200, body
    assert [r["uuid"] for r in body["rows"]] == [cancelled.uuid, answered.uuid]
    status, body = await jenv.call("GET", "/api/trace?trunk=cc-1", Role.REGULATOR)
    assert (status, body["rows"]) == (200, [])

    # Tracing is the regulator's (and admin's) business, not the NOC's.
    status, body = await jenv.call("GET", "/api/trace?number=02155550123", Role.NOC)
    assert status == 403


async def test_drill_down_shows_the_journal_record_masked(jenv: Env) -> None:
    [blocked] = await place_and_journal(jenv, BLOCKED)
    status, body = await jenv.call("GET", f"/api/decisions/{blocked.uuid}", Role.NOC)
    assert status == 200, body
    assert body["event"]["uuid"] == blocked.uuid and body["event"]["switch"] == "sw-j"
    assert [t["rule"] for t in body["trail"] if t["fired"]] == ["cid.not_allowed"]
    [row] = body["journal"]
    assert (row["verdict"], row["rule"], row["hangup_cause"], row["disposition"]) == (
        "block", "cid.not_allowed", "UNWANTED", "send_refuse")
    # The NOC sees masked numbers, in the journal section as everywhere else.
    assert (row["from_raw"], row["from_norm"], row["callee"]) == (
        "021****0123", "021****0123", "139****1113")
    assert "02155550123" not in str(body) and "13900001113" not in str(body)

    # Gone from memory (a restart, or pushed out by newer calls): the journal answers.
    jenv.web.records.clear()
    jenv.web.bus.recent.clear()
    status, body = await jenv.call("GET", f"/api/decisions/{blocked.uuid}", Role.NOC)
    assert status == 200, body
    assert "event" not in body and body["journal"][0]["verdict"] == "block"
    status, body = await jenv.call("GET", "/api/decisions/no-such-call", Role.NOC)
    assert status == 404


async def test_journal_state_in_health_and_metrics(jenv: Env, repo_dir: Path) -> None:
    await place_and_journal(jenv, BLOCKED, ANSWERED)
    status, health = await jenv.call("GET", "/api/health", Role.NOC)
    assert status == 200
    assert health["journal"]["decisions_written"] == 2
    assert health["journal"]["outcomes_written"] == 2
    _, text = await jenv.call("GET", "/metrics", Role.NOC)
    exposed = {line.split(" ")[0] for line in text.splitlines() if line.startswith("fsp_")}
    assert "fsp_journal_decisions_written" in exposed
    # The dashboard and the alerts use only journal series that really exist.
    used: set[str] = set()
    for name in ("docker/grafana-dashboard.json", "docker/prometheus-alerts.yaml"):
        used |= set(re.findall(r"\bfsp_journal_[a-z_]+", (repo_dir / name).read_text()))
    assert used and used <= exposed

"""Graceful stop: SIGTERM stops accepting, lets in-flight calls finish, exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.screening.model import CallFacts, Decision
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.outbound import OutboundSettings

CALL = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")


async def test_in_flight_calls_finish_when_stopping(policy_dir: Path) -> None:
    service = Service(ServiceConfig(
        policy_dir, outbound=OutboundSettings(port=0, decision_deadline_s=2.0),
        shutdown_grace_s=5.0,
    ))
    started = asyncio.Event()
    real = service.outbound._decide

    async def slow(facts: CallFacts) -> Decision:
        started.set()
        await asyncio.sleep(0.3)
        return await real(facts)

    service.outbound._decide = slow
    runner = asyncio.create_task(service.run_forever())
    async with asyncio.timeout(5):
        while service.outbound.bound_port is None:
            await asyncio.sleep(0.01)
    switch = LabSwitch("127.0.0.1", service.outbound.bound_port, socket_timeout_s=5)
    calls = [asyncio.create_task(switch.place(CALL)) for _ in range(5)]
    await started.wait()
    service.request_stop()  # what SIGTERM does
    results = await asyncio.gather(*calls)
    await asyncio.wait_for(runner, 5)
    # Every call that was in flight got its real verdict, not the dialplan's fallback.
    assert [(r.verdict, r.sip_status) for r in results] == [("block", 607)] * 5
    late = await switch.place(CALL)
    assert late.fallback == "refused"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sigterm_exits_cleanly_with_json_logs(policy_dir: Path, repo_dir: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fs_plugin.cli", "run", "--policy", str(policy_dir),
         "--listen", f"127.0.0.1:{port}", "--journal", "off"],
        cwd=repo_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        result = None
        for _ in range(200):  # until the controller listens (refused calls fall back)
            result = asyncio.run(LabSwitch("127.0.0.1", port, socket_timeout_s=5).place(CALL))
            if result.fallback != "refused":
                break
            time.sleep(0.05)
        assert result is not None and result.verdict == "block"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "service_started" in names and names[-1] == "service_stopped"
    decided = next(e for e in events if e["event"] == "call_decided")
    assert decided["rule"] == "cid.not_allowed"
    assert decided["caller"] == "021****0123"  # numbers are masked in logs by default

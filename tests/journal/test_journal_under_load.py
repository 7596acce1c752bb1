"""PostgreSQL goes away in the middle of a load of calls: the calls are not delayed, and
once it is back every decision and every outcome is in the journal — counted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult, LabSwitch
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.inbound import InboundSettings
from fs_plugin.transport.outbound import OutboundSettings

REPO = Path(__file__).resolve().parents[2]
MIX = [
    LabCall(from_user="02088881234", to="13900001111", trunk="ent-1"),
    LabCall(from_user="02155550123", to="13900001113", trunk="ent-1"),
    LabCall(from_user="02088887777", to="13900001120", trunk="ent-1", ring_s=1.0),
]


async def _load(switch: LabSwitch, n: int) -> list[CallResult]:
    return await switch.place_all([MIX[i % len(MIX)] for i in range(n)], concurrency=10)


async def test_journal_outage_under_load_loses_and_delays_nothing(
    db: Any, proxy: Any, tmp_path: Path  # tests/journal/conftest.py: Db, CuttableProxy
) -> None:
    switch = LabSwitch(socket_timeout_s=5)
    esl_port = await switch.start_event_socket(password="pw")
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0),
        inbound=InboundSettings(port=esl_port, password="pw"),
        journal=proxy.dsn(db.name), state_dir=tmp_path, switch_name="sw-load", ledger=False,
    ))
    outcomes = 0

    def count(_outcome: object) -> None:
        nonlocal outcomes
        outcomes += 1

    service.outcome_hooks.append(count)
    await service.start()
    try:
        assert service.inbound is not None and service.journal is not None
        await service.inbound.wait_connected(5)
        switch.controller_port = service.outbound.bound_port or 0
        before = await _load(switch, 150)
        proxy.cut()  # PostgreSQL unreachable: connections reset, then refused
        during = await _load(switch, 300)
        assert service.journal.stats()["spool_records"] > 0  # it really was down
        await proxy.restore()
        after = await _load(switch, 150)
        results = before + during + after
        async with asyncio.timeout(10):
            while outcomes < len(results):
                await asyncio.sleep(0.02)
            while not await service.journal.flush():
                await asyncio.sleep(0.1)
    finally:
        await service.stop()
        await switch.stop()

    # Not delayed: every call got its verdict from the controller within the decision
    # deadline (a late one is a fallback). How fast is for bench/bench_journal.py to say;
    # a wall-clock bound here would only measure how busy the test machine is.
    assert all(r.fallback is None and r.verdict in ("pass", "block", "warn") for r in results)
    assert service.outbound.stats["fallbacks"] == 0
    # Nothing lost, nothing doubled.
    uuids = [r.uuid for r in results]
    decisions = await db.fetchval(
        "SELECT count(*) FROM journal_decision WHERE uuid = ANY($1::text[])", uuids)
    outcome_rows = await db.fetchval(
        "SELECT count(*) FROM journal_outcome WHERE uuid = ANY($1::text[])", uuids)
    assert (decisions, outcome_rows) == (600, 600)

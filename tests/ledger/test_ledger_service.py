"""The ledger takes effect on a running controller without a restart (LISTEN/NOTIFY):
a blacklisting blocks the customer's calls, a lift lets them through again, and an
expired qualification suspends the customer's trunks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from fs_plugin.journal.credit import Credit
from fs_plugin.journal.ledger import KINDS, Ledger, parse_row
from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.outbound import OutboundSettings

REPO = Path(__file__).resolve().parents[2]
CALL = LabCall(from_user="02088881234", to="13900001111", trunk="ent-1")  # customer acme


async def _verdict_after_change(switch: LabSwitch, service: Service, old: str) -> tuple[str, str]:
    async with asyncio.timeout(10):  # the NOTIFY travels to the controller's listener
        while service.policy.version == old:
            await asyncio.sleep(0.02)
    result = await switch.place(CALL)
    return result.verdict, result.rule or ""


async def test_ledger_changes_reach_the_running_controller(dsn: str, tmp_path: Path) -> None:
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal=dsn,
        state_dir=tmp_path, switch_name="sw-ledger",
    ))
    await service.start()
    desk = await Ledger.open(dsn)  # the regulator's desk, another connection
    try:
        assert service.ledger is not None
        switch = LabSwitch("127.0.0.1", service.outbound.bound_port or 0, socket_timeout_s=5)
        assert (await switch.place(CALL)).verdict == "pass"

        version = service.policy.version
        await Credit(desk).blacklist("acme", "repeated caller-ID spoofing")
        assert await _verdict_after_change(switch, service, version) == (
            "block", "credit.blacklisted")

        version = service.policy.version
        await Credit(desk).lift("acme", "rectified")
        assert await _verdict_after_change(switch, service, version) == ("pass", "")

        version = service.policy.version
        row = parse_row(KINDS["customers"], {"id": "acme", "name": "Acme",
                                             "licence_until": "2020-01-01"})
        await desk.upsert("customers", [row])
        verdict, rule = await _verdict_after_change(switch, service, version)
        assert (verdict, rule) == ("block", "contract.suspended")
        assert "qualification" in (await switch.place(CALL)).reason.lower()  # type: ignore[union-attr]
    finally:
        await desk.close()
        await service.stop()


async def test_repeated_spoofing_earns_a_violation_and_a_blacklisting(
    dsn: str, tmp_path: Path
) -> None:
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal=dsn,
        state_dir=tmp_path, switch_name="sw-credit", credit_threshold=5,
        credit_blacklist_after=1, credit_scan_period_s=0,
    ))
    await service.start()
    try:
        assert service.journal is not None
        switch = LabSwitch("127.0.0.1", service.outbound.bound_port or 0, socket_timeout_s=5)
        started = service.clock.time()
        spoofed = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
        for _ in range(4):
            assert (await switch.place(spoofed)).rule == "cid.not_allowed"
        await service.journal.flush()
        # Below the threshold: nothing recorded, nothing changes.
        assert await service.scan_credit(started - 1, service.clock.time() + 1) == (0, [])
        assert (await switch.place(spoofed)).rule == "cid.not_allowed"
        await service.journal.flush()
        version = service.policy.version
        period = (started - 1, service.clock.time() + 1)
        assert await service.scan_credit(*period) == (1, ["acme"])
        # The same period scanned again (another switch, a restart) records nothing twice.
        assert await service.scan_credit(*period) == (0, [])
        # Joint punishment: acme's legitimate calls are now refused, on every trunk.
        assert await _verdict_after_change(switch, service, version) == (
            "block", "credit.blacklisted")
    finally:
        await service.stop()


async def test_ledger_contracts_and_numbers_reach_the_running_controller(
    dsn: str, tmp_path: Path
) -> None:
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal=dsn,
        state_dir=tmp_path, switch_name="sw-ledger-terms",
    ))
    await service.start()
    desk = await Ledger.open(dsn)
    try:
        switch = LabSwitch("127.0.0.1", service.outbound.bound_port or 0, socket_timeout_s=5)
        hotline = LabCall(from_user="4008123500", to="13900001111", trunk="ent-1")
        assert (await switch.place(hotline)).rule == "cid.not_allowed"
        assert (await switch.place(CALL)).verdict == "pass"

        # One import: the customer, its contract (mobiles only) and a 400 range.
        version = service.policy.version
        await desk.import_rows({
            "customers": [parse_row(KINDS["customers"], {"id": "acme", "name": "Acme"})],
            "contracts": [parse_row(KINDS["contracts"], {
                "customer": "acme", "reference": "HT-9", "targets": "{classes: [fixed]}"})],
            "numbers": [parse_row(KINDS["numbers"], {
                "resource": "4008123000-4008123999", "customer": "acme"})],
        })
        assert await _verdict_after_change(switch, service, version) == (
            "block", "contract.targets")
        refused = await switch.place(CALL)
        assert "ledger contract HT-9" in (refused.reason or "")
        to_fixed = LabCall(from_user="4008123500", to="02166667777", trunk="ent-1")
        assert (await switch.place(to_fixed)).verdict == "pass"  # the ledger's 400 range

        version = service.policy.version
        await desk.delete("contracts", "acme")
        assert await _verdict_after_change(switch, service, version) == ("pass", "")
    finally:
        await desk.close()
        await service.stop()


async def test_a_ledger_unavailable_at_start_is_taken_on_when_it_answers(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to be opened once, at start: a database still starting (compose brings
    # them up together) left the ledger off until the controller was restarted.
    import fs_plugin.service as service_module
    from fs_plugin.errors import StorageError

    real_open = Ledger.open
    refusals = [StorageError("connection refused"), StorageError("the database is starting")]

    async def open_when_ready(*args: Any, **kwargs: Any) -> Ledger:
        if refusals:
            raise refusals.pop(0)
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(service_module.Ledger, "open", open_when_ready)
    monkeypatch.setattr(service_module, "LEDGER_RETRY_MIN_S", 0.01)
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal=dsn,
        state_dir=tmp_path, switch_name="sw-ledger-late",
    ))
    with capture_logs() as logs:
        await service.start()
        try:
            assert service.ledger is None and "+L" not in service.policy.version
            async with asyncio.timeout(10):
                while service.ledger is None:
                    await asyncio.sleep(0.01)
            assert "+L" in service.policy.version
            switch = LabSwitch("127.0.0.1", service.outbound.bound_port or 0,
                               socket_timeout_s=5)
            assert (await switch.place(CALL)).verdict == "pass"
        finally:
            await service.stop()
    events = [e["event"] for e in logs
              if e["event"] in ("ledger_unavailable", "ledger_connected")]
    assert events == ["ledger_unavailable", "ledger_unavailable", "ledger_connected"]


async def test_stop_ends_the_ledger_retries(
    dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fs_plugin.service as service_module
    from fs_plugin.errors import StorageError

    async def never(*args: Any, **kwargs: Any) -> Ledger:
        raise StorageError("connection refused")

    monkeypatch.setattr(service_module.Ledger, "open", never)
    monkeypatch.setattr(service_module, "LEDGER_RETRY_MIN_S", 0.01)
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal=dsn,
        state_dir=tmp_path, switch_name="sw-ledger-never",
    ))
    await service.start()
    await asyncio.sleep(0.05)
    retry = service._ledger_retry
    assert retry is not None and not retry.done()
    async with asyncio.timeout(10):
        await service.stop()
    assert retry.cancelled() and service.ledger is None

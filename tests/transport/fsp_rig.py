"""The real controller and the lab switch wired together on loopback, over TCP."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fs_plugin.clock import Clock
from fs_plugin.counters import CounterStore
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.screening.model import Outcome
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.health import HealthSettings
from fs_plugin.transport.inbound import InboundSettings
from fs_plugin.transport.outbound import DecisionRecord, OutboundSettings

ESL_PASSWORD = "lab-test-password"


@dataclass
class Rig:
    service: Service
    switch: LabSwitch
    outcomes: list[Outcome] = field(default_factory=list)
    records: list[DecisionRecord] = field(default_factory=list)

    @property
    def port(self) -> int:
        port = self.service.outbound.bound_port
        assert port is not None
        return port


async def make_rig(
    policy: Path,
    *,
    inbound: bool = True,
    deadline_s: float = 0.25,
    clock: Clock | None = None,
    counters: CounterStore | None = None,
    counters_url: str = "memory://",
    **health: Any,
) -> Rig:
    switch = LabSwitch(socket_timeout_s=3.0)
    inbound_settings = None
    if inbound:
        esl_port = await switch.start_event_socket(password=ESL_PASSWORD)
        inbound_settings = InboundSettings(
            port=esl_port, password=ESL_PASSWORD, backoff_initial_s=0.05, backoff_max_s=0.2
        )
    service = Service(ServiceConfig(
        policy,
        outbound=OutboundSettings(port=0, decision_deadline_s=deadline_s),
        inbound=inbound_settings,
        health=HealthSettings(**health),
        shutdown_grace_s=2.0,
        counters_url=counters_url,
        counters_timeout_s=min(0.15, deadline_s / 2),
    ), clock=clock, counters=counters)
    rig = Rig(service, switch)
    service.outcome_hooks.append(rig.outcomes.append)
    service.outbound.add_listener(rig.records.append)
    await service.start()
    if service.inbound is not None:
        await service.inbound.wait_connected(5.0)
    switch.controller_port = rig.port
    return rig

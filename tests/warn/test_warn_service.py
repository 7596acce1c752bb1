"""Flash SMS from a running controller: one warning per callee and caller per day,
whatever form the caller's number was presented in."""

from __future__ import annotations

from pathlib import Path

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.outbound import OutboundSettings
from fs_plugin.warn.fake_gateway import FakeSmsGateway

REPO = Path(__file__).resolve().parents[2]


async def test_one_warning_per_pair_whatever_the_number_forms(
    fake_gateway: FakeSmsGateway, tmp_path: Path
) -> None:
    # The labelled real-estate number of the example policy, presented domestic, then
    # with +86 to the callee in +86 form: the same pair, so one flash SMS that day.
    service = Service(ServiceConfig(
        REPO / "policies", outbound=OutboundSettings(port=0), journal="off",
        state_dir=tmp_path, sms_gateway_url=fake_gateway.url,
    ))
    await service.start()
    try:
        switch = LabSwitch("127.0.0.1", service.outbound.bound_port or 0, socket_timeout_s=5)
        first = await switch.place(LabCall(from_user="02088887777", to="13900001120",
                                           trunk="ent-1"))
        again = await switch.place(LabCall(from_user="+862088887777", to="+8613900001120",
                                           trunk="ent-1"))
        assert (first.verdict, again.verdict) == ("warn", "warn")
        assert service.sms is not None and await service.sms.flush(5.0)
        assert fake_gateway.received == 1
        (sent,) = fake_gateway.requests
        assert sent.payload["to"] == "13900001120"
        assert "020****7777" in sent.payload["text"]
    finally:
        await service.stop()

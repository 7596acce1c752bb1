"""Test support: the controller, the lab switch and its SIP front on loopback, and a
minimal SIP caller (UDP or TCP) that sends hand-written requests and collects replies."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fs_plugin.lab.sip_front import SipFront, SipFrontSettings
from fs_plugin.lab.switch import LabSwitch
from fs_plugin.replay.sip import SipMessage, StreamFramer, parse_message
from fs_plugin.screening.model import Outcome
from fs_plugin.service import Service, ServiceConfig
from fs_plugin.transport.inbound import InboundSettings
from fs_plugin.transport.outbound import DecisionRecord, OutboundSettings

ESL_PASSWORD = "lab-sip-test"
_numbers = itertools.count(1)


@dataclass
class SipLab:
    service: Service
    switch: LabSwitch
    front: SipFront
    outcomes: list[Outcome] = field(default_factory=list)
    records: list[DecisionRecord] = field(default_factory=list)

    async def stop(self) -> None:
        await self.front.stop()
        await self.service.stop()
        await self.switch.stop()

    async def wait_outcomes(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.outcomes) < count:
                await asyncio.sleep(0.01)


async def make_lab(policy: Path, *, controller: bool = True, **front: Any) -> SipLab:
    switch = LabSwitch(socket_timeout_s=3.0)
    esl_port = await switch.start_event_socket(password=ESL_PASSWORD)
    service = Service(ServiceConfig(
        policy, outbound=OutboundSettings(port=0),
        inbound=InboundSettings(port=esl_port, password=ESL_PASSWORD, backoff_initial_s=0.05,
                                backoff_max_s=0.2),
        shutdown_grace_s=1.0,
    ))
    lab_front = SipFront(switch, SipFrontSettings(
        on_error_by_trunk=MappingProxyType(
            {t: v.on_error.value for t, v in service.policy.snapshot.trunks.items()}
        ),
        **front,
    ))
    lab = SipLab(service, switch, lab_front)
    service.outcome_hooks.append(lab.outcomes.append)
    service.outbound.add_listener(lab.records.append)
    if controller:
        await service.start()
        assert service.inbound is not None
        await service.inbound.wait_connected(5.0)
        switch.controller_port = service.outbound.bound_port or 0
    else:
        # Nothing listens there: the socket app's connection is refused at once.
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        switch.controller_port = int(probe.sockets[0].getsockname()[1])
        probe.close()
        await probe.wait_closed()
    await lab_front.start()
    return lab


def invite(
    caller: str,
    callee: str,
    *,
    port: int,
    local_port: int,
    transport: str = "UDP",
    pai: str | None = None,
    trunk: str | None = "ent-1",
    call_id: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[str, bytes]:
    n = next(_numbers)
    call_id = call_id or f"{n}-test@127.0.0.1"
    sdp = "v=0\r\no=u 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
          "m=audio 6000 RTP/AVP 0\r\n"
    lines = [
        f"INVITE sip:{callee}@127.0.0.1:{port} SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch=z9hG4bK-{n}-inv",
        f'From: "{caller}" <sip:{caller}@127.0.0.1:{local_port}>;tag=t{n}',
        f"To: <sip:{callee}@127.0.0.1:{port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:{caller}@127.0.0.1:{local_port}>",
        "Max-Forwards: 70",
    ]
    if pai is not None:
        lines.append(f"P-Asserted-Identity: <sip:{pai}@127.0.0.1>")
    if trunk is not None:
        lines.append(f"X-Fsp-Trunk: {trunk}")
    lines += list(extra)
    lines += ["Content-Type: application/sdp", f"Content-Length: {len(sdp)}"]
    return call_id, ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()


def in_dialog(method: str, request: bytes, response: SipMessage, cseq: int) -> bytes:
    """ACK/BYE/CANCEL for the call of ``request`` (an INVITE), using the To of ``response``."""
    inv = parse_message(request)
    to = response.header("to") if method != "CANCEL" else inv.header("to")
    via = inv.header("via") or ""
    if method == "BYE" or (method == "ACK" and response.status < 300):
        via = via.replace("-inv", f"-{method.lower()}")
    lines = [
        f"{method} {inv.request_uri} SIP/2.0",
        f"Via: {via}",
        f"From: {inv.header('from')}",
        f"To: {to}",
        f"Call-ID: {inv.call_id}",
        f"CSeq: {cseq} {method}",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _UdpCaller(asyncio.DatagramProtocol):
    def __init__(self, inbox: asyncio.Queue[SipMessage]) -> None:
        self.inbox = inbox

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.inbox.put_nowait(parse_message(data))


class Caller:
    """A SIP caller on loopback; ``recv()`` returns the next message the switch sent."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[SipMessage] = asyncio.Queue(1000)
        self.local_port = 0
        self.transport = "UDP"
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    @classmethod
    async def udp(cls, port: int) -> Caller:
        self = cls()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpCaller(self.inbox), local_addr=("127.0.0.1", 0),
            remote_addr=("127.0.0.1", port),
        )
        self._udp = transport
        self.local_port = int(transport.get_extra_info("sockname")[1])
        return self

    @classmethod
    async def tcp(cls, port: int) -> Caller:
        self = cls()
        self.transport = "TCP"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        self._writer = writer
        self.local_port = int(writer.get_extra_info("sockname")[1])

        async def read() -> None:
            framer = StreamFramer()
            while data := await reader.read(65536):
                for item in framer.feed(data):
                    assert isinstance(item, bytes)
                    self.inbox.put_nowait(parse_message(item))

        self._reader_task = asyncio.get_running_loop().create_task(read())
        return self

    def send(self, data: bytes) -> None:
        if self._udp is not None:
            self._udp.sendto(data)
        else:
            assert self._writer is not None
            self._writer.write(data)

    async def recv(self, timeout_s: float = 5.0) -> SipMessage:
        return await asyncio.wait_for(self.inbox.get(), timeout_s)

    async def until_final(self, timeout_s: float = 5.0) -> tuple[list[int], SipMessage]:
        """Responses up to the INVITE's final one: (provisional statuses, final)."""
        seen: list[int] = []
        while True:
            msg = await self.recv(timeout_s)
            cseq = msg.cseq
            if cseq is not None and cseq[1] == "INVITE":
                if msg.status >= 200:
                    return seen, msg
                seen.append(msg.status)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib_suppress():
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib_suppress(asyncio.CancelledError):
                await self._reader_task


def contextlib_suppress(*excs: type[BaseException]) -> Any:
    import contextlib

    return contextlib.suppress(ConnectionError, OSError, *excs)

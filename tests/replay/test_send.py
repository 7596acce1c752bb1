"""Send mode against a tiny fake SIP responder on loopback."""

from __future__ import annotations

import asyncio
import csv
import socket
import threading
from collections import defaultdict
from pathlib import Path
from typing import cast

import pytest

from fs_plugin.cli import main
from fs_plugin.replay import read_trace
from fs_plugin.replay.send import SendSettings, send_calls
from fs_plugin.replay.sip import parse_message
from fs_plugin.replay.synth import scripted_call, write_pcap

T0 = 1_795_000_000.0


class FakeTarget:
    """Answers by the callee's last digit: 1 answers (200), 2 is busy (486), 3 rings
    until CANCEL (then 487), 5 answers and hangs up itself (sends BYE after the ACK)."""

    def __init__(self) -> None:
        self.received: dict[str, list[str]] = defaultdict(list)

    def handle(self, data: bytes) -> list[bytes]:
        m = parse_message(data)
        call_id = m.call_id or ""
        assert m.cseq is not None
        self.received[call_id].append(m.method or str(m.status))
        if not m.is_request:
            return []
        user = m.request_uri.split("@")[0].removeprefix("sip:")
        if m.method == "INVITE":
            if len(self.received[call_id]) > 1:
                return []  # a retransmission: already answered
            out = [self._reply(m, 100, "Trying", tag=False)]
            if user.endswith("2"):
                return [*out, self._reply(m, 486, "Busy Here")]
            out.append(self._reply(m, 180, "Ringing"))
            if user.endswith("3"):
                return out
            return [*out, self._reply(m, 200, "OK")]
        if m.method == "CANCEL":
            return [self._reply(m, 200, "OK"), self._reply(m, 487, "Request Terminated",
                                                            cseq="1 INVITE")]
        if m.method == "ACK" and user.endswith("5") and self.received[call_id].count("ACK") == 1:
            return [self._bye(m)]
        if m.method == "BYE":
            return [self._reply(m, 200, "OK")]
        return []

    @staticmethod
    def _reply(m: object, status: int, reason: str, *, tag: bool = True,
               cseq: str | None = None) -> bytes:
        from fs_plugin.replay.sip import SipMessage

        assert isinstance(m, SipMessage)
        to = m.header("to") or ""
        if tag and ";tag=" not in to:
            to += ";tag=target1"
        lines = [f"SIP/2.0 {status} {reason}", *(f"Via: {v}" for v in m.header_values("via")),
                 f"From: {m.header('from')}", f"To: {to}", f"Call-ID: {m.call_id}",
                 f"CSeq: {cseq or m.header('cseq')}", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @staticmethod
    def _bye(ack: object) -> bytes:
        from fs_plugin.replay.sip import SipMessage

        assert isinstance(ack, SipMessage)
        lines = ["BYE sip:caller@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKt",
                 f"From: {ack.header('to')}", f"To: {ack.header('from')}",
                 f"Call-ID: {ack.call_id}", "CSeq: 1 BYE", "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, target: FakeTarget) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        for reply in self.target.handle(data):
            self.transport.sendto(reply, addr)


def _trace(path: Path) -> Path:
    calls = [
        scripted_call(0, caller="13312340001", callee="13900000001", at=T0, kind="answered",
                      talk_s=0.0),
        scripted_call(1, caller="13312340002", callee="13900000002", at=T0 + 1,
                      kind="rejected"),
        scripted_call(2, caller="13312340003", callee="13900000003", at=T0 + 2,
                      kind="ring_cancel"),
        scripted_call(3, caller="13312340005", callee="13900000005", at=T0 + 3,
                      kind="answered", talk_s=0.0, callee_hangs_up=True),
    ]
    write_pcap(path, calls)
    return path


async def test_send_mode_against_fake_target(tmp_path: Path) -> None:
    target = FakeTarget()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(target),
                                                       local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        with read_trace(_trace(tmp_path / "t.pcap")) as result:
            calls = list(result)
        results = await asyncio.wait_for(
            send_calls(calls, SendSettings("127.0.0.1", port, speed=0.0,
                                           final_timeout_s=5.0)), 10.0)
    finally:
        transport.close()
    by_callee = {r.callee: r for r in results}
    assert [r.callee for r in results] == ["13900000001", "13900000002", "13900000003",
                                           "13900000005"]
    answered = by_callee["13900000001"]
    assert (answered.status, answered.provisional, answered.sent) == (
        200, [100, 180], ["INVITE", "ACK", "BYE"])
    assert answered.latency_s is not None and answered.latency_s < 5.0
    busy = by_callee["13900000002"]
    assert (busy.status, busy.reason, busy.sent) == (486, "Busy Here", ["INVITE", "ACK"])
    cancelled = by_callee["13900000003"]
    assert (cancelled.status, cancelled.sent) == (487, ["INVITE", "CANCEL", "ACK"])
    assert cancelled.traced_status == 487
    # What the target saw, per dialog, in order; Call-IDs carry a per-run prefix.
    seen = {cid.split("-")[1]: methods for cid, methods in target.received.items()}
    assert seen["0"] == ["INVITE", "ACK", "BYE"]
    assert seen["1"] == ["INVITE", "ACK"]
    assert seen["2"] == ["INVITE", "CANCEL", "ACK"]
    assert seen["3"] == ["INVITE", "ACK", "200"]  # the target hung up; we answered its BYE
    assert by_callee["13900000005"].received_bye
    assert by_callee["13900000005"].sent == ["INVITE", "ACK"]
    assert all(cid.startswith("r") and cid.endswith("@203.0.113.10")
               for cid in target.received)


def _serve(sock: socket.socket, target: FakeTarget, stop: threading.Event) -> None:
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(65535)
        except TimeoutError:
            continue
        for reply in target.handle(data):
            sock.sendto(reply, addr)


def test_send_mode_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = FakeTarget()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, target, stop), daemon=True)
    thread.start()
    try:
        out_csv = tmp_path / "sent.csv"
        code = main(["replay", str(_trace(tmp_path / "t.pcap")), "--send",
                     f"127.0.0.1:{sock.getsockname()[1]}", "--speed", "0",
                     "--send-timeout", "5", "--csv", str(out_csv)])
    finally:
        stop.set()
        thread.join(5.0)
        sock.close()
    assert code == 0
    out = capsys.readouterr().out
    assert "4 calls sent" in out
    with out_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["callee"], r["status"]) for r in rows] == [
        ("13900000001", "200"), ("13900000002", "486"), ("13900000003", "487"),
        ("13900000005", "200"),
    ]


def test_bad_send_target_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(_trace(tmp_path / "t.pcap")), "--send", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err

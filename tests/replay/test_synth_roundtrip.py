"""Synthetic pcaps: what the generator wrote is what the reader finds, call by call."""

from __future__ import annotations

import socket
from pathlib import Path

import dpkt  # dpkt ships no type information
import pytest

from fs_plugin.replay import EndedBy, read_trace
from fs_plugin.replay.synth import SWITCH_IP, synth_calls, write_pcap


def test_round_trip_facts_and_timing(tmp_path: Path) -> None:
    expected = list(synth_calls(600, seed=7, cps=50.0))
    path = tmp_path / "synth.pcap"
    packets = write_pcap(path, expected)
    assert packets > 600 * 4
    with read_trace(path) as result:
        calls = {c.call_id: c for c in result}
    assert not result.skipped
    assert len(calls) == len(expected)
    kinds = {e.kind for e in expected}
    assert kinds == {"answered", "ring_cancel", "rejected"}
    assert any(e.diversion for e in expected) and any(e.pai for e in expected)
    for e in expected:
        c = calls[e.call_id]
        assert (c.from_user, c.from_display, c.pai, c.diversion, c.callee) == (
            e.from_user,
            e.from_display,
            e.pai,
            e.diversion,
            e.callee,
        )
        assert (c.src_ip, c.src_port, c.dst_ip, c.user_agent) == (
            e.src_ip,
            e.src_port,
            SWITCH_IP,
            e.user_agent,
        )
        assert c.final_status == e.final_status
        assert c.invite_time == pytest.approx(e.invite_time, abs=1e-6)
        assert c.final_time == pytest.approx(e.final_time, abs=1e-6)
        assert c.end_time == pytest.approx(e.end_time, abs=1e-6)
        assert c.end_method == e.end_method
        assert (c.ended_by.value if c.ended_by else None) == e.ended_by
        if e.ringing_time is None:
            assert c.ringing_time is None
        else:
            assert c.ringing_time == pytest.approx(e.ringing_time, abs=1e-6)
        if e.kind == "ring_cancel":
            assert e.ringing_time is not None
            assert c.ring_time_s == pytest.approx(e.end_time - e.ringing_time, abs=2e-6)
            assert c.ended_by is EndedBy.CALLER
        else:
            assert c.ring_time_s is None
        facts = c.to_facts()
        assert (facts.uuid, facts.from_user, facts.destination) == (
            e.call_id,
            e.from_user,
            e.callee,
        )
        assert (facts.pai, facts.diversion, facts.network_ip, facts.trunk_hint) == (
            e.pai,
            e.diversion,
            e.src_ip,
            None,
        )
        assert facts.timestamp_us == round(e.invite_time * 1_000_000)


def test_calls_stream_before_the_trace_ends(tmp_path: Path) -> None:
    path = tmp_path / "long.pcap"
    write_pcap(path, synth_calls(400, seed=3, cps=5.0))  # about 80 s of traffic
    with read_trace(path) as result:
        first = next(iter(result))
        # Handed out while most of the file is still unread: grouping keeps only open calls.
        assert result.stats.calls == 1
        assert first.call_id.startswith("synth-3-")
        rest = list(result)
    assert len(rest) == 399
    assert result.stats.frames > 1000


def _tcp_frame(src: str, dst: str, seq: int, data: bytes, *, v6: bool = False) -> bytes:
    tcp = dpkt.tcp.TCP(sport=5060, dport=5060, seq=seq, flags=dpkt.tcp.TH_ACK, data=data)
    if v6:
        ip6 = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src),
            dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=6,
            hlim=64,
            data=tcp,
        )
        ip6.plen = len(tcp)
        return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP6, data=ip6))
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, data=tcp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


INVITE = (
    b"INVITE sip:13900001111@10.1.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 10.2.0.2:5060;branch=z9hG4bK1\r\n"
    b"From: <sip:+8602088886666@10.2.0.2>;tag=a\r\n"
    b"To: <sip:13900001111@10.1.0.1>\r\n"
    b"Call-ID: tcp-1\r\nCSeq: 1 INVITE\r\n"
    b"Diversion: <sip:4008123123@10.9.9.9>;reason=unconditional;counter=1\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)
RINGING = (
    b"SIP/2.0 180 Ringing\r\nCall-ID: tcp-1\r\nCSeq: 1 INVITE\r\n"
    b"From: <sip:+8602088886666@10.2.0.2>;tag=a\r\nTo: <sip:13900001111@10.1.0.1>;tag=b\r\n"
    b"Content-Length: 0\r\n\r\n"
)
CANCEL = (
    b"CANCEL sip:13900001111@10.1.0.1 SIP/2.0\r\nCall-ID: tcp-1\r\nCSeq: 1 CANCEL\r\n"
    b"From: <sip:+8602088886666@10.2.0.2>;tag=a\r\nTo: <sip:13900001111@10.1.0.1>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
TERMINATED = RINGING.replace(b"180 Ringing", b"487 Request Terminated")


@pytest.mark.parametrize("v6", [False, True])
def test_tcp_reorder_retransmit_split_and_pipelined(tmp_path: Path, v6: bool) -> None:
    a, b = ("2001:db8::2", "2001:db8::1") if v6 else ("10.2.0.2", "10.1.0.1")
    up = INVITE + CANCEL  # the caller's stream; two messages
    frames = [
        (1.0, _tcp_frame(a, b, 1000, up[:50], v6=v6)),
        (1.1, _tcp_frame(a, b, 1000 + 120, up[120:], v6=v6)),  # arrives before the middle
        (1.2, _tcp_frame(a, b, 1000 + 50, up[50:120], v6=v6)),
        (1.3, _tcp_frame(a, b, 1000, up[:50], v6=v6)),  # a retransmission
        (1.5, _tcp_frame(b, a, 7000, RINGING + TERMINATED, v6=v6)),  # pipelined responses
    ]
    path = tmp_path / "tcp.pcap"
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    with read_trace(path) as result:
        (call,) = list(result)
    assert not result.skipped
    assert result.stats.methods["INVITE"] == 1
    assert (call.from_user, call.callee, call.src_ip) == ("+8602088886666", "13900001111", a)
    assert call.diversion == "<sip:4008123123@10.9.9.9>;reason=unconditional;counter=1"
    assert call.to_facts().diversion == call.diversion
    # The CANCEL completed with the segment at 1.2 s; the 487 came at 1.5 s.
    assert (call.final_status, call.end_method, call.end_time) == (487, "CANCEL", 1.2)
    assert call.ringing_time == 1.5
    assert call.transport == "tcp"


def test_ipv4_fragments_reassembled(tmp_path: Path) -> None:
    udp = dpkt.udp.UDP(sport=5060, dport=5060, data=INVITE.replace(b"TCP", b"UDP"))
    udp.ulen = len(udp)
    whole = bytes(udp)
    pieces = [whole[:96], whole[96:200], whole[200:]]  # offsets are multiples of 8
    path = tmp_path / "frag.pcap"
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, snaplen=65535)
        for ts, index in zip((5.0, 6.0, 7.0), (2, 0, 1), strict=True):  # out of order
            ip = dpkt.ip.IP(
                src=socket.inet_aton("10.2.0.2"),
                dst=socket.inet_aton("10.1.0.1"),
                p=17,
                id=77,
                data=pieces[index],
            )
            ip.mf = 1 if index < 2 else 0
            ip.offset = sum(len(p) for p in pieces[:index]) // 8  # dpkt counts 8-byte units
            ip.len = len(ip)
            eth = dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
            writer.writepkt(bytes(eth), ts=ts)
    with read_trace(path) as result:
        (call,) = list(result)
    assert not result.skipped
    assert (call.call_id, call.from_user, call.transport) == ("tcp-1", "+8602088886666", "udp")
    assert call.invite_time == 7.0  # complete when the last piece arrived

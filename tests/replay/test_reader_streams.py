"""Captures whose packets the reader must not take in file order or with one clock.

A TCP segment lost before the capture point comes back as a retransmission after the
segments that followed it; a pcapng file may describe several interfaces, each with
its own link type and timestamp resolution. Both are built by hand here.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import dpkt
import pytest

from fs_plugin.replay.reader import read_trace
from fs_plugin.replay.synth import _SDP, _Dialog, _frame, scripted_call

CALLER, SWITCH = "203.0.113.10", "198.51.100.1"


def _tcp_frame(sport: int, dport: int, seq: int, payload: bytes, flags: int) -> bytes:
    src, dst = (CALLER, SWITCH) if dport == 5060 else (SWITCH, CALLER)
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=1, flags=flags, data=payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, ttl=64, data=tcp)
    ip.len = len(ip)
    eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=0x0800, data=ip)
    return bytes(eth)


def _write_tcp(path: Path, segments: list[tuple[float, int, bytes]]) -> None:
    """Caller → switch segments ``(time, sequence number, payload)`` after a SYN (ISN 99)."""
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle)
        writer.writepkt(_tcp_frame(40000, 5060, 99, b"", dpkt.tcp.TH_SYN), ts=999.0)
        for ts, seq, payload in segments:
            flags = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH
            writer.writepkt(_tcp_frame(40000, 5060, seq, payload, flags), ts=ts)


def _ring_cancel() -> tuple[bytes, bytes]:
    call = scripted_call(1, caller="111", callee="222", at=1000.0, kind="ring_cancel")
    dialog = _Dialog(call)
    invite = dialog.request("INVITE", 1, to_tag=False, body=_SDP.format(ip=CALLER))
    return invite, dialog.request("CANCEL", 1, to_tag=False)


def test_tcp_retransmitted_invite_after_the_next_message_is_kept(tmp_path: Path) -> None:
    # The INVITE's segment was lost before the capture point: the CANCEL behind it is
    # captured first, then the INVITE's retransmission fills the hole. The receiver
    # read INVITE then CANCEL; the reader used to drop the INVITE as "already seen".
    invite, cancel = _ring_cancel()
    path = tmp_path / "reordered.pcap"
    _write_tcp(path, [(1001.1, 100 + len(invite), cancel), (1001.3, 100, invite)])
    with read_trace(path) as result:
        calls = list(result)
    assert [(c.from_user, c.callee, c.end_method) for c in calls] == [("111", "222", "CANCEL")]
    assert result.stats.methods == {"INVITE": 1, "CANCEL": 1}
    assert not result.skip_counts


@pytest.mark.parametrize("later_traffic", [False, True])
def test_tcp_gap_never_filled_is_named_and_the_rest_read(
    tmp_path: Path, later_traffic: bool
) -> None:
    # The INVITE is lost in the capture for good: the CANCEL is still read (at the end
    # of the trace, or once the flow has waited long enough) and the gap is named.
    invite, cancel = _ring_cancel()
    path = tmp_path / "lossy.pcap"
    segments = [(1001.1, 100 + len(invite), cancel)]
    if later_traffic:
        second = 100 + len(invite) + len(cancel)
        segments.append((1010.0, second, b"\r\n\r\n"))
    _write_tcp(path, segments)
    with read_trace(path) as result:
        assert list(result) == []
    assert result.stats.methods == {"CANCEL": 1}
    assert result.skip_counts == {"tcp_gap": 1}


def test_a_message_held_behind_a_lost_gap_keeps_its_capture_time(tmp_path: Path) -> None:
    # A keep-alive is lost in the capture; the INVITE behind it waits for the gap to be
    # filled, and when the reader gives up (later traffic past the wait) the INVITE is
    # still timed when it was captured, not when it was released.
    invite, _ = _ring_cancel()
    path = tmp_path / "lossy.pcap"
    _write_tcp(path, [(1001.1, 104, invite), (1010.0, 104 + len(invite), b"\r\n\r\n")])
    with read_trace(path) as result:
        calls = list(result)
    assert [c.invite_time for c in calls] == [1001.1]
    assert result.skip_counts == {"tcp_gap": 1}


# -- pcapng with several interfaces ------------------------------------------------------


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack("<II", kind, size) + body + struct.pack("<I", size)


def _idb(linktype: int, tsresol: int | None) -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
    return _block(1, struct.pack("<HHI", linktype, 0, 65535) + options)


def _epb(interface: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack("<IIIII", interface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return _block(6, head + frame)


def _raw_ip(src: str, dst: str, payload: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=5060, dport=5060, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=17, ttl=64, data=udp)
    ip.len = len(ip)
    return bytes(ip)


@pytest.mark.parametrize("second_link", [1, 101], ids=["ethernet", "raw-ip"])
def test_pcapng_interfaces_keep_their_own_link_and_clock(
    tmp_path: Path, second_link: int
) -> None:
    # dumpcap -i eth0 -i tun0: interface 0 is Ethernet in microseconds, interface 1
    # (Ethernet or raw IP) in nanoseconds. The 200 OK captured on interface 1 used to
    # be decoded with interface 0's link type and clock: lost, or 1000x too late.
    call = scripted_call(1, caller="111", callee="222", at=1000.0, kind="answered")
    dialog = _Dialog(call)
    invite = dialog.request("INVITE", 1, to_tag=False, body=_SDP.format(ip=CALLER))
    ok = dialog.response(200, 1, "INVITE", to_tag=True)
    bye = dialog.request("BYE", 2, to_tag=True)
    answer = (
        _frame(SWITCH, 5060, CALLER, 5060, ok) if second_link == 1 else _raw_ip(SWITCH, CALLER, ok)
    )
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    data = shb + _idb(1, None) + _idb(second_link, 9)
    data += _epb(0, 1_000_000_000, _frame(CALLER, 5060, SWITCH, 5060, invite))
    data += _epb(1, 1_005_000_000_000, answer)
    data += _epb(0, 1_035_000_000, _frame(CALLER, 5060, SWITCH, 5060, bye))
    path = tmp_path / "two-interfaces.pcapng"
    path.write_bytes(data)
    with read_trace(path) as result:
        calls = list(result)
    assert [(c.answer_time, c.end_time, c.end_method) for c in calls] == [(1005.0, 1035.0, "BYE")]
    assert not result.skip_counts


def test_pcapng_interface_time_offset_is_added(tmp_path: Path) -> None:
    # if_tsoffset (option 14, seconds): an interface whose clock counts from another epoch.
    call = scripted_call(1, caller="111", callee="222", at=1000.0, kind="answered")
    dialog = _Dialog(call)
    invite = dialog.request("INVITE", 1, to_tag=False, body=_SDP.format(ip=CALLER))
    ok = dialog.response(200, 1, "INVITE", to_tag=True)
    bye = dialog.request("BYE", 2, to_tag=True)
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    offset = struct.pack("<HHq", 14, 8, 1000) + struct.pack("<HH", 0, 0)
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535) + offset)
    data = shb + idb
    data += _epb(0, 0, _frame(CALLER, 5060, SWITCH, 5060, invite))
    data += _epb(0, 5_000_000, _frame(SWITCH, 5060, CALLER, 5060, ok))
    data += _epb(0, 35_000_000, _frame(CALLER, 5060, SWITCH, 5060, bye))
    path = tmp_path / "offset.pcapng"
    path.write_bytes(data)
    with read_trace(path) as result:
        calls = list(result)
    assert [(c.invite_time, c.answer_time, c.end_time) for c in calls] == [
        (1000.0, 1005.0, 1035.0)]

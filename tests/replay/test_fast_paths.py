"""The replay's fast paths give exactly what its general paths give.

Each fast path answers the common case in one step and hands everything else to the
general code: plain Ethernet/IPv4/UDP frames (``FrameDecoder.feed_udp4``), plain
name-addr values (``parse_name_addr``), the sketch's parsed-value caches, the number
tables, the one-context screening (``Screening``) and the memory store's dispatch and
key naming. Each is compared with its general path piece by piece, then all together:
a replay with every fast path switched off must give the same records, summary and
file reports on the shared captures and logs and on synthetic traces.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fs_plugin.counters.memory as memory
import fs_plugin.numbering._classify as classify_module
import fs_plugin.replay.evaluate as evaluate
import fs_plugin.replay.sip as sip
from fs_plugin.counters.keys import stored_key
from fs_plugin.counters.ops import Acquire, Distinct, Flag, Get, GetFlag, Hit, Release
from fs_plugin.numbering import _classify
from fs_plugin.policy import load_policy
from fs_plugin.policy.snapshot import PolicySnapshot
from fs_plugin.replay.commands import replay_offline
from fs_plugin.replay.evaluate import TrunkMap
from fs_plugin.replay.packets import FrameDecoder
from fs_plugin.replay.sip import parse_name_addr
from fs_plugin.replay.synth import SynthCall, scripted_call, synth_calls, write_pcap
from fs_plugin.screening.counting import plan_counters
from fs_plugin.screening.engine import decide
from fs_plugin.screening.model import CallFacts, Decision
from fs_plugin.screening.readings import CounterPlan, CounterReadings
from fs_plugin.screening.rules.base import number_of

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies"
T0 = 1_795_000_000.0
#: Tuesday 2026-11-17 10:00 in Haikou: inside haikou-homes' calling hours.
T_OFFICE = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
BENCH_TRUNKS = ("10.20.0.0/16=cc-1", "10.30.0.0/16=ent-1", "192.0.2.0/24=ic-1")


# -- frames ----------------------------------------------------------------------------


def _frames(path: Path) -> Iterator[tuple[int, float, bytes]]:
    records: Iterator[tuple[Any, bytes]]
    with path.open("rb") as handle:
        if path.suffix == ".pcapng":
            reader = dpkt.pcapng.Reader(handle)
            linktype, records = reader.datalink(), iter(reader)
        else:
            classic = dpkt.pcap.Reader(handle)
            linktype, records = classic.datalink(), iter(classic)
        for ts, buf in records:
            yield linktype, float(ts), buf


def _udp4(payload: bytes, *, sport: int = 5060, dport: int = 5060, vlan: bool = False,
          options: bytes = b"", more: bool = False, offset: int = 0,
          total: int | None = None) -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton("10.2.0.2"), dst=socket.inet_aton("10.1.0.1"),
                    p=dpkt.ip.IP_PROTO_UDP, data=udp, opts=options)
    ip.mf = int(more)
    ip.offset = offset
    ip.len = len(ip) if total is None else total
    raw = bytes(ip)
    head = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    if vlan:
        return head + b"\x81\x00\x00\x07\x08\x00" + raw
    return head + b"\x08\x00" + raw


INVITE = (
    b"INVITE sip:13900001111@10.1.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.2.0.2:5060;branch=z9hG4bK1\r\n"
    b'From: "A" <sip:02088886666@10.2.0.2>;tag=a\r\n'
    b"To: <sip:13900001111@10.1.0.1>\r\n"
    b"Call-ID: fast-1\r\nCSeq: 1 INVITE\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)


def _odd_frames() -> list[tuple[int, float, bytes]]:
    """Ethernet frames near the fast path's edges, and frames it must leave alone."""
    frames = [
        _udp4(INVITE),
        _udp4(INVITE, vlan=True),
        _udp4(INVITE, options=b"\x01\x01\x01\x00"),  # IHL 6
        _udp4(INVITE, more=True),  # more fragments
        _udp4(INVITE, offset=3),  # a later fragment
        _udp4(INVITE, total=0),  # TSO: the frame's length counts
        _udp4(INVITE, total=20 + 8 + 40),  # the IP length cuts the datagram short
        _udp4(INVITE, total=20 + 4),  # no room for a UDP header
        _udp4(INVITE, total=4000),  # longer than the frame
        _udp4(b"\r\n\r\n"),  # keep-alive
        _udp4(b"junk on the SIP port"),
        _udp4(b"junk elsewhere", sport=4000, dport=4001),
        _udp4(b"HEP3\x00\x0a\x00\x00\x00\x01\x00\x06"),
        _udp4(INVITE.replace(b"SIP/2.0\r\n", b"SIP/2.0 \r\n", 1)),
        _udp4(b"SIP/2.0 200 OK\r\nCall-ID: fast-1\r\nCSeq: 1 INVITE\r\n\r\n"),
        _udp4(INVITE)[:30],
        _udp4(INVITE)[:45],
    ]
    return [(1, 100.0 + i, frame) for i, frame in enumerate(frames)]


def test_udp4_fast_path_is_what_feed_gives(shared_dir: Path) -> None:
    captures = sorted(p for p in (shared_dir / "fixtures" / "sip").iterdir()
                      if p.suffix != ".md")
    sources = [list(_frames(p)) for p in captures] + [_odd_frames()]
    taken = 0
    for frames in sources:
        fast_skips: list[tuple[str, int, str]] = []
        general_skips: list[tuple[str, int, str]] = []
        fast = FrameDecoder(frames[0][0], lambda *a, out=fast_skips: out.append(a))
        general = FrameDecoder(frames[0][0], lambda *a, out=general_skips: out.append(a))
        for number, (_, ts, buf) in enumerate(frames, start=1):
            before = len(general_skips)
            expected = general.feed(ts, buf, number)
            single = fast.feed_udp4(ts, buf, number)
            if single is None:
                assert fast.feed(ts, buf, number) == expected  # keeps both in step
            else:
                taken += 1
                assert [single] == expected
                assert len(general_skips) == before
        assert fast_skips == general_skips
    assert taken > 20  # the shared UDP captures and the plain synthetic frame


def test_udp4_fast_path_takes_every_synthetic_frame(tmp_path: Path) -> None:
    trace = tmp_path / "synth.pcap"
    write_pcap(trace, synth_calls(50, seed=3))
    decoder = FrameDecoder(1, lambda *a: pytest.fail(f"skipped {a}"))
    for number, (_, ts, buf) in enumerate(_frames(trace), start=1):
        assert decoder.feed_udp4(ts, buf, number) is not None


# -- name-addr values --------------------------------------------------------------------


_PIECES = ['"', "<", ">", "@", ":", ";", ",", " ", "\t", "\\", "a", "1", "+", "=", "sip",
           "sips", "SIP", "tel", "tag", ";tag=", ";TAG=", "客", "\u3000", "<sip:1@h>"]


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_name_addr_fast_shape_is_the_general_walk(pieces: list[str]) -> None:
    value = "".join(pieces)
    assert parse_name_addr(value) == sip._parse_name_addr(value.strip())


@pytest.mark.parametrize("value", [
    '"Sales" <sip:13900001111@10.20.0.12>;tag=ft1-0@10.1', "<sip:+8613@h>",
    '"" <sip:@h>', '"客服" <sips:1;npdi@h:5060;user=phone>;tag=a;x=y', "<sip:1@h>;tag=",
])
def test_name_addr_plain_shapes_take_the_fast_path(value: str) -> None:
    assert sip._PLAIN_NAME_ADDR.fullmatch(value) is not None
    assert parse_name_addr(value) == sip._parse_name_addr(value)


# -- the sketch's value caches ------------------------------------------------------------


@pytest.mark.parametrize("message", [
    b"BYE sip:a@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 bye\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\ni: x\r\nCSeq: nine INVITE\r\nCSeq: 3 INVITE\r\nl: 4\r\n\r\nv=0\n",
    b"INVITE sip:a@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nl: 9\r\n\r\nv=0\n",
    b"INVITE sip:a@h SIP/2.0\r\nCall-ID: x\r\nContent-Length: x\r\n\r\n",
    b"INVITE sip:a@h SIP/2.0\nCall-ID: x\nCSeq: 1 INVITE\nl: 9\n\nv=0\n",
])
def test_sketch_is_the_same_with_warm_caches(
    message: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sketch() -> object:
        try:
            return sip.sketch_message(message)
        except sip.SipParseError as exc:
            return (exc.failure, exc.detail)

    with monkeypatch.context() as patched:
        patched.setattr(sip, "_VALUE_CACHE_SIZE", 0)
        patched.setattr(sip, "_CSEQ_VALUES", {})
        patched.setattr(sip, "_LENGTH_VALUES", {})
        general = sketch()
    first, second = sketch(), sketch()  # the second from the caches
    assert first == second == general


# -- the memory store --------------------------------------------------------------------


def test_stored_names_are_the_keys_module_names() -> None:
    ops = [Hit("rate.caller:1:60", 60.0, 5, tag="caller:1"), Hit("k", 1.0), Get("k"),
           Distinct("bomb.callers:2", "1", 600.0, tag="bomb:2"), Acquire("c", "u", 3, 9.0),
           Release("c", "u"), Flag("f", 5.0, tag="t"), GetFlag("f", tag="t")]
    for op in ops * 2:  # the second time from the learnt kinds
        assert memory._stored_name("fsp", op) == stored_key("fsp", op)
        assert type(op) in memory._APPLY


# -- the whole replay, fast and general --------------------------------------------------


class _TwoStepScreening:
    """The general engine entry points in place of Screening: plan_counters, then decide."""

    def __init__(self, facts: CallFacts, snapshot: PolicySnapshot, *, now: float) -> None:
        self._args = (facts, snapshot, now)
        self.plan: CounterPlan = plan_counters(facts, snapshot, now=now)

    def decide(self, counts: CounterReadings | None) -> Decision:
        facts, snapshot, now = self._args
        return decide(facts, snapshot, counts, now=now)


def _general_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FrameDecoder, "feed_udp4", lambda self, ts, buf, frame: None)
    monkeypatch.setattr(sip, "_PLAIN_NAME_ADDR", re.compile(r"(?!)"))
    monkeypatch.setattr(sip, "_VALUE_CACHE_SIZE", 0)
    monkeypatch.setattr(sip, "_CSEQ_VALUES", {})
    monkeypatch.setattr(sip, "_LENGTH_VALUES", {})
    monkeypatch.setattr(classify_module, "_ORACLE", classify_module._REFERENCE)
    monkeypatch.setattr(evaluate, "Screening", _TwoStepScreening)
    monkeypatch.setattr(memory, "_APPLY", {})
    monkeypatch.setattr(memory, "_stored_name", stored_key)


def _clear_caches() -> None:
    _classify.cache_clear()
    number_of.cache_clear()


class _Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, record: evaluate.CallRecord) -> None:
        self.rows.append(dataclasses.astuple(record))


def _replay(traces: list[Path], trunks: TrunkMap, trace_outcomes: bool) -> Any:
    rows = _Rows()
    summary = replay_offline(traces, load_policy(POLICY), trunks=trunks, csv_sink=rows,
                             trace_outcomes=trace_outcomes)
    kept = {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary)
            if f.name not in ("elapsed_s", "files")}
    files = [dataclasses.replace(f, seconds=0.0) for f in summary.files]
    return rows.rows, kept, files


def _office_scenario() -> list[SynthCall]:
    """Marketing calls on mkt-1 that meet every kind of rule: consent lists, calling
    hours and targets, every cap (per caller, pair, trunk CPS, concurrency), the
    key region's stricter caps in shadow, labels, ring-once and flood patterns."""
    allowed = [f"0898668800{k:02d}" for k in range(12)]
    callees = ["13907551234", "18976543210", "089866661111", "13907550000", "13907559999",
               "13922223333", "02088886666", "18976540001", "089866662222"]
    calls: list[SynthCall] = []

    def add(caller: str, callee: str, at: float, kind: str, **kw: Any) -> None:
        calls.append(scripted_call(len(calls), caller=caller, callee=callee, at=at,
                                   kind=kind, src_ip="10.40.0.9", **kw))

    for k in range(240):  # 4 per second for a minute: per-caller caps, concurrency
        add(allowed[k % 12], callees[k % len(callees)], T_OFFICE + k * 0.25,
            ("answered", "ring_cancel", "rejected")[k % 3], talk_s=400.0)
    for k in range(15):  # 15 consented calls within a second: the trunk's CPS cap
        add(allowed[k % 12], callees[k % 3], T_OFFICE + 200 + k * 0.05, "answered")
    for k in range(40):  # one caller, ring-once calls to one callee: pair cap, wangiri
        add(allowed[0], "13907551234", T_OFFICE + 120 + k * 2, "ring_cancel")
    for k in range(30):  # a flood on one callee from many callers
        add(allowed[k % 12], "18976543210", T_OFFICE + 300 + k, "rejected")
    for k in range(20):  # labelled, malformed and foreign caller IDs
        caller = ("13900009999", "13922223333", "12345", "+14155550100", "")[k % 5]
        add(caller, callees[k % len(callees)], T_OFFICE + 400 + k, "answered", talk_s=5.0)
    for k in range(30):  # after hours
        evening = T_OFFICE + 10 * 3600 - 15 + k
        add(allowed[k % 12], "13907551234", evening, "rejected")
    calls.sort(key=lambda c: c.invite_time)
    return calls


@pytest.fixture(scope="module")
def synthetic_traces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("fast")
    mixed = base / "mixed.pcap"
    write_pcap(mixed, synth_calls(1500, seed=11, start=T0, cps=150.0, population=300))
    office = base / "office.pcap"
    write_pcap(office, _office_scenario())
    return [mixed, office]


def _runs(monkeypatch: pytest.MonkeyPatch, traces: list[Path], trunks: TrunkMap) -> None:
    for trace_outcomes in (False, True):
        _clear_caches()
        fast = _replay(traces, trunks, trace_outcomes)
        with monkeypatch.context() as patched:
            _general_paths(patched)
            _clear_caches()
            general = _replay(traces, trunks, trace_outcomes)
        _clear_caches()
        assert fast[0] == general[0]
        assert fast[1] == general[1]
        assert fast[2] == general[2]


def test_fast_and_general_paths_agree_on_the_shared_traces(
    shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixtures = shared_dir / "fixtures"
    traces = sorted((fixtures / "sip").iterdir()) + sorted(
        p for p in (fixtures / "esl").rglob("*.sip.*"))
    for trunks in (TrunkMap(None, [("0.0.0.0/0", "ic-1"), ("::/0", "ic-1")]),
                   TrunkMap("ent-1"), TrunkMap()):
        _runs(monkeypatch, traces, trunks)


def test_fast_and_general_paths_agree_on_synthetic_traces(
    synthetic_traces: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for trunks in (TrunkMap.parse("mkt-1", BENCH_TRUNKS),
                   TrunkMap.parse("ic-1", ["10.20.0.0/16=mkt-1", "192.0.2.0/24=intl-gw"])):
        _runs(monkeypatch, synthetic_traces, trunks)


def test_the_office_scenario_meets_the_rules(synthetic_traces: list[Path]) -> None:
    # The scenario is only worth comparing if the rules it is for do fire.
    _, kept, _ = _replay(synthetic_traces[1:], TrunkMap("mkt-1"), False)
    fired = {rule for rule, _ in kept["rules"]} | set(kept["shadow"])
    assert {"consent.dnc", "consent.required", "contract.hours", "contract.targets",
            "rate.caller", "rate.trunk_cps", "cid.not_allowed", "cid.malformed",
            "region.strict"} <= fired, fired

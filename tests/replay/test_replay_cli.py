"""``fs-plugin replay``: offline evaluation of every shared trace, reports, patterns on
simulated time."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fs_plugin.cli import main
from fs_plugin.clock import ManualClock
from fs_plugin.policy import load_policy
from fs_plugin.replay import read_trace
from fs_plugin.replay.commands import Progress
from fs_plugin.replay.evaluate import Evaluator, TrunkMap
from fs_plugin.replay.report import CSV_COLUMNS, CsvSink
from fs_plugin.replay.synth import SynthCall, scripted_call, synth_calls, write_pcap
from fs_plugin.screening.model import Verdict

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies"
T0 = 1_795_000_000.0

# Calls per shared capture (the INVITE dialogs the reader finds) and the reasons it
# names for what it skips.
_CAPTURES: dict[str, tuple[int, set[str]]] = {
    "heplify_fax_t38_anonymous_488.pcap": (2, set()),
    "heplify_ipip_rawip_intl_403.pcap": (1, set()),
    "heplify_ipv6_udp_call.pcap": (1, set()),
    "heplify_sctp_403_pai_tel.pcap": (1, set()),
    "heplify_sll_tcp_retrans_register.pcap": (0, set()),
    "heplify_tcp_segmented_37calls_pai.pcap": (37, set()),
    "heplify_ws_udp_e164_us.pcap": (2, set()),
    "hepwireshark_hep3_encapsulated.pcap": (1, set()),
    "ndpi_http_on_port_5060_negative.pcapng": (0, {"not_sip"}),
    "ndpi_register_huawei.pcapng": (0, {"not_sip"}),
    "sngrep_ipip_tcp_call.pcap": (1, set()),
    "sngrep_ipv6frag_prack_update_pai.pcap": (1, set()),
    "suricata_cloudshark_sip_s0.pcap": (2, set()),
    "suricata_compact_form_invite.pcap": (1, set()),
    "suricata_null_tcp_64k_body.pcap": (1, set()),
    "suricata_tcp_register_kamailio.pcap": (0, set()),
    "wireshark_aaa_register_invite_cancel.pcap": (4, set()),
    "zeek_invalid_content_length.pcap": (0, {"bad_content_length"}),
    "zeek_junk_before_register.pcap": (0, {"not_sip", "missing_call_id"}),
    "zeek_rawip4_long_via.pcap": (0, set()),
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def _replay(*args: str) -> int:
    return main(["replay", "--policy", str(POLICY), *args])


def test_every_shared_capture_replays(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sip = shared_dir / "fixtures" / "sip"
    out_csv = tmp_path / "calls.csv"
    assert _replay(str(sip), "--trunk-map", "0.0.0.0/0=ic-1", "--trunk-map", "::/0=ic-1",
                   "--csv", str(out_csv)) == 0
    out, err = capsys.readouterr()
    captures = {p.name for p in sip.iterdir() if p.suffix != ".md"}
    assert captures == set(_CAPTURES), "a new capture needs its expected count here"
    rows = _rows(out_csv)
    per_file: dict[str, int] = {}
    for row in rows:
        name = row["where"].rpartition("#")[0]
        per_file[name] = per_file.get(name, 0) + 1
    table = {line.split()[0].rpartition("/")[2]: line.split()
             for line in out.splitlines() if "/" in line.split(" ", 1)[0]}
    for name, (calls, reasons) in _CAPTURES.items():
        assert per_file.get(name, 0) == calls, name
        assert table[name][3] == str(calls), name  # the terminal table's calls column
        named = {line.split(": ")[1].split()[0] for line in err.splitlines()
                 if line.startswith(f"skipped {name}#")}
        assert named == reasons, name
    # The manifest is a text file with no SIP in it: named, not a crash.
    assert "no_sip_messages" in table["MANIFEST.md"][-1]
    assert f"{sum(c for c, _ in _CAPTURES.values())} calls evaluated" in out
    # Every call on ic-1; the foreign-format caller IDs are malformed for a Chinese switch.
    assert {row["trunk"] for row in rows} == {"ic-1"}
    assert {row["verdict"] for row in rows} <= {"pass", "block"}


def test_every_sipp_log_replays(shared_dir: Path, tmp_path: Path) -> None:
    esl = shared_dir / "fixtures" / "esl"
    logs = sorted(esl.glob("*.sip.txt")) + sorted(esl.glob("more/*.sip.log"))
    assert len(logs) == 22
    out_csv = tmp_path / "calls.csv"
    assert _replay(*map(str, logs), "--trunk", "ent-1", "--csv", str(out_csv)) == 0
    rows = _rows(out_csv)
    assert len(rows) == 22
    assert all(row["trunk"] == "ent-1" for row in rows)
    ring_once = next(r for r in rows if r["where"].startswith("in_ring_once_cancel_json"))
    assert ring_once["ring_time_s"] == "1.203" and ring_once["answered"] == "no"


def test_unreadable_file_is_named_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.pcap"
    write_pcap(good, [scripted_call(0, caller="13312345678", callee="13900001111",
                                    at=T0, kind="answered")])
    missing = tmp_path / "missing.pcap"
    assert _replay(str(missing), str(good), "--trunk", "ic-1") == 0
    out, err = capsys.readouterr()
    assert "SKIPPED: FileNotFoundError" in out
    assert f"skipped {missing}" in err
    assert "1 calls evaluated" in out
    assert _replay(str(missing)) == 1  # nothing readable at all


def _scenario() -> list[SynthCall]:
    calls: list[SynthCall] = []
    # Wangiri: 25 ring-once calls (1 s of ringing, then CANCEL) from one caller to 25
    # callees, 10 s apart. The 21st short call crosses "more than 20 to more than 10
    # callees"; its hangup sets the flag, so calls 22..25 are warned.
    for k in range(25):
        calls.append(scripted_call(len(calls), caller="13312345678",
                                   callee=f"139000{k:05d}", at=T0 + k * 10,
                                   kind="ring_cancel"))
    # Flood: 8 callers take turns calling one callee every 3 s, 32 calls. The 21st call
    # is "more than 20 calls from at least 3 callers in 10 min": blocked from there on.
    for k in range(32):
        calls.append(scripted_call(len(calls), caller=f"1350000{k % 8:04d}",
                                   callee="13800138000", at=T0 + 400 + k * 3,
                                   kind="rejected"))
    # Background traffic that must stay untouched.
    for k in range(20):
        calls.append(scripted_call(len(calls), caller=f"1370000{k:04d}",
                                   callee=f"1360000{k:04d}", at=T0 + 5 + k * 30,
                                   kind="answered", talk_s=300.0))
    calls.sort(key=lambda c: c.invite_time)
    return calls


def test_wangiri_and_flood_patterns_fire(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "scenario.pcap"
    write_pcap(trace, _scenario())
    out_csv = tmp_path / "calls.csv"
    out_html = tmp_path / "report.html"
    assert _replay(str(trace), "--trunk", "ic-1", "--csv", str(out_csv),
                   "--html", str(out_html)) == 0
    # Flags: the wangiri caller at calls 21..25, the flooded callee at calls 21..32.
    assert "pattern flags raised: 17" in capsys.readouterr().out
    rows = _rows(out_csv)
    assert len(rows) == 77
    times = [float(r["epoch"]) for r in rows]
    assert times == sorted(times)  # decisions in trace time, not the order calls ended
    warned = [r for r in rows if r["verdict"] == "warn"]
    assert [r["callee"] for r in warned] == [f"139000{k:05d}" for k in range(21, 25)]
    assert {r["rule"] for r in warned} == {"pattern.wangiri"}
    blocked = [r for r in rows if r["verdict"] == "block"]
    assert len(blocked) == 12
    assert {(r["rule"], r["callee"], r["cause"]) for r in blocked} == {
        ("pattern.bombing", "13800138000", "UNWANTED")
    }
    flood = [r for r in rows if r["callee"] == "13800138000"]
    assert [r["verdict"] for r in flood] == ["pass"] * 20 + ["block"] * 12
    assert all(r["verdict"] == "pass" for r in rows if r["from"].startswith("1370000"))
    _check_html(out_html)


def test_blocked_calls_do_not_ring_unless_trace_outcomes(tmp_path: Path) -> None:
    # A caller the policy blocks (cid.not_allowed on ent-1) makes ring-once calls: blocked
    # calls never ring, so no wangiri statistics -- unless the traced outcomes are fed.
    calls = [scripted_call(k, caller="13312345678", callee=f"139000{k:05d}", at=T0 + k * 10,
                           kind="ring_cancel") for k in range(30)]
    trace = tmp_path / "blocked.pcap"
    write_pcap(trace, calls)
    snapshot = load_policy(POLICY)
    for trace_outcomes, flags in ((False, 0), (True, 10)):
        evaluator = Evaluator(snapshot, trunks=TrunkMap("ent-1"), trace_outcomes=trace_outcomes)
        with read_trace(trace) as result:
            records = list(evaluator.run(result, lambda: result.watermark))
        assert {(r.verdict, r.rule) for r in records} == {(Verdict.BLOCK, "cid.not_allowed")}
        assert evaluator.stats.flags == flags  # the flag renewed by calls 21..30 -- or never


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.svgs: list[str] = []
        self._raw: str = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _check_html(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    parser = _Html()
    parser.feed(text)
    assert parser.tags.count("svg") == 3
    assert "script" not in parser.tags and "http://" not in text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    # Each chart is well-formed SVG on its own.
    start = 0
    while (start := text.find("<svg", start)) != -1:
        end = text.index("</svg>", start) + len("</svg>")
        root = ET.fromstring(text[start:end])
        assert root.tag.endswith("svg") and len(root.findall(".//{*}rect")) > 0
        start = end
    assert "pattern.bombing" in text and "pattern.wangiri" in text


def test_records_come_in_time_order_on_a_busy_trace(tmp_path: Path) -> None:
    # Answered calls last up to two minutes while short ones end in seconds, so the
    # reader hands calls out far from INVITE order; the evaluator puts them back.
    trace = tmp_path / "busy.pcap"
    write_pcap(trace, synth_calls(3000, seed=7, start=T0, cps=100.0))
    evaluator = Evaluator(load_policy(POLICY), trunks=TrunkMap("ic-1"))
    with read_trace(trace) as result:
        records = list(evaluator.run(result, lambda: result.watermark))
    assert len(records) == 3000
    times = [r.time for r in records]
    assert times == sorted(times)
    assert evaluator.stats.late == 0 and evaluator.stats.early == 0
    assert evaluator.stats.outcomes == 3000
    # The watermark kept the heap to the calls overlapping the oldest open one.
    assert evaluator.stats.max_pending < 3000


def test_trunk_map_most_specific_then_default() -> None:
    trunks = TrunkMap.parse("ent-1", ["10.0.0.0/8=ic-1", "10.1.0.0/16=cc-1", "2001:db8::/32=x"])
    assert trunks.hint_for("10.1.2.3") == "cc-1"
    assert trunks.hint_for("10.9.2.3") == "ic-1"
    assert trunks.hint_for("192.0.2.1") == "ent-1"
    assert trunks.hint_for("2001:db8::1") == "x"
    assert trunks.hint_for(None) == "ent-1"
    assert trunks.hint_for("not-an-ip") == "ent-1"
    with pytest.raises(ValueError, match="CIDR=TRUNK"):
        TrunkMap.parse(None, ["10.0.0.0/8"])
    with pytest.raises(ValueError, match="999"):
        TrunkMap.parse(None, ["999.0.0.0/8=x"])


def test_bad_trunk_map_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _replay("x.pcap", "--trunk-map", "nonsense") == 2
    assert "CIDR=TRUNK" in capsys.readouterr().err


def test_progress_bar_redraws_on_its_interval() -> None:
    stream = io.StringIO()
    clock = ManualClock()
    bar = Progress(stream, enabled=True, interval_s=0.5, clock=clock)
    bar.update("t.pcap", 10, 100, 5)
    bar.update("t.pcap", 20, 100, 9)  # within the interval: not drawn
    clock.advance(0.6)
    bar.update("t.pcap", 50, 100, 25)
    bar.update("t.pcap", 100, 100, 40, final=True)  # the last state is always shown
    bar.close()
    frames = stream.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert "10.0%" in frames[0] and "50.0%" in frames[1]
    assert "100.0%" in frames[2] and "40 calls" in frames[2] and frames[2].endswith("\n")
    silent = io.StringIO()
    off = Progress(silent, enabled=False)
    off.update("t.pcap", 1, 2, 3)
    off.close()
    assert silent.getvalue() == ""


def test_reader_process_gives_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fs_plugin.replay.commands as commands
    import fs_plugin.replay.pipeline as pipeline

    trace = tmp_path / "scenario.pcap"
    write_pcap(trace, _scenario() + [
        scripted_call(1000 + k, caller=f"1390000{k:04d}", callee="13600001111",
                      at=T0 + 2000 + k, kind="answered", talk_s=5.0)
        for k in range(30)
    ])
    monkeypatch.setattr(commands, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "BATCH_CALLS", 7)  # many batches, many watermarks
    snapshot = load_policy(POLICY)
    runs = []
    for parallel in (False, True):
        out = io.StringIO()
        summary = commands.replay_offline(
            [trace, tmp_path / "missing.pcap"], snapshot, trunks=TrunkMap("ic-1"),
            csv_sink=CsvSink(out), parallel=parallel,
        )
        runs.append((out.getvalue(), summary))
    (serial_csv, serial), (parallel_csv, par) = runs
    assert parallel_csv == serial_csv and serial.calls == 107
    # The extra 30 calls to one callee within 30 s are a flood too: 10 of them blocked.
    assert par.verdicts == serial.verdicts == {"pass": 81, "warn": 4, "block": 22}
    assert [(f.calls, f.messages, f.format) for f in par.files] == [
        (f.calls, f.messages, f.format) for f in serial.files
    ]
    assert par.files[1].error is not None and "FileNotFoundError" in par.files[1].error


def test_a_reader_defect_on_one_file_is_named_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fs_plugin.replay.commands as commands

    good = tmp_path / "good.pcap"
    write_pcap(good, [scripted_call(0, caller="13312345678", callee="13900001111",
                                    at=T0, kind="answered")])
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(good.read_bytes())
    def flaky(path: Path) -> object:
        if Path(path).name == "bad.pcap":
            raise RuntimeError("decoder bug")
        return read_trace(path)

    monkeypatch.setattr(commands, "read_trace", flaky)
    assert _replay(str(bad), str(good), "--trunk", "ic-1") == 0
    out = capsys.readouterr().out
    assert "SKIPPED: internal error: RuntimeError: decoder bug" in out
    assert "1 calls evaluated" in out


def _nanosecond_copy(src: Path, dst: Path) -> None:
    """The same capture in the nanosecond pcap format (magic 0xa1b23c4d, frac in ns)."""
    import struct

    data = src.read_bytes()
    out = bytearray(b"\x4d\x3c\xb2\xa1" + data[4:24])
    pos = 24
    while pos < len(data):
        sec, usec, caplen, length = struct.unpack_from("<IIII", data, pos)
        out += struct.pack("<IIII", sec, usec * 1000, caplen, length)
        out += data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
    dst.write_bytes(bytes(out))


def test_pcap_records_nanosecond_and_truncated(tmp_path: Path) -> None:
    calls = [scripted_call(k, caller="13312345678", callee=f"1390000{k:04d}",
                           at=T0 + k * 0.25, kind="ring_cancel") for k in range(40)]
    micro = tmp_path / "micro.pcap"
    write_pcap(micro, calls)
    nano = tmp_path / "nano.pcap"
    _nanosecond_copy(micro, nano)
    with read_trace(micro) as a, read_trace(nano) as b:
        first, second = list(a), list(b)
    assert len(first) == 40 and not a.skipped and not b.skipped
    assert [(c.call_id, c.invite_time, c.end_time) for c in first] == [
        (c.call_id, c.invite_time, c.end_time) for c in second
    ]
    # Cut inside a record header, then inside a record body: what was read is kept.
    import struct

    data = micro.read_bytes()
    offsets, pos = [], 24
    while pos < len(data):
        offsets.append(pos)
        pos += 16 + struct.unpack_from("<IIII", data, pos)[2]
    middle = offsets[len(offsets) // 2]
    # A record header claiming 1 GB: the reading stops there as a truncated file.
    bogus = bytearray(data)
    struct.pack_into("<I", bogus, middle + 8, 1 << 30)
    huge = tmp_path / "huge.pcap"
    huge.write_bytes(bytes(bogus))
    with read_trace(huge) as result:
        got = list(result)
    assert 0 < len(got) < 40 and result.skip_counts.get("truncated_file") == 1
    for cut, reasons in ((middle + 8, {"truncated_file"}), (middle + 16 + 10, set())):
        short = tmp_path / f"cut{cut}.pcap"
        short.write_bytes(data[:cut])
        with read_trace(short) as result:
            got = list(result)
        assert 0 < len(got) <= 40
        assert set(result.skip_counts) - {"truncated_packet", "not_sip",
                                          "truncated_body"} == reasons


def test_replay_collects_less_often_and_restores_the_collector(tmp_path: Path) -> None:
    import gc

    import fs_plugin.replay.commands as commands

    trace = tmp_path / "scenario.pcap"
    write_pcap(trace, _scenario())
    seen: list[tuple[int, int, int]] = []

    class Watching(CsvSink):
        def add(self, r: object) -> None:
            seen.append(gc.get_threshold())

    before = gc.get_threshold()
    assert before[0] < commands.REPLAY_GC_THRESHOLD
    summary = commands.replay_offline([trace], load_policy(POLICY), trunks=TrunkMap("ic-1"),
                                      csv_sink=Watching(io.StringIO()))
    assert summary.calls == len(seen) > 0
    assert {t[0] for t in seen} == {commands.REPLAY_GC_THRESHOLD}
    assert gc.get_threshold() == before

    class Failing(CsvSink):
        def add(self, r: object) -> None:
            raise KeyboardInterrupt  # not caught per trace: it ends the replay

    with pytest.raises(KeyboardInterrupt):
        commands.replay_offline([trace], load_policy(POLICY), trunks=TrunkMap("ic-1"),
                                csv_sink=Failing(io.StringIO()))
    assert gc.get_threshold() == before

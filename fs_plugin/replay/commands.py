"""``fs-plugin replay``: evaluate a policy over SIP traces offline, or send them to a target.

Offline (the default): every trace is read, its calls evaluated on the trace's own
clock against ``--policy`` (see :mod:`fs_plugin.replay.evaluate`) and summarised in
a terminal table; ``--csv`` writes one row per call and ``--html`` a page with charts.
Each trace gets a fresh counter store and clock: traces are separate captures, often
years apart, and one's counters say nothing about another's.

``--send HOST:PORT`` instead sends each traced INVITE to a SIP target and reports the
responses (see :mod:`fs_plugin.replay.send`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.replay.reader import read_trace
from fs_plugin.replay.report import CsvSink, FileReport, Summary, render_text, write_html

if TYPE_CHECKING:
    # The engine and the policy are imported when a replay runs, not when the CLI
    # builds its parser (every ``fs-plugin`` command registers this one).
    from fs_plugin.policy.snapshot import PolicySnapshot
    from fs_plugin.replay.evaluate import CallRecord, Evaluator, TrunkMap

__all__ = ["PARALLEL_MIN_BYTES", "Progress", "expand_traces", "register", "replay_offline"]

log = structlog.get_logger(__name__)

#: Skips listed per file in the report (all are counted by reason).
_SKIP_EXAMPLES = 5
#: Traces smaller than this are read in this process: starting a reader process costs
#: about half a second, more than reading a few MB.
PARALLEL_MIN_BYTES = 4 << 20

#: The cyclic collector's first threshold while a replay runs. The evaluation allocates
#: a few dozen short-lived objects per call, freed by reference counting, while the
#: counters' keys pile up for their windows: at Python's default (700) a collection runs
#: every few calls and walks the young generation each time — a sixth of the evaluation
#: in ``bench/bench_replay.py``. Cycles are still collected, every 100,000 allocations.
REPLAY_GC_THRESHOLD = 100_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the block with :data:`REPLAY_GC_THRESHOLD`; the old thresholds come back after."""
    previous = gc.get_threshold()
    gc.set_threshold(max(REPLAY_GC_THRESHOLD, previous[0]), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


class Progress:
    """A one-line progress bar on a stream, redrawn at most every ``interval_s``."""

    def __init__(
        self, stream: IO[str], *, enabled: bool, interval_s: float = 0.2,
        clock: Clock | None = None,
    ) -> None:
        self._stream = stream
        self.enabled = enabled
        self._interval = interval_s
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._next = 0.0
        self._drawn = False

    def update(
        self, name: str, done: int, total: int, calls: int, *, final: bool = False
    ) -> None:
        """Redraw (at most every ``interval_s``; a ``final`` update always draws)."""
        if not self.enabled:
            return
        now = self._clock.monotonic()
        if now < self._next and not final:
            return
        self._next = now + self._interval
        share = min(1.0, done / total) if total else 1.0
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        self._stream.write(f"\r{name[:30]:<30} [{bar}] {share:6.1%} {calls:>10,} calls")
        self._stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def expand_traces(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for the files in it (sorted, not recursive)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file()))
        else:
            out.append(path)
    return out


def _trace_records(
    path: Path,
    evaluator: Evaluator,
    report: FileReport,
    progress: Progress,
    *,
    parallel: bool = False,
) -> Iterator[CallRecord]:
    """Evaluate one trace; fills ``report`` (also when the file cannot be read)."""
    started = time.perf_counter()
    if parallel and _size(path) >= PARALLEL_MIN_BYTES:
        yield from _worker_records(path, evaluator, report, progress)
        report.seconds = time.perf_counter() - started
        return
    try:
        result = read_trace(path)
    except OSError as exc:
        report.error = f"{type(exc).__name__}: {exc.strerror or exc}"
        return
    with result:
        report.format = result.format.value
        size = max(1, result.size)
        calls = 0
        for call in result:
            calls += 1
            yield from evaluator.feed(call, result.watermark)
            if calls % 512 == 0:
                progress.update(path.name, result.position(), size, calls)
        yield from evaluator.finish()
        progress.update(path.name, size, size, calls, final=True)
    stats = result.stats
    report.frames, report.messages, report.calls = stats.frames, stats.messages, stats.calls
    report.skip_counts.update(result.skip_counts)
    report.skip_examples = [f"{s.where}: {s.reason} {s.detail}".rstrip()
                            for s in result.skipped[:_SKIP_EXAMPLES]]
    if stats.messages == 0 and not result.skip_counts:
        report.skip_counts["no_sip_messages"] += 1
    report.seconds = time.perf_counter() - started


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _worker_records(
    path: Path, evaluator: Evaluator, report: FileReport, progress: Progress
) -> Iterator[CallRecord]:
    from fs_plugin.replay.pipeline import ReadDone, read_in_worker

    done = ReadDone()
    calls = 0
    size = max(1, _size(path))
    for batch, watermark, position in read_in_worker(path, done, skips_kept=_SKIP_EXAMPLES):
        push = evaluator.push
        for call in batch:
            push(call)
        calls += len(batch)
        yield from evaluator.drain(watermark)
        progress.update(path.name, position, size, calls)
    yield from evaluator.finish()
    progress.update(path.name, size, size, calls, final=True)
    report.format, report.error = done.format, done.error
    report.frames, report.messages, report.calls = done.frames, done.messages, done.calls
    report.skip_counts.update(done.skip_counts)
    report.skip_examples = [f"{s.where}: {s.reason} {s.detail}".rstrip()
                            for s in done.skipped[:_SKIP_EXAMPLES]]
    if done.error is None and done.messages == 0 and not done.skip_counts:
        report.skip_counts["no_sip_messages"] += 1


def replay_offline(
    traces: list[Path],
    snapshot: PolicySnapshot,
    *,
    trunks: TrunkMap | None = None,
    trace_outcomes: bool = False,
    csv_sink: CsvSink | None = None,
    progress: Progress | None = None,
    parallel: bool = False,
) -> Summary:
    """Evaluate every trace in turn (fresh store and clock each); the aggregated summary."""
    with fewer_collections():
        return _replay_offline(traces, snapshot, trunks, trace_outcomes, csv_sink, progress,
                               parallel)


def _replay_offline(
    traces: list[Path],
    snapshot: PolicySnapshot,
    trunks: TrunkMap | None,
    trace_outcomes: bool,
    csv_sink: CsvSink | None,
    progress: Progress | None,
    parallel: bool,
) -> Summary:
    from fs_plugin.replay.evaluate import Evaluator

    summary = Summary()
    bar = progress if progress is not None else Progress(sys.stderr, enabled=False)
    started = time.perf_counter()
    for path in traces:
        report = FileReport(str(path))
        summary.files.append(report)
        evaluator = Evaluator(snapshot, trunks=trunks, trace_outcomes=trace_outcomes,
                              source=path.name)
        try:
            for record in _trace_records(path, evaluator, report, bar, parallel=parallel):
                summary.add(record)
                if csv_sink is not None:
                    csv_sink.add(record)
        except Exception as exc:
            # A reader defect on one capture: name it and go on with the other traces;
            # the calls evaluated before it stay in the report.
            report.error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("replay.trace_failed", path=str(path))
        finally:
            bar.close()
        summary.flags += evaluator.stats.flags
        summary.late_events += evaluator.stats.late
        summary.store_errors += evaluator.stats.store_errors
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _cmd_replay(args: argparse.Namespace) -> int:
    from fs_plugin.logs import configure_logging
    from fs_plugin.policy import load_policy
    from fs_plugin.replay.evaluate import TrunkMap

    # stdout carries the report; log lines (warnings only) go to stderr.
    configure_logging(json=False, level="warning", mask=False)
    try:
        trunks = TrunkMap.parse(args.trunk, args.trunk_map or ())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    traces = expand_traces(args.traces)
    if not traces:
        print("error: no trace files given", file=sys.stderr)
        return 2
    if args.send is not None:
        from fs_plugin.replay.send import run_send_command

        return run_send_command(args, traces, trunks)
    snapshot = load_policy(args.policy)
    progress = Progress(sys.stderr, enabled=args.progress or sys.stderr.isatty())
    csv_handle = args.csv.open("w", encoding="utf-8", newline="") if args.csv else None
    try:
        summary = replay_offline(
            traces, snapshot, trunks=trunks, trace_outcomes=args.trace_outcomes,
            csv_sink=CsvSink(csv_handle) if csv_handle is not None else None,
            progress=progress, parallel=not args.no_parallel,
        )
    finally:
        if csv_handle is not None:
            csv_handle.close()
    sys.stdout.write(render_text(summary, top=args.top))
    for report in summary.files:
        for example in report.skip_examples:
            print(f"skipped {example}", file=sys.stderr)
        if report.error is not None:
            print(f"skipped {report.path}: {report.error}", file=sys.stderr)
    if args.html is not None:
        write_html(args.html, summary, title=f"fs-plugin replay — policy {snapshot.version}")
    if args.csv is not None:
        print(f"CSV: {args.csv}", file=sys.stderr)
    if args.html is not None:
        print(f"HTML: {args.html}", file=sys.stderr)
    readable = [f for f in summary.files if f.error is None]
    return 0 if readable else 1


def register(sub: Any) -> None:
    """Add ``replay`` to the ``fs-plugin`` subcommands."""
    p = sub.add_parser(
        "replay", help="evaluate the policy over SIP traces (pcap, pcapng, text) or send them",
        description="Evaluate the policy over SIP traces offline (terminal, CSV and HTML "
                    "reports), or send their INVITEs to a SIP target.",
    )
    p.add_argument("traces", nargs="+", type=Path, metavar="TRACE",
                   help="pcap, pcapng or text SIP log; a directory means every file in it")
    p.add_argument("--policy", type=Path, default=Path("policies"),
                   help="policy directory or file (default: policies)")
    p.add_argument("--trunk", default=None, help="trunk id for every call (fsp_trunk)")
    p.add_argument("--trunk-map", action="append", metavar="SRC_CIDR=ID",
                   help="trunk id for calls from a source network (repeatable; the most "
                        "specific wins, then --trunk)")
    p.add_argument("--csv", type=Path, default=None, help="write one row per call here")
    p.add_argument("--html", type=Path, default=None, help="write an HTML report with charts")
    p.add_argument("--top", type=int, default=10, help="rows of the top blocked callers table")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--trace-outcomes", action="store_true",
                   help="feed every call's traced outcome to the pattern statistics, even "
                        "for calls the policy blocks (default: a blocked call never rang)")
    p.add_argument("--no-parallel", action="store_true",
                   help="read large traces in this process too (default: a reader process "
                        "per trace overlaps reading with evaluation)")
    p.add_argument("--send", default=None, metavar="HOST:PORT",
                   help="send the traces' INVITEs over UDP to this SIP target instead")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --send: timing factor (2 = twice as fast; 0 = no pauses)")
    p.add_argument("--send-timeout", type=float, default=32.0,
                   help="with --send: seconds to wait for a final response")
    p.set_defaults(handler=_cmd_replay)

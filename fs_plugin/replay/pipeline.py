"""Read a trace in a second process while this one evaluates: reading and deciding overlap.

Decisions stay in one process, in time order (counter semantics are exact only
there); only the reading — pcap decoding, SIP parsing, dialog grouping — moves to a
worker, which sends batches of calls with the reader's watermark after each batch.
Calls travel as plain tuples: pickling a slotted dataclass goes through
``copyreg`` and costs more per call than the tuple and the rebuild together.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue as queue_module
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fs_plugin.replay.dialogs import EndedBy, TraceCall
from fs_plugin.replay.reader import Skip, read_trace

__all__ = ["BATCH_CALLS", "MAX_BATCHES_IN_FLIGHT", "ReadDone", "read_in_worker"]

#: Calls per message from the worker: large enough that the queue's per-message cost
#: (a pipe write, a lock) is small per call, small enough to keep the evaluator fed.
BATCH_CALLS = 2000
#: Batches queued between the processes: the reader may run at most this far ahead
#: (64 × 2000 calls, a few tens of MB), so memory stays bounded on any trace.
MAX_BATCHES_IN_FLIGHT = 64
#: How long the evaluator waits for the next batch before checking the worker is alive.
_POLL_S = 1.0


@dataclass(slots=True)
class ReadDone:
    """What the reader learnt besides the calls (filled when the stream is over)."""

    format: str = ""
    frames: int = 0
    messages: int = 0
    calls: int = 0
    skip_counts: Counter[str] = field(default_factory=Counter)
    skipped: list[Skip] = field(default_factory=list)
    size: int = 0
    position: int = 0
    error: str | None = None


def _pack(c: TraceCall) -> tuple[Any, ...]:
    return (
        c.call_id, c.from_user, c.from_display, c.pai, c.diversion, c.request_user,
        c.to_user, c.src_ip, c.src_port, c.dst_ip, c.dst_port, c.transport, c.user_agent,
        c.invite_time, c.ringing_time, c.final_status, c.final_time, c.answer_time,
        c.end_time, c.end_method, c.ended_by.value if c.ended_by is not None else None,
        c.where,
    )


def _unpack(t: tuple[Any, ...]) -> TraceCall:
    fields: list[Any] = list(t)
    if fields[20] is not None:
        fields[20] = EndedBy(fields[20])
    return TraceCall(*fields)


def _worker(path: str, out: Any, skips_kept: int) -> None:
    from fs_plugin.logs import configure_logging
    from fs_plugin.replay.commands import REPLAY_GC_THRESHOLD

    # A fresh interpreter: without this structlog's default would print the reader's
    # info lines to the stdout the report is written on.
    configure_logging(json=False, level="warning", mask=False)
    # This process only reads: it keeps the higher threshold to its end.
    gc.set_threshold(REPLAY_GC_THRESHOLD, *gc.get_threshold()[1:])
    done = ReadDone()
    try:
        with read_trace(path) as result:
            done.format = result.format.value
            done.size = result.size
            batch: list[tuple[Any, ...]] = []
            for call in result:
                batch.append(_pack(call))
                if len(batch) >= BATCH_CALLS:
                    out.put((batch, result.watermark, result.position()))
                    batch = []
            if batch:
                out.put((batch, float("inf"), done.size))
        stats = result.stats
        done.frames, done.messages, done.calls = stats.frames, stats.messages, stats.calls
        done.skip_counts = result.skip_counts
        done.skipped = result.skipped[:skips_kept]
    except OSError as exc:
        done.error = f"{type(exc).__name__}: {exc.strerror or exc}"
    out.put(done)


def read_in_worker(
    path: Path, done: ReadDone, *, skips_kept: int = 100
) -> Iterator[tuple[list[TraceCall], float, int]]:
    """Yield ``(calls, watermark, bytes read)`` batches read by a worker process.

    ``done`` is filled when the iteration ends. The worker is stopped if the consumer
    stops early.
    """
    ctx = multiprocessing.get_context("spawn")
    channel: Any = ctx.Queue(maxsize=MAX_BATCHES_IN_FLIGHT)
    worker = ctx.Process(target=_worker, args=(str(path), channel, skips_kept), daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = channel.get(timeout=_POLL_S)
            except queue_module.Empty:
                if not worker.is_alive():
                    done.error = f"reader process died (exit code {worker.exitcode})"
                    return
                continue
            if isinstance(item, ReadDone):
                for name in ReadDone.__slots__:
                    setattr(done, name, getattr(item, name))
                return
            packed, watermark, position = item
            yield [_unpack(t) for t in packed], watermark, position
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=5.0)
        channel.close()
        channel.join_thread()

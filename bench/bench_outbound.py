"""Calls per second and decision latency through the outbound socket.

The controller runs as its own process (``fs-plugin run``), exactly as on a switch;
this script plays FreeSWITCH with the lab switch in another process, over loopback
TCP, one connection per call as the synchronous ``socket`` app makes them.

    python bench/bench_outbound.py --calls 20000 --concurrency 64      # throughput
    python bench/bench_outbound.py --rate 1000 --seconds 10            # latency at a rate

Decision latency is measured where FreeSWITCH would see it: from the channel data
written to the controller's first command read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from fs_plugin.lab.calls import LabCall
from fs_plugin.lab.switch import CallResult, LabSwitch

REPO = Path(__file__).resolve().parents[1]

MIX = [
    LabCall(from_user="02088881234", to="13900001111", trunk="ent-1", pai="02088881234"),
    LabCall(from_user="02155550123", to="13900001113", trunk="ent-1"),
    LabCall(from_user="+8613900002222", to="13900001117", trunk="intl-gw"),
    LabCall(from_user="02088887777", to="13900001120", trunk="ent-1"),
    LabCall(from_user="0999123", to="13900001115", trunk="ent-1"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _report(label: str, results: list[CallResult], elapsed: float) -> None:
    lat = [r.decision_ms for r in results if r.decision_ms is not None]
    fallbacks = sum(1 for r in results if r.fallback)
    print(f"{label}: {len(results)} calls in {elapsed:.2f} s = {len(results) / elapsed:,.0f} "
          f"calls/s; decision latency p50 {statistics.median(lat):.2f} ms, "
          f"p99 {_pct(lat, 0.99):.2f} ms, max {max(lat):.2f} ms; fallbacks {fallbacks}")


async def _throughput(port: int, n: int, concurrency: int) -> None:
    switch = LabSwitch("127.0.0.1", port)
    calls = [MIX[i % len(MIX)] for i in range(n)]
    await switch.place_all(calls[: min(500, n)], concurrency)  # warm-up
    started = time.perf_counter()
    results = await switch.place_all(calls, concurrency)
    _report("throughput", results, time.perf_counter() - started)


async def _paced(port: int, rate: float, seconds: float) -> None:
    switch = LabSwitch("127.0.0.1", port)
    n = int(rate * seconds)
    tasks = []
    started = time.perf_counter()
    for i in range(n):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(switch.place(MIX[i % len(MIX)])))
    results = list(await asyncio.gather(*tasks))
    _report(f"paced {rate:.0f}/s", results, time.perf_counter() - started)


class _LightCall(asyncio.Protocol):
    """A minimal FreeSWITCH ``socket`` app: pre-encoded channel data, close after ``exit``.

    The lab switch builds and URL-encodes ~150 headers per call and parses every reply,
    which on a 2-core machine makes the load generator, not the controller, the limit.
    This one sends the same bytes (a template with the call's UUID swapped in) and only
    looks for the end of the first command and for ``exit``.
    """

    def __init__(self, wire: bytes, done: asyncio.Future[float | None]) -> None:
        self.wire = wire
        self.done = done
        self.buf = b""
        self.sent_at = 0.0
        self.latency: float | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.sent_at:
            if b"connect\n\n" in self.buf:
                self.buf = b""
                self.sent_at = time.perf_counter()
                assert self.transport is not None
                self.transport.write(self.wire)
            return
        if self.latency is None and b"\n\n" in self.buf:
            self.latency = (time.perf_counter() - self.sent_at) * 1e3
        if b"exit\n\n" in self.buf:
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.latency)


def _templates() -> list[tuple[bytes, bytes]]:
    from fs_plugin import esl
    from fs_plugin.lab.sofia import ChannelIdentity, channel_data_headers

    out = []
    for call in MIX:
        ident = ChannelIdentity.new(time.time_ns() // 1000, 1)
        wire = esl.encode_channel_data(channel_data_headers(call, ident, 1, "bench"))
        out.append((wire, ident.uuid.encode()))
    return out


async def _light_call(port: int, wire: bytes) -> float | None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float | None] = loop.create_future()
    try:
        await loop.create_connection(lambda: _LightCall(wire, done), "127.0.0.1", port)
    except OSError:
        return None
    return await done


def _light_wire(templates: list[tuple[bytes, bytes]], i: int) -> bytes:
    wire, uuid = templates[i % len(templates)]
    fresh = f"{i:08x}-0000-4000-8000-{i:012x}".encode()
    return wire.replace(uuid, fresh)


def _report_light(label: str, latencies: list[float | None], elapsed: float) -> None:
    lat = [x for x in latencies if x is not None]
    failed = len(latencies) - len(lat)
    print(f"{label} (light generator): {len(latencies)} calls in {elapsed:.2f} s = "
          f"{len(latencies) / elapsed:,.0f} calls/s; decision latency p50 "
          f"{statistics.median(lat):.2f} ms, p99 {_pct(lat, 0.99):.2f} ms, max {max(lat):.2f} "
          f"ms; unanswered {failed}")


async def _light_throughput(port: int, n: int, concurrency: int) -> None:
    templates = _templates()
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> float | None:
        async with sem:
            return await _light_call(port, _light_wire(templates, i))

    await asyncio.gather(*(one(i) for i in range(min(500, n))))  # warm-up
    started = time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(n)))
    _report_light("throughput", list(latencies), time.perf_counter() - started)


async def _light_paced(port: int, rate: float, seconds: float) -> None:
    templates = _templates()
    n = int(rate * seconds)
    tasks = []
    started = time.perf_counter()
    for i in range(n):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_light_call(port, _light_wire(templates, i))))
    latencies = await asyncio.gather(*tasks)
    _report_light(f"paced {rate:.0f}/s", list(latencies), time.perf_counter() - started)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to state the controller's cost
    per call independently of what else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drive(args: argparse.Namespace, port: int, pid: int | None = None) -> None:
    # The load generator gets the same fast loop as the controller, so it is not the limit.
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    cpu0 = _cpu_seconds(pid) if pid else 0.0
    paced, throughput = (_paced, _throughput) if args.lab_switch else (_light_paced,
                                                                      _light_throughput)
    if args.rate:
        asyncio.run(paced(port, args.rate, args.seconds))
        calls = int(args.rate * args.seconds)
    else:
        asyncio.run(throughput(port, args.calls, args.concurrency))
        calls = args.calls + min(500, args.calls)
    if pid:
        cpu = _cpu_seconds(pid) - cpu0
        print(f"controller CPU: {cpu:.2f} s for {calls} calls = {cpu / calls * 1e6:.0f} µs "
              f"per call → {calls / cpu:,.0f} calls/s per core")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--counters", default="memory://", help="counter store URL")
    ap.add_argument("--journal", default="off", help="off | embedded | DSN")
    ap.add_argument("--lab-switch", action="store_true",
                    help="load with the full lab switch (verdicts checked) instead of the "
                         "light generator")
    ap.add_argument("--external", type=int, default=None,
                    help="load a controller already listening on this loopback port")
    args = ap.parse_args()
    if args.external:
        _drive(args, args.external)
        return
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    controller = subprocess.Popen(
        [sys.executable, "-m", "fs_plugin.cli", "run", "--policy", str(REPO / "policies"),
         "--listen", f"127.0.0.1:{port}", "--log-level", "warning",
         "--journal", args.journal, "--counters", args.counters,
         "--state-dir", str(REPO / "state" / "bench")],
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        _drive(args, port, controller.pid)
    finally:
        controller.terminate()
        controller.wait(10)


if __name__ == "__main__":
    main()

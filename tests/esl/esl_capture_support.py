"""Helpers shared by the ESL tests: load the real captures and replay them.

A capture is replayed through the client ``Connection`` with the client's commands sent
at the byte offset of FreeSWITCH's stream where the transcript shows them, so FIFO
correlation and the state machine see the real interleaving. Extra cut points split
FreeSWITCH's bytes further without changing where commands are sent: every split must
give the same events.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fs_plugin import esl

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FSP_SHARED", REPO.parent / "shared"))
ESL_DIR = SHARED / "fixtures" / "esl"
MORE_DIR = ESL_DIR / "more"

TOP_CAPTURES = sorted(p.name.removesuffix(".fs.bin") for p in ESL_DIR.glob("*.fs.bin"))
MORE_CAPTURES = sorted(p.name.removesuffix(".fs.raw.txt") for p in MORE_DIR.glob("*.fs.raw.txt"))
ALL_CAPTURES = [f"top/{n}" for n in TOP_CAPTURES] + [f"more/{n}" for n in MORE_CAPTURES]

_TOP_MARK = re.compile(rb"(>>> sent|<<< received) \((\d+) bytes\)\n")
_MORE_MARK = re.compile(
    rb"=== \[\+[0-9.]+s\] (FS -> CLIENT|CLIENT -> FS)( \[EOF\])? \((\d+) bytes\) ===\n"
)


@dataclass(frozen=True)
class Capture:
    key: str
    role: esl.Role
    fs: bytes  # exactly what FreeSWITCH sent
    client: bytes  # exactly what the client sent
    # (offset in ``fs`` reached when the client wrote, the commands completed by that write)
    schedule: tuple[tuple[int, tuple[esl.Command, ...]], ...]


def _chunks(key: str) -> list[tuple[bool, bytes]]:
    """(sent by the client?, bytes) for every transcript chunk, in order."""
    folder, name = key.split("/")
    out: list[tuple[bool, bytes]] = []
    if folder == "top":
        data = (ESL_DIR / f"{name}.transcript.txt").read_bytes()
        pos = 0
        while pos < len(data):
            m = _TOP_MARK.match(data, pos)
            assert m is not None, (key, pos, data[pos : pos + 60])
            n = int(m.group(2))
            out.append((m.group(1) == b">>> sent", data[m.end() : m.end() + n]))
            pos = m.end() + n
            if data[pos : pos + 1] == b"\n" and not _TOP_MARK.match(data, pos):
                pos += 1  # the logger ends a chunk that lacks one with a newline
    else:
        data = (MORE_DIR / f"{name}.transcript.txt").read_bytes()
        pos = 0
        while pos < len(data):
            m = _MORE_MARK.match(data, pos)
            assert m is not None, (key, pos, data[pos : pos + 60])
            n = int(m.group(3))
            out.append((m.group(1) == b"CLIENT -> FS", data[m.end() : m.end() + n]))
            pos = m.end() + n
            if n or m.group(2):
                # the logger adds one "\n" after each chunk
                assert data[pos : pos + 1] == b"\n", (key, pos)
                pos += 1
    return out


@cache
def load(key: str) -> Capture:
    folder, name = key.split("/")
    fs_path = ESL_DIR / f"{name}.fs.bin" if folder == "top" else MORE_DIR / f"{name}.fs.raw.txt"
    fs = fs_path.read_bytes()
    parser = esl.SwitchConnection()
    schedule: list[tuple[int, tuple[esl.Command, ...]]] = []
    offset = 0
    sent = bytearray()
    for from_client, chunk in _chunks(key):
        if not from_client:
            offset += len(chunk)
            continue
        sent += chunk
        parser.receive_data(chunk)
        done = []
        while not isinstance(cmd := parser.next_command(), esl.NeedData):
            assert not isinstance(cmd, esl.ConnectionClosed)
            done.append(cmd)
        if done:
            schedule.append((offset, tuple(done)))
    assert offset == len(fs), f"{key}: transcript and capture disagree"
    if folder == "more":
        assert bytes(sent) == (MORE_DIR / f"{name}.client.raw.txt").read_bytes()
    role = esl.Role.INBOUND if name.startswith("in_") else esl.Role.OUTBOUND
    return Capture(key, role, fs, bytes(sent), tuple(schedule))


@dataclass
class Replay:
    events: list[esl.Event]
    refused: list[esl.Command]
    conn: esl.Connection


def replay(capture: Capture, cuts: Iterable[int] = ()) -> Replay:
    """Feed ``capture.fs`` cut at ``cuts`` (and where the client wrote), draining after
    every piece and sending each command at its transcript offset; then EOF."""
    conn = esl.Connection(capture.role)
    sends: dict[int, list[esl.Command]] = {}
    for offset, commands in capture.schedule:
        sends.setdefault(offset, []).extend(commands)
    points = sorted({0, len(capture.fs), *sends, *(c for c in cuts if 0 < c < len(capture.fs))})
    events: list[esl.Event] = []
    refused: list[esl.Command] = []

    def drain() -> None:
        while not isinstance(ev := conn.next_event(), esl.NeedData):
            events.append(ev)
            if isinstance(ev, esl.ConnectionClosed):
                return

    pos = 0
    for point in points:
        if point > pos:
            conn.receive_data(capture.fs[pos:point])
            drain()
            pos = point
        for command in sends.get(point, ()):
            if conn.can_send(command):
                conn.send(command)
            else:
                refused.append(command)
    conn.receive_data(b"")
    drain()
    return Replay(events, refused, conn)


def signature(event: esl.Event) -> str:
    """A short, readable description of an event, for expected sequences."""
    match event:
        case esl.AuthRequest():
            return "auth-request"
        case esl.ChannelData():
            return f"channel-data {event.socket_mode}/{event.control}"
        case esl.CommandReply():
            verb = esl.command_verb(event.command) if event.command is not None else "-"
            return f"reply[{verb}] {event.reply_text}"
        case esl.ApiResponse():
            verb = esl.command_verb(event.command) if event.command is not None else "-"
            return f"api[{verb}] {'ok' if event.ok else 'err'}"
        case esl.EslEvent():
            return f"{event.format} {event.name}"
        case esl.DisconnectNotice():
            return f"notice {event.disposition}"
        case esl.RudeRejection():
            return "rude-rejection"
        case esl.LogData():
            return f"log {event.level}"
        case esl.UnknownFrame():
            return f"unknown {event.frame.content_type}"
        case esl.ConnectionClosed():
            return "closed"
    raise AssertionError(event)

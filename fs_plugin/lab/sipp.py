"""Running SIPp against the lab's SIP front and reading what each call was answered.

SIPp's exit status says whether every call reached the end of its scenario; the
scenarios of ``lab/sipp/`` end successfully on any answer, so the response each
call got is read from SIPp's own message log (``-trace_msg``): the first final
response to the INVITE, per Call-ID. The Call-ID is SIPp's ``[call_id]``
(``N-PID@IP``): ``N``, the call number, picks the CSV line the call used.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fs_plugin.replay.sip import SipParseError, parse_message

__all__ = ["SippResult", "final_responses", "find_sipp", "run_sipp"]

#: Each message in SIPp's ``-trace_msg`` log starts after a dashed line with a time
#: stamp and a line saying what happened to it.
_ENTRY = re.compile(
    r"^-{20,}[^\n]*\n(?P<what>(?:UDP|TCP|TLS|SCTP) message (?:received|sent)[^\n]*)\n\n",
    re.MULTILINE,
)
#: What ends a SIPp run that is stuck: the run's own ``-timeout`` comes first; this
#: guards against a SIPp that ignores it.
_KILL_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class SippResult:
    exit_code: int
    #: Call-ID → the first final (≥ 200) response to the call's INVITE SIPp received.
    finals: dict[str, int]
    #: Call-ID → every response status received for the INVITE, in order.
    responses: dict[str, list[int]] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    output: str = ""


def find_sipp() -> str | None:
    """The ``sipp`` binary on PATH (Debian package ``sip-tester``), or None."""
    return shutil.which("sipp")


def final_responses(log_text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Parse a ``-trace_msg`` log: (first final response, all responses) per Call-ID."""
    finals: dict[str, int] = {}
    responses: dict[str, list[int]] = {}
    entries = list(_ENTRY.finditer(log_text))
    for i, entry in enumerate(entries):
        if " received" not in entry.group("what"):
            continue
        end = entries[i + 1].start() if i + 1 < len(entries) else len(log_text)
        raw = log_text[entry.end():end].strip("\n").encode()
        try:
            msg = parse_message(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                                allow_short_body=True)
        except SipParseError:
            continue
        cseq = msg.cseq
        if msg.is_request or cseq is None or cseq[1] != "INVITE" or msg.call_id is None:
            continue
        responses.setdefault(msg.call_id, []).append(msg.status)
        if msg.status >= 200:
            finals.setdefault(msg.call_id, msg.status)
    return finals, responses


async def run_sipp(
    target: tuple[str, int],
    scenario: Path,
    inf: Path,
    *,
    calls: int,
    rate: float,
    transport: str = "udp",
    workdir: Path,
    timeout_s: float = 30.0,
    recv_timeout_ms: int = 10_000,
    sipp: str | None = None,
    extra: Sequence[str] = (),
) -> SippResult:
    """Run one SIPp UAC scenario to completion; returns its exit code and responses."""
    binary = sipp or find_sipp()
    if binary is None:
        raise FileNotFoundError("sipp not found (Debian: apt-get install sip-tester)")
    message_log = workdir / f"{scenario.stem}_messages.log"
    await asyncio.to_thread(_prepare, workdir, message_log)
    host, port = target
    command = (
        binary, f"{host}:{port}",
        "-sf", str(scenario), "-inf", str(inf),
        "-m", str(calls), "-r", f"{rate:g}", "-rp", "1000",
        "-t", "t1" if transport == "tcp" else "u1",
        "-i", host,
        "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        "-recv_timeout", str(recv_timeout_ms),
        "-trace_msg", "-message_file", str(message_log),
        "-nostdin", "-max_recv_loops", "1000",
        *extra,
    )
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + _KILL_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    text = await asyncio.to_thread(_read_log, message_log)
    finals, responses = final_responses(text)
    return SippResult(
        exit_code=proc.returncode if proc.returncode is not None else -1, finals=finals,
        responses=responses, command=command,
        output=out.decode("utf-8", "replace")[-4000:],
    )


def _prepare(workdir: Path, message_log: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    message_log.unlink(missing_ok=True)


def _read_log(message_log: Path) -> str:
    try:
        return message_log.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""

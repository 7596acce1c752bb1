"""SIPp scenarios end to end: controller, lab switch, SIP front, SIPp, per-call results.

The catalogue is ``lab/sipp/scenarios.yaml``: each scenario is a list of steps,
each step one SIPp run (scenario XML, CSV of calls, rate, transport). Each CSV
line is one call — ``caller;callee;pai;trunk`` for SIPp, then the expectations
``sip;verdict;rule`` read only here (empty: not checked; ``-`` as rule: no rule
fired). Steps run one after another and the outcomes of a step's calls are
processed by the controller before the next starts, so a later step sees the
statistics (wangiri, bombing) of the earlier ones.

The controller runs in-process with memory counters, on free ports; its clock
(and the switch's outcome times) may be set to a chosen instant (``at``) so that
calendar rules (contract hours) give the same answer whenever the lab runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from fs_plugin.clock import Clock, SystemClock
from fs_plugin.errors import ConfigError
from fs_plugin.lab.sip_front import SipCallRecord, SipFront, SipFrontSettings
from fs_plugin.lab.sipp import SippResult, run_sipp
from fs_plugin.lab.switch import LabSwitch

__all__ = [
    "CallExpectation",
    "OffsetClock",
    "Scenario",
    "ScenarioCall",
    "ScenarioRun",
    "Step",
    "default_catalogue",
    "format_run",
    "load_catalogue",
    "run_scenario",
]

_STEP_KEYS = {"sipp", "calls", "rate", "transport", "description"}
_SCENARIO_KEYS = {"description", "steps", "at", "answer_after_s"}
#: Bounds of one SIPp step: every lab scenario is a few dozen calls at most.
_MAX_CALLS_PER_STEP = 1000


class OffsetClock:
    """Wall time that starts at a chosen instant and then runs at the real rate."""

    def __init__(self, start: float) -> None:
        self._start = start
        self._mono0 = time.monotonic()

    def time(self) -> float:
        return self._start + (time.monotonic() - self._mono0)

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class CallExpectation:
    caller: str
    callee: str
    pai: str
    trunk: str
    sip: int | None = None
    verdict: str | None = None
    #: Expected rule; ``""`` for "no rule fired", ``None`` for not checked.
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    sipp: Path
    calls_file: Path
    calls: tuple[CallExpectation, ...]
    rate: float = 10.0
    transport: str = "udp"
    description: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    #: ISO instant the lab clock starts at (``None``: now).
    at: str | None = None
    answer_after_s: float = 2.0


@dataclass(frozen=True, slots=True)
class ScenarioCall:
    step: int
    index: int
    call_id: str | None
    expected: CallExpectation
    #: Final response SIPp received (None: none in its log).
    sip_seen: int | None
    record: SipCallRecord | None

    @property
    def verdict(self) -> str | None:
        return None if self.record is None else self.record.verdict

    @property
    def rule(self) -> str | None:
        return None if self.record is None else self.record.rule

    @property
    def errors(self) -> list[str]:
        exp = self.expected
        errs: list[str] = []
        if self.sip_seen is None:
            errs.append("SIPp saw no final response")
        elif exp.sip is not None and exp.sip != self.sip_seen:
            errs.append(f"SIP {self.sip_seen} != expected {exp.sip}")
        if self.record is None:
            errs.append("the SIP front has no record of the call")
        else:
            if self.sip_seen is not None and self.record.sip_status != self.sip_seen:
                errs.append(f"front sent {self.record.sip_status}, SIPp saw {self.sip_seen}")
            if exp.verdict is not None and exp.verdict != self.verdict:
                errs.append(f"verdict {self.verdict} != expected {exp.verdict}")
            if exp.rule is not None and exp.rule != (self.rule or ""):
                errs.append(f"rule {self.rule or '-'} != expected {exp.rule or '-'}")
        return errs


@dataclass(frozen=True, slots=True)
class ScenarioRun:
    scenario: Scenario
    calls: tuple[ScenarioCall, ...]
    sipp: tuple[SippResult, ...]
    outcomes: int
    policy_version: str
    front_stats: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def ok(self) -> bool:
        return all(r.exit_code == 0 for r in self.sipp) and not any(
            c.errors for c in self.calls
        )

    def rule_counts(self) -> Counter[str]:
        return Counter(c.rule or "-" for c in self.calls)


# -- the catalogue -------------------------------------------------------------------------


def default_catalogue() -> Path:
    """``lab/sipp/scenarios.yaml`` of the source tree (also found from the working dir)."""
    here = Path(__file__).resolve().parents[2] / "lab" / "sipp" / "scenarios.yaml"
    return here if here.exists() else Path("lab/sipp/scenarios.yaml")


def _read_calls(path: Path) -> tuple[CallExpectation, ...]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read calls file: {exc.strerror}", file=str(path)) from exc
    if not lines or lines[0].strip() not in ("SEQUENTIAL", "RANDOM", "USER"):
        raise ConfigError("first line must be SEQUENTIAL (SIPp -inf)", file=str(path), line=1)
    out: list[CallExpectation] = []
    for no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split(";")
        if len(fields) < 4:
            raise ConfigError("expected caller;callee;pai;trunk[;sip;verdict;rule]",
                              file=str(path), line=no)
        fields += [""] * (7 - len(fields))
        sip_text, verdict, rule = (f.strip() for f in fields[4:7])
        if sip_text and not sip_text.isdigit():
            raise ConfigError(f"expected SIP status {sip_text!r} is not a number",
                              file=str(path), line=no)
        out.append(CallExpectation(
            caller=fields[0], callee=fields[1], pai=fields[2], trunk=fields[3],
            sip=int(sip_text) if sip_text else None, verdict=verdict or None,
            rule=None if not rule else ("" if rule == "-" else rule),
        ))
    if not out:
        raise ConfigError("no calls", file=str(path))
    if len(out) > _MAX_CALLS_PER_STEP:
        raise ConfigError(f"more than {_MAX_CALLS_PER_STEP} calls", file=str(path))
    return tuple(out)


def load_catalogue(path: Path | None = None) -> dict[str, Scenario]:
    """Read the scenario catalogue; errors name the file and key."""
    path = path or default_catalogue()
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            str(getattr(exc, "problem", exc)), file=str(path),
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("scenarios"), Mapping):
        raise ConfigError("expected a mapping with 'scenarios'", file=str(path))
    base = path.parent
    out: dict[str, Scenario] = {}
    for name, raw in doc["scenarios"].items():
        key = f"scenarios.{name}"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("steps"), list):
            raise ConfigError("a scenario is a mapping with 'steps'", file=str(path), key=key)
        unknown = set(raw) - _SCENARIO_KEYS
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", file=str(path), key=key)
        steps = []
        for i, step in enumerate(raw["steps"]):
            skey = f"{key}.steps[{i}]"
            if not isinstance(step, Mapping) or not {"sipp", "calls"} <= set(step):
                raise ConfigError("a step needs 'sipp' and 'calls'", file=str(path), key=skey)
            unknown = set(step) - _STEP_KEYS
            if unknown:
                raise ConfigError(f"unknown keys {sorted(unknown)}", file=str(path), key=skey)
            transport = str(step.get("transport", "udp"))
            if transport not in ("udp", "tcp"):
                raise ConfigError("transport must be udp or tcp", file=str(path),
                                  key=f"{skey}.transport")
            calls_file = base / str(step["calls"])
            steps.append(Step(
                sipp=base / str(step["sipp"]), calls_file=calls_file,
                calls=_read_calls(calls_file), rate=float(step.get("rate", 10)),
                transport=transport, description=str(step.get("description", "")),
            ))
        at = raw.get("at", doc.get("at"))
        out[str(name)] = Scenario(
            name=str(name), description=str(raw.get("description", "")).strip(),
            steps=tuple(steps), at=None if at is None else str(at),
            answer_after_s=float(raw.get("answer_after_s", 2.0)),
        )
    return out


# -- running ----------------------------------------------------------------------------


def _call_number(call_id: str) -> int | None:
    number = call_id.partition("-")[0]
    return int(number) if number.isdigit() else None


async def run_scenario(
    scenario: Scenario,
    policy: Path,
    *,
    at: str | None = None,
    workdir: Path | None = None,
    sipp: str | None = None,
    step_timeout_s: float = 30.0,
) -> ScenarioRun:
    """Start controller, switch and SIP front; run every step with SIPp; collect results."""
    from fs_plugin.service import Service, ServiceConfig
    from fs_plugin.transport.inbound import InboundSettings
    from fs_plugin.transport.outbound import OutboundSettings

    start_at = at or scenario.at
    clock: Clock = (
        OffsetClock(datetime.fromisoformat(start_at).timestamp()) if start_at else SystemClock()
    )
    password = secrets.token_hex(8)
    switch = LabSwitch(socket_timeout_s=3.0)
    esl_port = await switch.start_event_socket(password=password)
    service = Service(ServiceConfig(
        policy, outbound=OutboundSettings(port=0),
        inbound=InboundSettings(port=esl_port, password=password, backoff_initial_s=0.05,
                                backoff_max_s=0.2),
        shutdown_grace_s=2.0,
    ), clock=clock)
    outcomes = _OutcomeCounter()
    service.outcome_hooks.append(outcomes.hook)
    front: SipFront | None = None
    results: list[SippResult] = []
    calls: list[ScenarioCall] = []
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fsp-lab-")
        workdir = Path(tmp.name)
    try:
        await service.start()
        assert service.inbound is not None
        await service.inbound.wait_connected(5.0)
        switch.controller_port = service.outbound.bound_port or 0
        on_error = {tid: t.on_error.value for tid, t in service.policy.snapshot.trunks.items()}
        front = SipFront(switch, SipFrontSettings(
            on_error_by_trunk=MappingProxyType(on_error),
            answer_after_s=scenario.answer_after_s,
        ), clock=clock)
        await front.start()
        for n, step in enumerate(scenario.steps):
            before = len(front.records)
            result = await run_sipp(
                ("127.0.0.1", front.port), step.sipp, step.calls_file, calls=len(step.calls),
                rate=step.rate, transport=step.transport, workdir=workdir / f"step{n}",
                timeout_s=step_timeout_s, sipp=sipp,
            )
            results.append(result)
            # SIPp is done once it has the final answers; the front may still be
            # waiting on the last ACKs and BYEs.
            await front.wait_records(before + len(result.finals), 5.0)
            await _settle_outcomes(service, front, outcomes)
            by_id = {r.call_id: r for r in front.records[before:]}
            placed: dict[int, str] = {}
            for call_id in set(result.finals) | set(by_id):
                number = _call_number(call_id)
                if number is not None:
                    placed[number] = call_id
            for i, exp in enumerate(step.calls):
                found = placed.get(i + 1)
                calls.append(ScenarioCall(
                    step=n, index=i + 1, call_id=found, expected=exp,
                    sip_seen=None if found is None else result.finals.get(found),
                    record=None if found is None else by_id.get(found),
                ))
    finally:
        if front is not None:
            await front.stop()
        await service.stop()
        await switch.stop()
        if tmp is not None:
            tmp.cleanup()
    return ScenarioRun(
        scenario=scenario, calls=tuple(calls), sipp=tuple(results), outcomes=outcomes.count,
        policy_version=service.policy.version,
        front_stats=MappingProxyType(dict(front.stats) if front is not None else {}),
    )


class _OutcomeCounter:
    """Counts the outcomes the controller received over the event socket."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def hook(self, _outcome: object) -> None:
        self.count += 1
        self._changed.set()

    async def wait_for(self, count: int, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.count < count:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


async def _settle_outcomes(service: Any, front: SipFront, outcomes: _OutcomeCounter) -> None:
    """Wait until the controller has processed every outcome of the calls so far (bounded)."""
    await outcomes.wait_for(sum(1 for r in front.records if r.result is not None), 5.0)
    await service.drain_outcomes(5.0)


# -- printing ------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_run(run: ScenarioRun) -> str:
    """Per-call and per-rule tables, then a verdict line."""
    head = ("step", "#", "caller", "callee", "trunk", "SIP", "verdict", "rule", "expected",
            "check")
    rows: list[tuple[str, ...]] = [head]
    for c in run.calls:
        exp = c.expected
        expected = "/".join(x for x in (
            str(exp.sip) if exp.sip is not None else "",
            exp.verdict or "",
            (exp.rule or "-") if exp.rule is not None else "",
        ) if x)
        rows.append((
            str(c.step + 1), str(c.index), exp.caller, exp.callee, exp.trunk,
            "-" if c.sip_seen is None else str(c.sip_seen), c.verdict or "-", c.rule or "-",
            expected or "-", "ok" if not c.errors else "MISMATCH",
        ))
    out = [f"scenario {run.scenario.name}: {run.scenario.description}", "", *_table(rows), ""]
    rule_rows: list[tuple[str, ...]] = [("rule", "calls")]
    rule_rows += [(rule, str(n)) for rule, n in sorted(run.rule_counts().items())]
    out += _table(rule_rows)
    out.append("")
    codes = ", ".join(str(r.exit_code) for r in run.sipp)
    out.append(f"{len(run.calls)} calls, SIPp exit {codes}, outcomes on the event socket: "
               f"{run.outcomes}, policy {run.policy_version}")
    for c in run.calls:
        if c.errors:
            out.append(f"MISMATCH step {c.step + 1} call #{c.index} ({c.expected.caller} → "
                       f"{c.expected.callee}): {'; '.join(c.errors)}")
    for n, r in enumerate(run.sipp, 1):
        if r.exit_code != 0:
            out.append(f"SIPp step {n} exited {r.exit_code}: {r.output.strip()[-600:]}")
    out.append("PASS" if run.ok else "FAIL")
    return "\n".join(out)

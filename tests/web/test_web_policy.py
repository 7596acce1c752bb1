"""Policy life cycle: reloads under load, refused edits, file watching, diff."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs
from web_support import Env, SseReader, auth, close_env, make_env, until

from fs_plugin.cli import main
from fs_plugin.lab.calls import LabCall
from fs_plugin.policy import load_policy
from fs_plugin.screening.model import CallFacts
from fs_plugin.web.auth import Role
from fs_plugin.web.diff import diff_policies

BLOCKED = LabCall(from_user="02155550123", to="13900001113", trunk="ent-1")
BROKEN_RULES = "rules:\n  cid.not_allowed: {mode: enforce}\n  cid.not_allowed_typo: {mode: off}\n"


async def test_reload_during_load_loses_no_call(env: Env) -> None:
    rules = (env.policy_dir / "rules.yaml").read_text()
    calls = [LabCall(from_user="02088881234", to=f"1390000{i:04d}", trunk="ent-1")
             for i in range(150)] + [BLOCKED] * 150
    versions: set[str] = {env.rig.service.policy.version}

    async def reload_loop() -> None:
        for i in range(20):
            if i % 2:
                status, body = await env.call("POST", "/api/policy/reload", Role.EDITOR)
            else:  # a real change: the version moves
                status, body = await env.call("PUT", "/api/policy/files/rules.yaml",
                                              Role.EDITOR, data=f"{rules}# edit {i}\n".encode())
            assert status == 200, body
            versions.add(body["version"])
            await asyncio.sleep(0)

    results, _ = await asyncio.gather(
        env.rig.switch.place_all(calls, concurrency=30), reload_loop())
    assert len(results) == 300
    assert all(r.fallback is None for r in results)
    assert [r.verdict for r in results].count("block") == 150
    assert len(env.rig.records) == 300
    assert not any(rec.decision.fallback for rec in env.rig.records)
    assert env.rig.service.outbound.stats["fallbacks"] == 0
    # Every decision names the policy it was made with, one of those that were in force.
    assert {rec.decision.policy_version for rec in env.rig.records} <= versions
    assert len(versions) == 11
    assert sum(1 for e in env.web.policy.history if e.result == "applied") == 20


async def test_broken_policy_through_api_is_refused(env: Env) -> None:
    before = env.rig.service.policy.version
    on_disk = (env.policy_dir / "rules.yaml").read_bytes()
    status, body = await env.call("PUT", "/api/policy/files/rules.yaml", Role.EDITOR,
                                  data=BROKEN_RULES.encode())
    assert status == 400
    assert body["error"] == "policy_invalid"
    assert body["file"] == str(env.policy_dir / "rules.yaml")
    assert body["line"] == 3
    assert body["reason"].startswith(f"{env.policy_dir / 'rules.yaml'}:3:")
    assert env.rig.service.policy.version == before
    assert (env.policy_dir / "rules.yaml").read_bytes() == on_disk
    # A syntax error is located too; and a new file that breaks the whole is not written.
    status, body = await env.call("PUT", "/api/policy/files/extra.yaml", Role.EDITOR,
                                  data=b"trunks:\n  - id: [\n")
    assert status == 400 and body["line"] is not None
    assert not (env.policy_dir / "extra.yaml").exists()
    result = await env.rig.switch.place(BLOCKED)
    assert result.verdict == "block" and result.variables["fsp_verdict"] == "block"


async def test_broken_file_on_disk_is_refused_and_old_policy_stays(env: Env) -> None:
    before = env.rig.service.policy.version
    (env.policy_dir / "rules.yaml").write_text(BROKEN_RULES)
    with capture_logs() as logs:
        status, body = await env.call("POST", "/api/policy/reload", Role.EDITOR)
    assert status == 400
    assert (body["file"], body["line"]) == (str(env.policy_dir / "rules.yaml"), 3)
    assert body["version"] == before == env.rig.service.policy.version
    refused = [e for e in logs if e["event"] == "policy_refused"]
    assert refused and refused[0]["kept"] == before and ":3:" in refused[0]["error"]
    status, body = await env.call("POST", "/api/policy/reload?check_only=true", Role.EDITOR)
    assert status == 400


async def test_file_change_reloads_and_broken_change_is_refused(policy_copy: Path) -> None:
    env = await make_env(policy_copy, watch_policy=True, watch_debounce_ms=50)
    try:
        before = env.rig.service.policy.version
        history = env.web.policy.history
        await asyncio.sleep(0.3)  # let the watcher arm (watchfiles starts in a thread)
        rules = policy_copy / "rules.yaml"
        rules.write_text(BROKEN_RULES)
        async with asyncio.timeout(10):
            while not history:
                await asyncio.sleep(0.02)
        assert history[-1].result == "refused" and history[-1].trigger == "file-change"
        assert history[-1].error is not None and "rules.yaml:3:" in history[-1].error
        assert env.rig.service.policy.version == before
        fixed = (env.policy_dir.parent / "orig-rules.yaml")
        shutil.copy(Path(__file__).parents[2] / "policies" / "rules.yaml", fixed)
        rules.write_text(fixed.read_text() + "# tuned\n")
        async with asyncio.timeout(10):
            while history[-1].result != "applied":
                await asyncio.sleep(0.02)
        assert env.rig.service.policy.version != before
    finally:
        await close_env(env)


def _shadowed(repo_dir: Path, tmp_path: Path) -> Path:
    new = tmp_path / "new"
    shutil.copytree(repo_dir / "policies", new)
    rules = new / "rules.yaml"
    rules.write_text(rules.read_text().replace(
        "cid.not_allowed:      {mode: enforce, cause: UNWANTED}",
        "cid.not_allowed:      {mode: shadow, cause: UNWANTED}"))
    return new


async def test_diff_counts_changed_verdicts(repo_dir: Path, tmp_path: Path) -> None:
    old = load_policy(repo_dir / "policies")
    new = load_policy(_shadowed(repo_dir, tmp_path))
    now = time.time()
    calls = [(CallFacts(uuid=f"b{i}", from_user="02155550123", destination=f"139000011{i:02d}",
                        trunk_hint="ent-1"), now + i) for i in range(5)]
    calls.append((CallFacts(uuid="p", from_user="02088881234", destination="13900001111",
                            trunk_hint="ent-1"), now))
    report = await diff_policies(old, new, calls)
    assert (report.calls, report.changed) == (6, 5)
    assert report.transitions == {"block→pass": 5}
    assert report.by_trunk == {"ent-1": 5} and report.by_rule == {"cid.not_allowed": 5}
    assert report.shadow_new["cid.not_allowed"] == 5
    same = await diff_policies(old, old, calls)
    assert (same.changed, same.rule_only) == (0, 0)


async def test_diff_through_api_replays_recent_calls(env: Env) -> None:
    await env.rig.switch.place_all([BLOCKED] * 3, concurrency=3)
    rules = (env.policy_dir / "rules.yaml").read_text().replace(
        "cid.not_allowed:      {mode: enforce, cause: UNWANTED}",
        "cid.not_allowed:      {mode: shadow, cause: UNWANTED}")
    status, body = await env.call("POST", "/api/policy/diff", Role.EDITOR,
                                  json={"files": {"rules.yaml": rules}})
    assert status == 200, body
    assert (body["calls"], body["changed"], body["by_rule"]) == (3, 3, {"cid.not_allowed": 3})
    status, body = await env.call("POST", "/api/policy/diff", Role.EDITOR,
                                  json={"files": {"rules.yaml": BROKEN_RULES}})
    assert status == 400 and body["line"] == 3


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # the command configured warning-level logging


@pytest.mark.usefixtures("_restore_logging")
def test_policy_diff_cli_on_a_trace(repo_dir: Path, tmp_path: Path, shared_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    new = _shadowed(repo_dir, tmp_path)
    trace = shared_dir / "fixtures/sip/heplify_tcp_segmented_37calls_pai.pcap"
    code = main(["policy", "diff", str(repo_dir / "policies"), str(new), "--trace", str(trace),
                 "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["calls"] == 37
    assert report["new_version"] == load_policy(new).version
    # Unknown trunks are blocked by trunk.unknown under both policies: nothing changes.
    assert report["changed"] == 0
    code = main(["policy", "diff", str(repo_dir / "policies"), str(new)])
    assert code == 2


async def test_sighup_reload_that_fails_unexpectedly_is_logged(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash() -> None:  # what a loader fault would raise (not a refused policy)
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(env.rig.service, "web", env.web)  # as config.web would attach it
    monkeypatch.setattr(env.rig.service.policy, "reload", crash)
    with capture_logs() as logs:
        env.rig.service._on_sighup()
        await until(lambda: any(e["event"] == "policy_reload_failed" for e in logs),
                    "the failed reload to be logged")
    failed = next(e for e in logs if e["event"] == "policy_reload_failed")
    assert failed["trigger"] == "sighup" and "RecursionError" in failed["error"]


async def test_file_watch_goes_on_after_a_reload_fails_unexpectedly(
    policy_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("fs_plugin.web.app._WATCH_RETRY_S", 0.05, raising=False)
    env = await make_env(policy_copy, watch_policy=True, watch_debounce_ms=50)
    try:
        holder = env.rig.service.policy
        reload = holder.reload
        crashed: list[bool] = []

        def crash_once() -> object:  # a loader fault (not a refused policy), the first time
            if not crashed:
                crashed.append(True)
                raise RecursionError("maximum recursion depth exceeded")
            return reload()

        monkeypatch.setattr(holder, "reload", crash_once)
        before = holder.version
        rules = policy_copy / "rules.yaml"
        original = rules.read_text()
        with capture_logs() as logs:
            await asyncio.sleep(0.3)  # let the watcher arm (watchfiles starts in a thread)
            rules.write_text(original + "# first\n")
            await until(lambda: bool(crashed), "the first reload")
            await until(lambda: any(e["event"] == "policy_watch_failed" for e in logs),
                        "the failure to be logged")
            # Watching again: a later edit is applied. Written until seen, since an edit
            # made while the watcher re-arms is only picked up with the next one.
            try:
                async with asyncio.timeout(10):
                    n = 0
                    while holder.version == before:
                        n += 1
                        rules.write_text(original + f"# edit {n}\n")
                        await asyncio.sleep(0.3)
            except TimeoutError:
                raise AssertionError("later edits were never applied: watching ended") from None
        assert env.web.policy.history[-1].trigger == "file-change"
    finally:
        await close_env(env)


async def test_refused_list_file_reaches_the_noc_with_its_number_masked(env: Env) -> None:
    # A refused DNC list quotes the bad line's number; the NOC sees numbers masked
    # everywhere (live stream and /api/policy history), editors get it in full.
    with (env.policy_dir / "data/dnc-national.csv").open("a") as f:
        f.write("1390000111x,2026-05-20\n")
    noc = auth(Role.NOC)
    async with env.http.get(env.base + "/api/stream?backlog=0", headers=noc) as resp:
        stream = SseReader(resp)
        await stream.next("status")
        status, body = await env.call("POST", "/api/policy/reload", Role.EDITOR)
        assert status == 400 and "'1390000111x'" in body["reason"]
        event = await stream.next("policy")
    assert event["result"] == "refused"
    assert "1390000111" not in event["error"] and "139***0111x" in event["error"]
    status, policy = await env.call("GET", "/api/policy", Role.NOC)
    assert status == 200
    (last,) = policy["history"]
    assert "1390000111" not in last["error"] and "139***0111x" in last["error"]

"""``fs-plugin policy diff OLD NEW --journal DSN``: journaled calls replayed through two
policies, the command run as an operator runs it (a separate process)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from web_support import Env, place_and_journal

from fs_plugin.lab.calls import LabCall
from fs_plugin.policy import load_policy

WIDE = '"02088880000-02088889999"'
NARROW = '"02088880000-02088884999"'  # NEW: acme keeps only the lower half of its block
SHADOW_TM = "label.telemarketing:  {mode: shadow, verdict: block}"
ENFORCE_TM = "label.telemarketing:  {mode: enforce, verdict: block}"

CALLS = [
    LabCall(from_user="02088881234", to="13900002001", trunk="ent-1"),  # allowed by both
    LabCall(from_user="02088886001", to="13900002002", trunk="ent-1"),  # NEW blocks
    LabCall(from_user="02088887002", to="13900002003", trunk="ent-1"),  # NEW blocks
    LabCall(from_user="02155550123", to="13900002004", trunk="ent-1"),  # blocked by both
    LabCall(from_user="13500005555", to="13900002005", trunk="ic-1"),  # telemarketing label
    LabCall(from_user="95566", to="13900002006", trunk="cc-1"),  # call centre, allowed
]


def _candidate(old: Path, target: Path) -> Path:
    shutil.copytree(old, target)
    for name, before, after in (("trunks.yaml", WIDE, NARROW), ("rules.yaml", SHADOW_TM,
                                                                  ENFORCE_TM)):
        text = (target / name).read_text()
        assert text.count(before) == 1, f"{name} no longer has {before}"
        (target / name).write_text(text.replace(before, after))
    return target


async def _fs_plugin(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fs_plugin.cli", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_policy_diff_replays_the_journal(
    jenv: Env, journal_dsn: str, tmp_path: Path
) -> None:
    results = await place_and_journal(jenv, *CALLS)
    journaled = {r.uuid: r.verdict for r in results}
    assert list(journaled.values()) == ["pass", "pass", "pass", "block", "pass", "pass"]
    old = jenv.policy_dir
    new = _candidate(old, tmp_path / "candidate")

    code, out, err = await _fs_plugin("policy", "diff", str(old), str(new),
                                      "--journal", journal_dsn, "--json")
    assert code == 0, err
    report = json.loads(out)
    # The YAML policy's version: the switch runs it with the (empty) ledger overlaid.
    assert report["old_version"] == jenv.rig.service.policy.base.version
    assert report["new_version"] == load_policy(new).version
    assert (report["calls"], report["changed"]) == (6, 3)
    assert report["transitions"] == {"pass→block": 3}
    assert report["by_trunk"] == {"ent-1": 2, "ic-1": 1}
    assert report["by_rule"] == {"cid.not_allowed": 2, "label.telemarketing": 1}
    # The trial rule's hit under OLD is an enforced block under NEW.
    assert report["shadow_old"] == {"label.telemarketing": 1}
    assert report["shadow_new"] == {}
    changed = {e["uuid"]: e for e in report["examples"]}
    assert set(changed) == {results[1].uuid, results[2].uuid, results[4].uuid}
    # Replaying OLD gives what the switch really decided for those calls.
    assert all(e["old"]["verdict"] == journaled[u] for u, e in changed.items())
    assert "02088886001" not in out  # reasons in the report are masked

    # Same policy on both sides: the journal replays without a single change.
    code, out, err = await _fs_plugin("policy", "diff", str(old), str(old),
                                      "--journal", journal_dsn)
    assert code == 0, err
    assert "6 call(s) replayed, 0 would change verdict" in out

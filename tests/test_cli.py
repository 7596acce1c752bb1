"""The command line as an engineer uses it (subprocesses, real exit codes and output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sys.executable, "-m", "fs_plugin.cli", *args], cwd=cwd, capture_output=True,
        text=True, timeout=timeout, env=env,
    )


@pytest.fixture
def broken_policy(tmp_path: Path, repo_dir: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    for f in (repo_dir / "policies").glob("*.yaml"):
        target.joinpath(f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    trunks = next(p for p in target.glob("*.yaml") if "trunks:" in p.read_text("utf-8"))
    text = trunks.read_text("utf-8").replace("on_error: pass", "on_error: maybe", 1)
    trunks.write_text(text, encoding="utf-8")
    return target


def test_demo_prints_the_verdict_table(repo_dir: Path) -> None:
    proc = _run("demo", cwd=repo_dir)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "verdict" in out and "SIP" in out
    for text in ("cid.not_allowed", "cid.fake_plus86", "cid.malformed", "607", "warn",
                 "疑似骚扰"):
        assert text in out
    assert "MISMATCH" not in out
    assert "outcomes received on the event socket: 15" in out


def test_check_accepts_the_example_policy(repo_dir: Path) -> None:
    proc = _run("check", "policies", cwd=repo_dir)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_check_names_file_line_and_key(broken_policy: Path, repo_dir: Path) -> None:
    proc = _run("check", str(broken_policy), cwd=repo_dir)
    assert proc.returncode == 1
    line = proc.stderr.splitlines()[0]
    assert ".yaml:" in line and "on_error" in line
    file_part, line_no = line.split(":")[0:2]
    assert Path(file_part).exists() and line_no.isdigit()
    # The line it names really holds the bad value.
    assert "maybe" in Path(file_part).read_text("utf-8").splitlines()[int(line_no) - 1]


def test_run_refuses_a_broken_policy_at_start(broken_policy: Path, repo_dir: Path) -> None:
    proc = _run("run", "--policy", str(broken_policy), "--listen", "127.0.0.1:0",
                cwd=repo_dir, timeout=30)
    assert proc.returncode == 1
    assert "on_error" in proc.stderr and ".yaml:" in proc.stderr


def test_explain_json(repo_dir: Path) -> None:
    proc = _run("explain", "--policy", "policies", "--trunk", "ent-1", "--from", "02155550123",
                "--to", "13900001111", "--json", cwd=repo_dir)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["verdict"] == "block" and doc["rule"] == "cid.not_allowed"
    assert doc["sip_status"] == 607
    assert any(step["rule"] == "cid.malformed" and not step["fired"] for step in doc["trail"])


def test_explain_text(repo_dir: Path) -> None:
    proc = _run("explain", "--policy", "policies", "--trunk", "intl-gw", "--from",
                "+8613900002222", "--to", "13900001111", cwd=repo_dir)
    assert proc.returncode == 0, proc.stderr
    assert "cid.fake_plus86" in proc.stdout and "block" in proc.stdout.lower()


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--policy", "policies", "--listen", "127.0.0.1:abc"], "not HOST:PORT"),
    (["run", "--policy", "policies", "--listen", "127.0.0.1:99999"], "is not 0–65535"),
    (["run", "--policy", "policies", "--esl", "[::1]:x"], "not HOST:PORT"),
    (["run", "--policy", "policies", "--http", "0.0.0.0:-1"], "is not 0–65535"),
    (["run", "--policy", "policies", "--allow", "10.0.0.0/33"], "--allow"),
    (["explain", "--from", "13900001111", "--to", "13800001111", "--at", "yesterday"],
     "not an ISO time"),
    (["policy", "diff", "policies", "policies", "--journal", "postgresql:///x",
      "--since", "2026-13-01"], "not an ISO time"),
    (["policy", "diff", "policies", "policies", "--journal", "postgresql:///x",
      "--until", "2026-01-01T00:00:00"], "no time zone"),
    (["lab", "calls", "lab/calls/demo.yaml", "--controller", "127.0.0.1:http"],
     "not HOST:PORT"),
])
def test_bad_arguments_are_usage_errors(args: list[str], message: str, repo_dir: Path) -> None:
    # Checked while parsing: before, each ran into a traceback (ValueError, OverflowError
    # from bind(), argparse's own ArgumentTypeError raised outside argparse) or exit 0.
    result = _run(*args, cwd=repo_dir, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "usage:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr

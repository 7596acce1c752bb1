"""``fs-plugin lab run``: tables per call and per rule, exit 1 on a mismatch."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from fs_plugin.cli import main
from fs_plugin.errors import ConfigError
from fs_plugin.lab.scenarios import load_catalogue
from fs_plugin.lab.sipp import find_sipp

requires_sipp = pytest.mark.skipif(
    find_sipp() is None, reason="sipp not installed (Debian/Ubuntu package sip-tester)"
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `lab run` configures structlog to write to the sys.stderr of the moment, which
    # pytest closes after the test: later tests' log lines must not go there.
    yield
    structlog.reset_defaults()


def _catalogue_copy(repo_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "sipp"
    shutil.copytree(repo_dir / "lab" / "sipp", dest)
    return dest


def test_list_names_the_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "list"]) == 0
    out = capsys.readouterr().out
    assert "ring-once" in out and "fake-plus86" in out


def test_unknown_scenario_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "run", "no-such-scenario"]) == 2
    assert "no scenario 'no-such-scenario'" in capsys.readouterr().err


def test_bad_calls_file_names_file_and_line(repo_dir: Path, tmp_path: Path) -> None:
    sipp = _catalogue_copy(repo_dir, tmp_path)
    (sipp / "spoofed.csv").write_text("SEQUENTIAL\n1;2;3;ent-1;six-oh-seven\n")
    with pytest.raises(ConfigError) as err:
        load_catalogue(sipp / "scenarios.yaml")
    assert err.value.line == 2 and str(sipp / "spoofed.csv") in err.value.location_text()


@requires_sipp
def test_run_prints_per_call_and_per_rule_tables(
    repo_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo_dir)
    assert main(["lab", "run", "malformed"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.split()[:6] == ["1", "1", "abc", "13900001111", "ent-1", "607"]
               for line in lines if line.strip())
    assert any(line.split() == ["cid.malformed", "3"] for line in lines)
    assert lines[-1] == "PASS"


@requires_sipp
def test_run_exits_1_when_a_response_differs_from_the_expectation(
    repo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sipp = _catalogue_copy(repo_dir, tmp_path)
    # Claim the spoofed caller would be let through: the switch answers 607.
    (sipp / "spoofed.csv").write_text(
        "SEQUENTIAL\n02155551234;13900001111;02155551234;ent-1;200;pass;-\n"
    )
    code = main(["lab", "run", "spoofed", "--policy", str(repo_dir / "policies"),
                 "--catalogue", str(sipp / "scenarios.yaml")])
    out = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH step 1 call #1" in out and "SIP 607 != expected 200" in out
    assert out.splitlines()[-1] == "FAIL"

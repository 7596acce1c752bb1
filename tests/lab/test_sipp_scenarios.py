"""Every SIPp scenario of lab/sipp/ end to end: SIPp → SIP front → lab switch → the real
controller over TCP → SIP response back to SIPp, and the outcome over the event socket.

Per call the test checks the final response SIPp itself logged against the scenario's
expectation, and the verdict and rule the controller gave."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fs_plugin.lab.scenarios import format_run, load_catalogue, run_scenario
from fs_plugin.lab.sipp import final_responses, find_sipp

requires_sipp = pytest.mark.skipif(
    find_sipp() is None, reason="sipp not installed (Debian/Ubuntu package sip-tester)"
)

#: What each scenario must show, independently of its CSV: (SIP status → calls).
EXPECTED_STATUSES = {
    "legitimate": {200: 6},
    "spoofed": {607: 3},
    "fake-plus86": {603: 3, 200: 1},
    "malformed": {607: 3},
    "ring-once": {487: 25},
    "flood": {487: 5, 607: 3},
    "marketing": {200: 1, 603: 3},
}


def test_catalogue_lists_every_scenario_with_an_expected_status_for_every_call() -> None:
    catalogue = load_catalogue()
    assert set(catalogue) == set(EXPECTED_STATUSES)
    for scenario in catalogue.values():
        for step in scenario.steps:
            assert step.sipp.exists() and step.calls
            assert all(c.sip is not None for c in step.calls), step.calls_file


def test_sipp_message_log_parser_reads_the_real_freeswitch_log(shared_dir: Path) -> None:
    text = (shared_dir / "fixtures" / "esl" / "out_sync_block_unwanted.sip.txt").read_text()
    finals, responses = final_responses(text)
    assert finals == {"1-976@127.0.0.1": 607}
    assert responses == {"1-976@127.0.0.1": [100, 607]}
    ring = (shared_dir / "fixtures" / "esl" / "in_ring_once_cancel_json.sip.txt").read_text()
    assert final_responses(ring)[1] == {"1-2811@127.0.0.1": [100, 180, 487]}


@requires_sipp
@pytest.mark.parametrize("name", sorted(EXPECTED_STATUSES))
async def test_scenario_end_to_end(name: str, repo_dir: Path, tmp_path: Path) -> None:
    scenario = load_catalogue()[name]
    run = await run_scenario(scenario, repo_dir / "policies", workdir=tmp_path)
    report = format_run(run)
    assert [r.exit_code for r in run.sipp] == [0] * len(scenario.steps), report
    assert Counter(c.sip_seen for c in run.calls) == Counter(EXPECTED_STATUSES[name]), report
    for call in run.calls:
        assert call.sip_seen == call.expected.sip, report
        assert call.record is not None and call.record.sip_status == call.sip_seen, report
        assert not call.errors, report
    # Every screened call's hangup reached the controller over the event socket.
    assert run.outcomes == sum(1 for c in run.calls if c.record and c.record.result), report
    assert run.ok and report.endswith("PASS")

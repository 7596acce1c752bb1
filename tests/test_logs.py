"""Log masking (phone numbers, unless configured otherwise) and secrets (never logged).

The lines are read as the service writes them: ``configure_logging`` on stderr.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from fs_plugin.lab.switch import LabSwitch
from fs_plugin.logs import configure_logging
from fs_plugin.policy.lists import read_number_csv
from fs_plugin.transport.inbound import InboundClient, InboundSettings

POLICIES = Path(__file__).resolve().parents[1] / "policies"
NUMBER = "13900001111"
MASKED = "139****1111"


def _logged(capsys: pytest.CaptureFixture[str], emit: Any, **config: Any) -> dict[str, Any]:
    configure_logging(**config)
    capsys.readouterr()
    emit(structlog.get_logger("test"))
    (line,) = capsys.readouterr().err.splitlines()
    return dict(json.loads(line))


def test_known_number_fields_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    got = _logged(capsys, lambda log: log.info("call_decided", caller=NUMBER, callee=NUMBER))
    assert got["caller"] == got["callee"] == MASKED


@pytest.mark.parametrize("key", ["destination", "to", "msisdn", "reporter", "from_norm"])
def test_numbers_under_other_field_names_are_masked(
    capsys: pytest.CaptureFixture[str], key: str
) -> None:
    got = _logged(capsys, lambda log: log.info("x", **{key: NUMBER}))
    assert got[key] == MASKED


@pytest.mark.parametrize("key", ["from_raw", "pai_raw", "caller_name", "sip_call_id"])
def test_numbers_in_headers_as_received_are_masked(
    capsys: pytest.CaptureFixture[str], key: str
) -> None:
    got = _logged(capsys, lambda log: log.info("x", **{key: f"<sip:{NUMBER}@10.0.0.1>"}))
    assert got[key] == f"<sip:{MASKED}@10.0.0.1>"


def test_lists_of_numbers_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    got = _logged(capsys, lambda log: log.info("x", numbers=[NUMBER, "02155550123"]))
    assert got["numbers"] == [MASKED, "021****0123"]


def test_numbers_quoted_in_free_text_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    reason = "From number 02155550123 is not among the caller IDs allowed on trunk ent-1"

    def emit(log: Any) -> None:
        log.warning("x", reason=reason,
                    error="bad_header_line: no ': ' in header line "
                          "'Caller-Caller-ID-Number:+86 139 0000 1111'",
                    pattern="cnt:callee:13900001111:*")

    got = _logged(capsys, emit)
    assert got["reason"] == reason.replace("02155550123", "021****0123")
    assert "0000 1111" not in got["error"] and "+86 1** **** 1111" in got["error"]
    assert got["pattern"] == f"cnt:callee:{MASKED}:*"


def test_refused_list_file_is_logged_with_the_number_masked(
    capsys: pytest.CaptureFixture[str]
) -> None:
    # What ``policy_refused`` logs when a DNC list has a bad line.
    _, (error,) = read_number_csv("data/dnc.csv", b"number,date\n1390000111x,2026-05-20\n",
                                  evidence=False)
    got = _logged(capsys, lambda log: log.error("policy_refused",
                                                error=error.location_text()))
    assert "1390000111" not in got["error"] and "'139***0111x'" in got["error"]


def test_dates_and_short_numbers_in_free_text_stay(capsys: pytest.CaptureFixture[str]) -> None:
    text = "data/dnc.csv:12: refusal date '2026-13-01' is not a date; line 1234567"
    got = _logged(capsys, lambda log: log.error("x", error=text))
    assert got["error"] == text


def test_numbers_in_tracebacks_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    def emit(log: Any) -> None:
        try:
            raise ValueError(f"'{NUMBER}' is not a valid number")
        except ValueError:
            log.exception("decision_failed", call_uuid="u-1")

    got = _logged(capsys, emit)
    assert NUMBER not in got["exception"] and MASKED in got["exception"]


def test_masking_off_logs_numbers_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    got = _logged(capsys, lambda log: log.info("x", caller=NUMBER, reason=f"from {NUMBER}"),
                  mask=False)
    assert got["caller"] == NUMBER and got["reason"] == f"from {NUMBER}"


@pytest.mark.parametrize("mask", [True, False])
@pytest.mark.parametrize(("value", "shown"), [
    ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
    ("rediss+cluster://app:s3cret@r1:7000,r2:7000", "rediss+cluster://app:***@r1:7000,r2:7000"),
    ("postgresql://fsp:s3cret@db.internal:5432/fsp", "postgresql://fsp:***@db.internal:5432/fsp"),
    ("host=db user=fsp password=s3cret dbname=fsp", "host=db user=fsp password=*** dbname=fsp"),
    ("counter store URL must start with redis://: 'reids://:s3cret@cache:6379'",
     "counter store URL must start with redis://: 'reids://:***@cache:6379'"),
])
def test_passwords_in_urls_and_dsns_are_never_logged(
    capsys: pytest.CaptureFixture[str], value: str, shown: str, mask: bool
) -> None:
    got = _logged(capsys, lambda log: log.error("x", error=value, url=value, dsn=[value]),
                  mask=mask)
    assert got["error"] == got["url"] == shown and got["dsn"] == [shown]
    assert "s3cret" not in json.dumps(got)


def test_password_in_a_traceback_is_not_logged(capsys: pytest.CaptureFixture[str]) -> None:
    def emit(log: Any) -> None:
        try:
            raise ConnectionError("cannot reach redis://default:s3cret@cache:6379")
        except ConnectionError:
            log.exception("task_failed")

    got = _logged(capsys, emit)
    assert "s3cret" not in got["exception"] and "default:***@cache" in got["exception"]


@pytest.mark.parametrize("password", ["s3cret-pw\r", "s3cret-" + "x" * 80 + "\n"])
async def test_esl_password_is_not_logged_when_it_cannot_be_sent(password: str) -> None:
    # An event socket password read with a stray CR/LF (a CRLF env file) is refused by
    # the codec, whose error quotes the value: the log says why, not what.
    switch = LabSwitch()
    port = await switch.start_event_socket(password="right")
    client = InboundClient(InboundSettings(port=port, password=password, backoff_initial_s=0.02,
                                           backoff_max_s=0.1, connect_timeout_s=1.0))
    with capture_logs() as logs:
        client.start()
        await asyncio.sleep(0.2)
        await client.stop()
    await switch.stop()
    lost = [e for e in logs if e["event"] == "inbound_disconnected"]
    assert lost and all("s3cret" not in str(e) for e in lost)
    assert "password contains a line break" in lost[0]["detail"]


@pytest.mark.parametrize("option", [["run", "--policy", str(POLICIES), "--listen", "127.0.0.1:0",
                                     "--journal", "off"], ["counters", "show"]])
def test_cli_does_not_print_a_mistyped_counters_url_password(
    capsys: pytest.CaptureFixture[str], option: list[str]
) -> None:
    from fs_plugin.cli import main

    assert main([*option, "--counters", "reids://:s3cret@cache:6379"]) == 1
    err = capsys.readouterr().err
    assert "reids://:***@cache:6379" in err and "s3cret" not in err

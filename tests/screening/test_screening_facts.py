"""facts_from_channel_data on the real channel data FreeSWITCH 1.10.12 sent."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import pytest

from fs_plugin.policy import load_policy
from fs_plugin.screening import Verdict, decide, facts_from_channel_data

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("FSP_SHARED", REPO.parent / "shared"))
FIXTURE = SHARED / "fixtures" / "esl" / "out_sync_pass.fs.bin"


def channel_data(path: Path) -> dict[str, str]:
    """The first header block of an outbound capture, URL-decoded (a stand-in for the codec)."""
    if not path.is_file():
        pytest.fail(f"fixture missing: {path}; set FSP_SHARED")
    block = path.read_bytes().split(b"\n\n", 1)[0]
    headers: dict[str, str] = {}
    for line in block.split(b"\n"):
        name, _, value = line.partition(b": ")
        headers[name.decode("ascii")] = unquote(value.decode("ascii"), encoding="utf-8")
    return headers


def test_facts_from_real_channel_data() -> None:
    headers = channel_data(FIXTURE)
    f = facts_from_channel_data(headers)
    assert f.uuid == "10571825-f1d5-4550-a75e-3015a9e05d16"
    assert f.from_user == "02088886666"
    assert f.pai == "02088886666"
    assert f.diversion is None
    assert f.destination == "813900001111"
    assert f.trunk_hint == "ent-1"
    assert f.sofia_profile == "trunks"
    assert f.gateway is None
    assert f.network_ip == "127.0.0.1"
    assert f.call_id == "1-927@127.0.0.1"
    assert f.user_agent is None
    assert f.switch == "vm"
    assert f.caller_id_name == "02088886666"
    assert f.timestamp_us == 1795422618185506
    assert f.variables["variable_sip_subject"] == "fsp acceptance"
    assert f.variables["Reply-Text"] == "+OK\n"


def test_real_call_passes_on_the_example_policy() -> None:
    f = facts_from_channel_data(channel_data(FIXTURE))
    d = decide(f, load_policy(REPO / "policies"))
    assert (d.verdict, d.trunk, d.customer) == (Verdict.PASS, "ent-1", "acme")


def test_fallbacks_and_alternatives() -> None:
    f = facts_from_channel_data({
        "Unique-ID": "u2",
        "Caller-Caller-ID-Number": "13900001111",
        "variable_sip_i_diversion": "<sip:02088880001@h>;reason=no-answer",
        "variable_sip_gateway_name": "intl-gw",
        "Event-Date-Timestamp": "garbage",
    })
    assert f.from_user == "13900001111"
    assert f.diversion == "<sip:02088880001@h>;reason=no-answer"
    assert f.gateway == "intl-gw"
    assert f.timestamp_us == 0
    assert f.destination == "" and f.pai is None


def test_h_diversion_preferred_and_empty_values_are_none() -> None:
    f = facts_from_channel_data({
        "variable_sip_h_Diversion": "<sip:1@h>",
        "variable_sip_i_diversion": "<sip:2@h>",
        "variable_sip_P-Asserted-Identity": "",
        "variable_sip_from_user": "",
        "Caller-Caller-ID-Number": "02088880001",
    })
    assert f.diversion == "<sip:1@h>"
    assert f.pai is None
    assert f.from_user == "02088880001"
    assert f.uuid == ""


def test_variables_are_a_read_only_copy() -> None:
    headers = {"Unique-ID": "u"}
    f = facts_from_channel_data(headers)
    headers["Unique-ID"] = "changed"
    assert f.variables["Unique-ID"] == "u"
    with pytest.raises(TypeError):
        f.variables["x"] = "y"  # type: ignore[index]

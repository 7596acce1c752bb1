"""The committed JSON Schema is generated from the models and matches the example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fs_plugin.policy.catalogue import RULES
from fs_plugin.policy.schema import json_schema, render

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "policies" / "schema.json"


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "policies/schema.json is stale: run "
        "`python -m fs_plugin.policy.schema > policies/schema.json`"
    )


def test_module_entry_point_prints_the_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fs_plugin.policy.schema"],
        check=True, capture_output=True, cwd=REPO,
    ).stdout.decode("utf-8")
    assert json.loads(out) == json_schema()


def test_schema_lists_every_rule_id_and_forbids_unknown_keys() -> None:
    schema = json_schema()
    assert set(schema["properties"]["rules"]["properties"]) == set(RULES)
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Trunk"]["additionalProperties"] is False
    assert schema["$defs"]["Trunk"]["required"] == ["id", "kind"]
    kind = schema["$defs"]["Trunk"]["properties"]["kind"]
    assert kind["enum"] == ["enterprise", "call_centre", "international", "interconnect"]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "policies").glob("*.yaml")))
def test_example_files_validate_against_the_schema(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((REPO / "policies" / name).read_text(encoding="utf-8"))
    # YAML gives dates for `expires:` and ints for unquoted numbers; JSON would carry text.
    text = json.loads(json.dumps(data, default=str))
    jsonschema.validate(text, json_schema())


def test_schema_rejects_a_typo() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"trunks": [{"id": "a", "kind": "interconnect", "on_eror": "pass"}]},
                            json_schema())

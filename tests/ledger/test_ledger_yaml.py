"""Reading a ledger YAML file (no database): malformed input is a ConfigError with a line."""

from __future__ import annotations

import pytest

from fs_plugin.errors import ConfigError
from fs_plugin.journal.ledger import read_yaml_rows
from fs_plugin.policy.models import Caps


def test_syntax_error_names_the_line_and_the_problem() -> None:
    with pytest.raises(ConfigError) as err:
        read_yaml_rows("customers:\n  - {id: a, name: A\n", file="l.yaml")
    assert err.value.file == "l.yaml" and err.value.line == 3
    assert err.value.message.startswith("not valid YAML: ")


def test_nesting_too_deep_is_an_error_not_a_crash() -> None:
    # Thousands of "[" used to exhaust Python's recursion limit inside PyYAML.
    with pytest.raises(ConfigError) as err:
        read_yaml_rows("customers: " + "[" * 5000 + "]" * 5000 + "\n", file="l.yaml")
    assert err.value.line == 1
    assert "nested deeper than 64 levels" in err.value.message


def test_a_valid_file_is_read() -> None:
    rows = read_yaml_rows("customers:\n  - {id: a, name: A}\n  - {id: b, name: B}\n")
    assert [r["id"] for r in rows["customers"]] == ["a", "b"]


def test_a_contract_term_with_a_control_character_is_a_value_error() -> None:
    from fs_plugin.journal.ledger import parse_term

    with pytest.raises(ValueError, match="special characters are not allowed"):
        parse_term("caps", "{caller: {per_day: 5\x01}}")
    term = parse_term("caps", "{caller: {per_day: 5}}")
    assert isinstance(term, Caps) and term.caller is not None and term.caller.per_day == 5

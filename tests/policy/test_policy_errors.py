"""Every ConfigError case: the file, line and dotted key an editor needs to fix it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fs_plugin.errors import ConfigError
from fs_plugin.policy import check_policy, load_policy

WriteFile = Callable[[str, str], Path]

TRUNKS = """
trunks:
  - id: ent-1
    kind: enterprise
    customer: acme
    caller_ids:
      ranges: ["02088880000-02088889999"]
  - id: ic-1
    kind: interconnect
customers:
  - id: acme
"""


def one_error(policy_dir: Path) -> ConfigError:
    errors = check_policy(policy_dir)
    assert len(errors) == 1, [str(e) for e in errors]
    with pytest.raises(ConfigError) as info:
        load_policy(policy_dir)
    # load_policy raises the same problem check_policy lists.
    assert (info.value.file, info.value.line, info.value.key) == (
        errors[0].file, errors[0].line, errors[0].key
    )
    return errors[0]


def where(err: ConfigError) -> tuple[str, int | None, str | None]:
    return (Path(err.file or "").name, err.line, err.key)


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        # unknown key (a typo) with a suggestion
        (TRUNKS.replace("    caller_ids:", "    caler_ids:"), 6, "trunks[0].caler_ids",
         "did you mean 'caller_ids'"),
        (TRUNKS + "labelz: []\n", 12, "labelz", "unknown key"),
        # bad enum values
        (TRUNKS.replace("kind: interconnect", "kind: transit"), 9, "trunks[1].kind",
         "not one of enterprise | call_centre | international | interconnect"),
        (TRUNKS.replace("  - id: acme", "  - id: acme\n    status: paused"), 12,
         "customers[0].status", "'paused' is not one of active"),
        # bad number range: reversed, and unequal lengths
        (TRUNKS.replace("02088880000-02088889999", "02088889999-02088880000"), 7,
         "trunks[0].caller_ids.ranges[0]", "02088889999-02088880000"),
        (TRUNKS.replace("02088880000-02088889999", "0208888000-02088889999"), 7,
         "trunks[0].caller_ids.ranges[0]", "0208888000-02088889999"),
        # wrong types
        (TRUNKS.replace("kind: interconnect", "kind: interconnect\n    marketing: maybe"), 10,
         "trunks[1].marketing", "expected true or false"),
        (TRUNKS.replace('ranges: ["02088880000-02088889999"]', 'ranges: "02088880000"'), 7,
         "trunks[0].caller_ids.ranges", "expected a list"),
        (TRUNKS.replace("    kind: interconnect", "    kind: interconnect\n    match: gw-a"), 10,
         "trunks[1].match", "expected a mapping"),
        ("trunks: {id: x}\n", 1, "trunks", "expected a list"),
        # missing required key
        (TRUNKS.replace("  - id: ic-1\n", "  - description: no id\n"), 8, "trunks[1].id",
         "required key 'id' is missing"),
        # reference to an unknown customer
        (TRUNKS.replace("customer: acme", "customer: acme-corp"), 5, "trunks[0].customer",
         "unknown customer 'acme-corp'"),
        # duplicate ids in one file
        (TRUNKS.replace("id: ic-1", "id: ent-1"), 8, "trunks[1].id", "duplicate trunk id"),
        (TRUNKS + "  - id: acme\n", 12, "customers[1].id", "duplicate customer id"),
        # duplicate YAML key
        (TRUNKS.replace("    kind: interconnect", "    kind: interconnect\n    kind: enterprise"),
         10, "trunks[1].kind", "duplicate key 'kind'"),
        # unknown rule id, and a verdict the rule does not allow
        (TRUNKS + "rules:\n  cid.not_alowed: {mode: shadow}\n", 13, "rules[cid.not_alowed]",
         "did you mean 'cid.not_allowed'"),
        (TRUNKS + "rules:\n  cid.malformed: {verdict: warn}\n", 13,
         "rules[cid.malformed].verdict", "cannot warn"),
        (TRUNKS + "rules:\n  cid.malformed: {mode: loud}\n", 13, "rules[cid.malformed].mode",
         "'loud' is not one of enforce | shadow | off"),
        # cause names are validated against fs_plugin.causes
        (TRUNKS + "rules:\n  label.fraud:\n    cause: REJECTED\n", 14,
         "rules[label.fraud].cause", "not a FreeSWITCH hangup cause"),
        # match problems
        (TRUNKS.replace("kind: interconnect",
                        "kind: interconnect\n    match: {source: [10.0.0.1/8]}"),
         10, "trunks[1].match.source[0]", "not a CIDR network"),
        (TRUNKS.replace("kind: interconnect", "kind: interconnect\n    timezone: Mars/Olympus"),
         10, "trunks[1].timezone", "not an IANA time zone"),
        # enterprise trunks need their customer and caller IDs
        (TRUNKS.replace("    customer: acme\n", ""), 3, "trunks[0]", "needs a 'customer'"),
        (TRUNKS.replace("    caller_ids:\n      ranges: [\"02088880000-02088889999\"]\n", ""),
         3, "trunks[0]", "needs 'caller_ids'"),
        # labels
        (TRUNKS + "labels:\n  - {number: '02088887777', category: spam}\n", 13,
         "labels[0].category", "'spam' is not one of fraud"),
        (TRUNKS + "labels:\n  - {number: '02088887777', category: fraud, confidence: 2}\n", 13,
         "labels[0].confidence", "between 0.0 and 1.0"),
        (TRUNKS + "labels:\n  - {number: '02088887777', category: fraud, expires: soon}\n", 13,
         "labels[0].expires", "expected a date"),
        (TRUNKS + "labels:\n  - {number: '020-8888-7777', category: fraud}\n"
                  "  - {number: '+862088887777', category: harassment}\n", 14,
         "labels[1].number", "already labelled"),
    ],
)
def test_error_names_file_line_and_key(
    write: WriteFile, policy_dir: Path, text: str, line: int, key: str, words: str
) -> None:
    write("policy.yaml", text)
    err = one_error(policy_dir)
    assert where(err) == ("policy.yaml", line, key)
    assert words in err.message
    assert str(err).startswith(f"{policy_dir / 'policy.yaml'}:{line}:")


def test_yaml_syntax_error(write: WriteFile, policy_dir: Path) -> None:
    write("bad.yaml", "trunks:\n  - id: ent-1\n    kind: [enterprise\n")
    err = one_error(policy_dir)
    assert Path(err.file or "").name == "bad.yaml"
    assert err.line == 4
    assert err.key is None
    assert "YAML syntax error" in err.message


def test_nesting_too_deep_is_an_error_with_a_line_not_a_crash(
    write: WriteFile, policy_dir: Path
) -> None:
    # A truncated or hostile file of thousands of "[" used to exhaust the recursion limit
    # (RecursionError, no file or line) inside PyYAML's composer.
    write("deep.yaml", "trunks:\n  - id: ent-1\n    kind: " + "[" * 5000 + "]" * 5000 + "\n")
    err = one_error(policy_dir)
    assert Path(err.file or "").name == "deep.yaml"
    assert err.line == 3
    assert "nested deeper than 64 levels" in err.message


def test_a_control_character_is_an_error_with_a_line(write: WriteFile, policy_dir: Path) -> None:
    # PyYAML's reader refuses it while the loader is made, before parsing starts; that
    # ReaderError used to escape the loader (500 on an API edit, a failed file watch).
    write("ctl.yaml", "trunks:\n  - id: ent-1\n    kind: enter\x01prise\n")
    err = one_error(policy_dir)
    assert Path(err.file or "").name == "ctl.yaml" and err.line == 3
    assert "special characters are not allowed (character #x0001)" in err.message


def test_nesting_up_to_the_bound_is_read(write: WriteFile, policy_dir: Path) -> None:
    # 63 levels inside the top mapping: an unknown key, but read and reported as such.
    write("deep.yaml", "extra: " + "[" * 62 + "]" * 62 + "\n")
    err = one_error(policy_dir)
    assert err.key == "extra" and "nested" not in err.message


def test_tab_indentation_is_a_syntax_error_with_a_line(write: WriteFile, policy_dir: Path) -> None:
    write("bad.yaml", "trunks:\n\t- id: x\n")
    err = one_error(policy_dir)
    assert err.line == 2


def test_duplicate_ids_across_files_name_both_places(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", TRUNKS)
    write("b.yaml", "trunks:\n  - id: ic-1\n    kind: interconnect\n")
    err = one_error(policy_dir)
    assert where(err) == ("b.yaml", 2, "trunks[0].id")
    assert "a.yaml:8" in err.message


def test_rule_configured_in_two_files(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", TRUNKS + "rules:\n  label.fraud: {mode: shadow}\n")
    write("b.yaml", "\n\nrules:\n  label.fraud: {mode: off}\n")
    err = one_error(policy_dir)
    assert where(err) == ("b.yaml", 4, "rules[label.fraud]")


def test_customer_defined_in_another_file_is_found(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", TRUNKS.replace("customers:\n  - id: acme\n", ""))
    write("b.yaml", "customers:\n  - id: acme\n")
    assert check_policy(policy_dir) == []


def test_defaults_set_twice(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", TRUNKS + "defaults: {on_error: block}\n")
    write("b.yaml", "defaults:\n  on_error: pass\n")
    err = one_error(policy_dir)
    assert where(err) == ("b.yaml", 2, "defaults")


def test_two_trunks_claiming_one_gateway(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", """
        trunks:
          - {id: a, kind: interconnect, match: {gateway: gw-1}}
          - {id: b, kind: interconnect, match: {gateway: gw-1}}
        """)
    err = one_error(policy_dir)
    assert where(err) == ("a.yaml", 4, "trunks[1].match.gateway")
    assert "already matches trunk a" in err.message


def test_check_policy_collects_every_error(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", """
        trunks:
          - id: ent-1
            kind: enterprize
            customer: nobody
          - id: ic-1
            kind: interconnect
            on_eror: pass
        rules:
          cid.bogus: {mode: enforce}
        """)
    write("b.yaml", "customers:\n  - {id: c1, industry: mining}\n")
    errors = check_policy(policy_dir)
    got = [(Path(e.file or "").name, e.line, e.key) for e in errors]
    assert got == [
        ("a.yaml", 4, "trunks[0].kind"),
        ("a.yaml", 8, "trunks[1].on_eror"),
        ("a.yaml", 10, "rules[cid.bogus]"),
        ("b.yaml", 2, "customers[0].industry"),
    ]
    with pytest.raises(ConfigError) as info:
        load_policy(policy_dir)
    assert info.value.line == 4
    assert "(and 3 more errors)" in info.value.message


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path / "nope")
    assert "does not exist" in info.value.message
    assert check_policy(tmp_path)[0].file == str(tmp_path)


def test_not_utf8(policy_dir: Path) -> None:
    (policy_dir / "x.yaml").write_bytes(b"trunks: []\n# \xff\xfe\n")
    err = one_error(policy_dir)
    assert "not UTF-8" in err.message


def test_top_level_must_be_a_mapping(write: WriteFile, policy_dir: Path) -> None:
    write("x.yaml", "- just\n- a list\n")
    err = one_error(policy_dir)
    assert (err.line, err.key) == (1, None)
    assert "expected a mapping" in err.message


def test_empty_file_is_an_empty_part(write: WriteFile, policy_dir: Path) -> None:
    write("a.yaml", TRUNKS)
    write("empty.yaml", "# nothing here yet\n")
    assert check_policy(policy_dir) == []

"""Data files: compact number lists (1M numbers), calendars, label CSVs, and their errors."""

from __future__ import annotations

import random
import sys
import textwrap
from pathlib import Path

import pytest

from fs_plugin.errors import ConfigError
from fs_plugin.numbering import classify
from fs_plugin.policy import check_policy, load_policy
from fs_plugin.policy.lists import NumberList, read_calendar, read_label_csv, read_number_csv


def test_one_million_numbers_load_fast_and_small(tmp_path: Path) -> None:
    rng = random.Random(7)
    prefixes = ["139", "138", "186", "150", "177", "199"]
    numbers = sorted({f"{rng.choice(prefixes)}{rng.randrange(10**8):08d}"
                      for _ in range(1_050_000)})[:1_000_000]
    path = tmp_path / "dnc.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("number,date\n")
        out.writelines(f"{n},2026-05-01\n" for n in numbers)
    data = path.read_bytes()
    lst, errors = read_number_csv(str(path), data, evidence=False)
    assert errors == []
    assert len(lst) == 1_000_000
    # ~8 bytes a number: the array buffer, and the object around it adds ~nothing.
    assert lst.nbytes == 8_000_000
    assert sys.getsizeof(lst._codes) < 8_200_000
    # Every listed number is found, in any form; unlisted ones are not.
    for n in numbers[::9973]:
        assert classify(n) in lst
        assert classify("+86" + n) in lst
    listed = set(numbers)
    misses = [n for n in (f"13{rng.randrange(3, 10)}{rng.randrange(10**8):08d}"
                          for _ in range(2000)) if n not in listed]
    assert not [n for n in misses if classify(n) in lst]
    assert all(lst.contains_code(int("86" + n)) for n in numbers[:10_000])


def test_number_list_errors_name_file_and_line(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        # refusals
        number,date
        13900001111,2026-05-01

        13900001112,2026-13-01
        139000011,2026-05-01
        020-8888-6666,2026-05-01
        13900001113,2026-05-01,extra
        """).encode()
    lst, errors = read_number_csv("dnc.csv", text, evidence=False)
    assert [(e.line, e.key) for e in errors] == [(5, "date"), (6, "number"), (8, None)]
    assert "'2026-13-01' is not a date" in errors[0].message
    assert "'139000011' is not a valid phone number (too_short)" in errors[1].message
    assert classify("02088886666") in lst and classify("13900001111") in lst
    assert len(lst) == 2


def test_consent_needs_evidence_and_accepts_any_column_order() -> None:
    text = b"date,evidence,number\n2026-01-01,REC-1,13900001111\n2026-01-01,,13900001112\n"
    lst, errors = read_number_csv("c.csv", text, evidence=True)
    assert [(e.line, e.key) for e in errors] == [(3, "evidence")]
    assert len(lst) == 1
    _lst, errors = read_number_csv("c.csv", b"number,date,who\n", evidence=True)
    assert [e.message for e in errors] == [
        "unknown column(s) who; missing column(s) evidence; columns: number, evidence, date"]


def test_positional_columns_without_header_and_bom() -> None:
    lst, errors = read_number_csv("c.csv", "\ufeff13900001111,REC-1,2026-01-01\n".encode(),
                                  evidence=True)
    assert errors == [] and len(lst) == 1


def test_errors_are_bounded_per_file() -> None:
    text = "".join(f"bad{i},2026-01-01\n" for i in range(100)).encode()
    _lst, errors = read_number_csv("x.csv", text, evidence=False)
    assert len(errors) == 21 and errors[-1].message == "80 more errors in this file not shown"


def test_not_utf8_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_number_csv("x.csv", b"\xff\xfe1", evidence=False)


def test_merge_and_empty() -> None:
    a = NumberList.build([8613900001111, 8613900001111], ["a.csv"])
    b = NumberList.build([862088886666], ["b.csv"])
    m = NumberList.merge([a, b])
    assert len(m) == 2 and m.describe == "a.csv, b.csv"
    assert classify("13900001111") in m and "13900001111" not in m  # numbers, not text


def test_calendar_csv_and_errors() -> None:
    cal, errors = read_calendar("h.csv", b"date,kind\n2026-10-01\n2026-10-10,workday\n"
                                         b"2026-10-32,holiday\n2026-10-02,feast\n")
    assert [(e.line, e.key) for e in errors] == [(4, "date"), (5, "kind")]
    assert len(cal.holidays) == 1 and len(cal.workdays) == 1


def test_calendar_yaml_errors() -> None:
    _cal, errors = read_calendar("h.yaml", b"holidays: [2026-10-01, nope]\nextra: []\n")
    assert [(e.line, e.key) for e in errors] == [(1, "holidays"), (2, "extra")]


def test_calendar_yaml_nested_too_deep_is_an_error() -> None:
    _cal, errors = read_calendar("h.yaml", b"holidays: " + b"[" * 5000 + b"]" * 5000 + b"\n")
    assert len(errors) == 1 and errors[0].line == 1
    assert "nested deeper than 64 levels" in errors[0].message


def test_label_csv_rows_and_errors() -> None:
    text = textwrap.dedent("""\
        number,category,label,source,confidence,expires
        13922223333,harassment,骚扰电话,12321,0.85,2027-06-30
        +8613911112222,FRAUD,,,,
        13900001111,spam,x,y,0.5,
        13900001112,fraud,x,y,1.5,
        13900001113,fraud,x,y,0.5,2027-02-30
        """).encode()
    rows, errors = read_label_csv("l.csv", text)
    assert [(e.line, e.key) for e in errors] == [(4, "category"), (5, "confidence"),
                                                 (6, "expires")]
    assert [(line, lab.number, lab.category.value, lab.confidence) for line, lab in rows] == [
        (2, "13922223333", "harassment", 0.85), (3, "13911112222", "fraud", 1.0)]


# -- through the loader ------------------------------------------------------------


def write(d: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return d


def test_missing_data_file_is_reported_at_the_yaml_key(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": """\
        customers:
          - id: c
            contract:
              consent:
                whitelist: [data/nope.csv]
        """})
    errors = check_policy(tmp_path)
    assert len(errors) == 1
    e = errors[0]
    assert (Path(e.file or "").name, e.line, e.key) == (
        "p.yaml", 5, "customers[0].contract.consent.whitelist[0]")
    assert "data/nope.csv: cannot read data file" in e.message


def test_data_file_errors_block_the_policy(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": "lists: {dnc: [data/dnc.csv]}\n",
                     "data/dnc.csv": "number,date\n13900001111,yesterday\n"})
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path)
    assert (Path(info.value.file or "").name, info.value.line) == ("dnc.csv", 2)


def test_same_file_as_two_kinds_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": """\
        lists: {dnc: [data/x.csv]}
        customers: [{id: c, contract: {consent: {whitelist: [data/x.csv]}}}]
        """, "data/x.csv": "number,date\n13900001111,2026-01-01\n"})
    errors = check_policy(tmp_path)
    clash = [e for e in errors if "already used" in e.message]
    assert [(e.key, e.message) for e in clash] == [
        ("lists.dnc[0]", "'data/x.csv' is already used as a consent file")]


def test_data_files_change_the_version(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": "lists: {dnc: [data/dnc.csv]}\n",
                     "data/dnc.csv": "number,date\n13900001111,2026-01-01\n"})
    v1 = load_policy(tmp_path).version
    write(tmp_path, {"data/dnc.csv": "number,date\n13900001112,2026-01-01\n"})
    snap = load_policy(tmp_path)
    assert snap.version != v1
    assert classify("13900001112") in snap.dnc
    assert any(s.endswith("dnc.csv") for s in snap.sources)


LABELS_YAML = """\
    lists: {labels: [data/a.csv, data/b.csv]}
    labels:
      - {number: "13922223333", category: harassment, label: 人工标注, confidence: 0.3}
    defaults: {label_min_confidence: 0.6}
    rules:
      label.fraud: {min_confidence: 0.9}
      label.harassment: {min_confidence: 0.2}
    """


def test_csv_labels_merge_with_yaml_and_per_rule_confidence(tmp_path: Path) -> None:
    write(tmp_path, {
        "p.yaml": LABELS_YAML,
        "data/a.csv": """\
            number,category,label,source,confidence,expires
            13922223333,fraud,诈骗,a,0.99,
            13900000001,fraud,诈骗,a,0.95,
            13900000002,fraud,诈骗,a,0.85,
            13900000003,telemarketing,推销,a,0.7,2026-05-31
            13900000004,telemarketing,推销,a,0.5,
            """,
        "data/b.csv": """\
            number,category,label,source,confidence,expires
            13900000003,finance,理财,b,0.65,
            13900000004,finance,理财,b,0.61,
            """})
    labels = load_policy(tmp_path).labels
    # YAML wins over CSV; label.harassment's own min_confidence (0.2) admits 0.3.
    assert (labels["13922223333"].text, labels["13922223333"].category.value) == (
        "人工标注", "harassment")
    assert "13900000001" in labels          # fraud 0.95 ≥ 0.9
    assert "13900000002" not in labels      # fraud 0.85 < label.fraud's 0.9
    assert labels["13900000003"].category.value == "telemarketing"  # higher confidence
    assert labels["13900000003"].expires_at is not None
    assert labels["13900000004"].category.value == "finance"        # 0.61 beats 0.5


def test_min_confidence_only_for_label_rules(tmp_path: Path) -> None:
    write(tmp_path, {"p.yaml": "rules:\n  rate.caller: {min_confidence: 0.5}\n"
                               "  label.fraud: {min_confidence: 1.5}\n"})
    assert [(e.key, e.message) for e in check_policy(tmp_path)] == [
        ("rules[rate.caller].min_confidence", "min_confidence applies to label.* rules only"),
        ("rules[label.fraud].min_confidence", "must be between 0.0 and 1.0"),
    ]


def test_overlong_csv_field_is_an_error_at_its_line_and_reading_goes_on() -> None:
    # The csv module refuses a cell over 128 KiB with its own exception: it escaped the
    # loader (no file, no line) and a reload through the API answered 500.
    data = (b"number,date\n13900001111,2026-01-01\n" + b"9" * 200_000 + b",2026-01-01\n"
            b"13900002222,2026-01-02\nnot-a-number,2026-01-02\n")
    lst, errors = read_number_csv("dnc.csv", data, evidence=False)
    assert [(e.line, "field limit" in e.message) for e in errors] == [(3, True), (5, False)]
    assert len(lst) == 2
    _, errors = read_label_csv("labels.csv", b'number,category\n"' + b"x" * 200_000 + b'",fraud\n')
    assert [e.line for e in errors] == [2]
    _, errors = read_calendar("holidays.csv", b"2026-01-01\n" + b"x" * 200_000 + b"\n")
    assert [e.line for e in errors] == [2]


def test_calendar_yaml_with_a_control_character_is_located() -> None:
    # PyYAML checks the characters when its loader is made, before any syntax error.
    cal, errors = read_calendar("holidays.yaml", b"holidays:\n  - 2026-01-01\n  - \x01\n")
    assert [(e.file, e.line) for e in errors] == [("holidays.yaml", 3)]
    assert "#x0001" in errors[0].message
    assert cal.holidays == frozenset()

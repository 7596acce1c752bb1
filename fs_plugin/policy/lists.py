"""Data files a policy names: number lists (DNC, consent), holiday calendars, label CSVs.

Read once, when the policy is loaded (never on a call). Every problem is a
:class:`~fs_plugin.errors.ConfigError` naming the data file and line.

Number lists hold millions of numbers, so a :class:`NumberList` is a sorted
``array('q')`` of E.164 numbers as integers (8 bytes a number) searched with
``bisect``: no per-number objects, no hashing, and a lookup of a few hundred
nanoseconds. Building one parses each line with a fast path for the plain forms
lists are exported in (``13900001111``, ``02088886666``, ``+8613900001111``) and
falls back to the full classifier only for other spellings.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fs_plugin.errors import ConfigError
from fs_plugin.numbering import AREA_CODES, Number, classify, user_part
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.policy.models import Label
from fs_plugin.policy.yamlread import BoundedSafeLoader, reader_line, reader_problem

__all__ = [
    "EMPTY_LIST",
    "MAX_DATA_FILE_BYTES",
    "MAX_ERRORS_PER_FILE",
    "Calendar",
    "NumberList",
    "PolicyData",
    "number_code",
    "parse_number",
    "read_calendar",
    "read_data_file",
    "read_label_csv",
    "read_number_csv",
]

#: Data files larger than this are refused: 1 GB holds ~40 million list lines, far
#: beyond a national DNC register, while stopping a wrong path (a disk image, a log)
#: from exhausting memory during a reload.
MAX_DATA_FILE_BYTES = 1 << 30

#: Errors reported per data file. A file exported with the wrong column order would
#: otherwise produce a million identical errors; the first few locate the problem.
MAX_ERRORS_PER_FILE = 20

_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
_FIXED_RE = re.compile(r"0[1-9][0-9]{8,10}")
_E164_CN_RE = re.compile(r"\+86([1-9][0-9]{4,11})")


def number_code(n: Number) -> int | None:
    """The integer a number is stored under in a :class:`NumberList` (E.164 digits)."""
    if n.e164 is None:
        return None
    return int(n.e164[1:])


def _fast_code(text: str) -> int | None:
    """E.164 digits of the common plain forms, without the classifier; None if unsure."""
    if len(text) == 11 and _MOBILE_RE.fullmatch(text):
        return int("86" + text)
    if _FIXED_RE.fullmatch(text):
        code = text[1:3] if text[1] in "12" else text[1:4]
        local = len(text) - 1 - len(code)
        if (
            code in AREA_CODES
            and local in (7, 8)
            and not (len(code) == 2 and local == 7)
            and text[-local] not in "01"  # a local number never starts with 0 or 1
        ):
            return int("86" + text[1:])
        return None
    m = _E164_CN_RE.fullmatch(text)
    if m is not None:
        rest = m.group(1)
        if len(rest) == 11 and rest[0] == "1":
            return int("86" + rest) if _MOBILE_RE.fullmatch(rest) else None
    return None


def _slow_code(text: str) -> tuple[int | None, str]:
    n = classify(user_part(text))
    code = number_code(n)
    if code is None or not n.is_valid_caller_id:
        why = n.malformed_reason or n.cls.value
        return None, f"{text!r} is not a valid phone number ({why})"
    return code, ""


def parse_number(text: str) -> tuple[int | None, str]:
    """(code, "") for a valid number, else (None, message for the list's editor)."""
    text = text.strip()
    code = _fast_code(text)
    if code is not None:
        return code, ""
    return _slow_code(text)


@dataclass(frozen=True, slots=True)
class NumberList:
    """An immutable set of phone numbers in 8 bytes each (see the module docstring)."""

    #: Where the numbers came from (file names), for reasons and ``fs-plugin check``.
    sources: tuple[str, ...]
    _codes: array[int] = field(repr=False)

    @classmethod
    def build(cls, codes: Iterable[int], sources: Sequence[str] = ()) -> NumberList:
        values = sorted(set(codes))
        return cls(tuple(sources), array("q", values))

    @classmethod
    def merge(cls, lists: Iterable[NumberList]) -> NumberList:
        lists = list(lists)
        if len(lists) == 1:
            return lists[0]
        codes: set[int] = set()
        sources: list[str] = []
        for lst in lists:
            codes.update(lst._codes)
            sources.extend(lst.sources)
        return cls(tuple(sources), array("q", sorted(codes)))

    def contains_code(self, code: int) -> bool:
        codes = self._codes
        i = bisect.bisect_left(codes, code)
        return i < len(codes) and codes[i] == code

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, Number):
            return False
        code = number_code(n)
        return code is not None and self.contains_code(code)

    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[int]:
        return iter(self._codes)

    @property
    def nbytes(self) -> int:
        """Memory held by the numbers themselves (the array's buffer)."""
        return self._codes.itemsize * len(self._codes)

    @property
    def describe(self) -> str:
        return ", ".join(Path(s).name for s in self.sources) or "(empty list)"


EMPTY_LIST = NumberList((), array("q"))


class _Errors:
    """Bounded error collection for one data file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ConfigError] = []
        self.dropped = 0

    def add(self, line: int | None, message: str, key: str | None = None) -> None:
        if len(self.items) >= MAX_ERRORS_PER_FILE:
            self.dropped += 1
            return
        self.items.append(ConfigError(message, file=self.file, line=line, key=key))

    def result(self) -> list[ConfigError]:
        if self.dropped:
            self.items.append(
                ConfigError(f"{self.dropped} more errors in this file not shown", file=self.file)
            )
        return self.items


def read_data_file(path: Path) -> bytes:
    """The bytes of a data file, or :class:`ConfigError` (missing, unreadable, too big)."""
    try:
        size = path.stat().st_size
        if size > MAX_DATA_FILE_BYTES:
            raise ConfigError(
                f"data file is {size} bytes, more than the {MAX_DATA_FILE_BYTES} allowed",
                file=str(path),
            )
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read data file: {exc.strerror}", file=str(path)) from None


def _decode(name: str, data: bytes) -> str:
    try:
        # utf-8-sig: spreadsheets export CSV with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                          file=name) from None


def _rows(text: str, errors: _Errors) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every CSV row that is not blank or a ``#`` comment.
    A row the csv module refuses (a cell over its field size limit: a line of a
    binary file, a quote never closed) is an error at its line; reading goes on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.add(reader.line_num, f"unreadable CSV row: {exc}")
            continue
        if not cells or not "".join(cells).strip():
            continue
        if cells[0].lstrip().startswith("#"):
            continue
        yield reader.line_num, cells


def _columns(
    header: list[str], wanted: Sequence[str], required: Sequence[str], errors: _Errors,
    line: int,
) -> dict[str, int] | None:
    names = [h.strip().lower() for h in header]
    unknown = [h for h in names if h and h not in wanted]
    missing = [w for w in required if w not in names]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        errors.add(line, f"{'; '.join(parts)}; columns: {', '.join(wanted)}")
        return None
    return {name: names.index(name) for name in wanted if name in names}


def _table(
    text: str, wanted: Sequence[str], required: Sequence[str], errors: _Errors
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows as {column: text}. A first row with a ``number`` cell is a header (columns
    in any order); without one the columns are ``wanted`` in order."""
    rows = _rows(text, errors)
    first = next(rows, None)
    if first is None:
        return
    line, cells = first
    positions: dict[str, int] | None
    if "number" in (c.strip().lower() for c in cells):
        positions = _columns(cells, wanted, required, errors, line)
        if positions is None:
            return
    else:
        positions = {name: i for i, name in enumerate(wanted)}
        rows = _chain(first, rows)
    for line, cells in rows:
        row = {name: cells[i].strip() for name, i in positions.items() if i < len(cells)}
        if len(cells) > len(wanted):
            errors.add(line, f"{len(cells)} columns, at most {len(wanted)} expected "
                             f"({', '.join(wanted)})")
            continue
        yield line, row


def _chain(
    first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def read_number_csv(
    name: str, data: bytes, *, evidence: bool
) -> tuple[NumberList, list[ConfigError]]:
    """Parse a DNC list (``number,date``) or, with ``evidence``, a consent whitelist
    (``number,evidence,date``). Dates are ``YYYY-MM-DD``; every column is required.
    ``name`` is the file name errors carry. Raises ConfigError for text that is not UTF-8.
    """
    errors = _Errors(name)
    text = _decode(name, data)
    wanted = ("number", "evidence", "date") if evidence else ("number", "date")
    what = "consent date" if evidence else "refusal date"
    codes: list[int] = []
    append = codes.append
    for line, row in _table(text, wanted, wanted, errors):
        number = row.get("number", "")
        code = _fast_code(number)
        if code is None:
            code, message = _slow_code(number)
            if code is None:
                errors.add(line, message, "number")
                continue
        day = row.get("date", "")
        if _date(day) is None:
            errors.add(line, f"{what} {day!r} is not a date YYYY-MM-DD", "date")
            continue
        if evidence and not row.get("evidence"):
            errors.add(line, "consent without an evidence reference", "evidence")
            continue
        append(code)
    return NumberList.build(codes, (name,)), errors.result()


@dataclass(frozen=True, slots=True)
class Calendar:
    """Public holidays (no calls) and make-up working days (调休, treated as Mon–Fri),
    as ``date.toordinal()`` values."""

    holidays: frozenset[int]
    workdays: frozenset[int]


_HOLIDAY = "holiday"
_WORKDAY = "workday"


def read_calendar(name: str, data: bytes) -> tuple[Calendar, list[ConfigError]]:
    """A holiday file: CSV ``date,kind[,name]`` (kind ``holiday`` — the default — or
    ``workday``), or (a name ending .yaml/.yml) YAML with ``holidays:`` and
    ``workdays:`` lists of dates."""
    errors = _Errors(name)
    text = _decode(name, data)
    holidays: set[int] = set()
    workdays: set[int] = set()
    if name.lower().endswith((".yaml", ".yml")):
        _calendar_yaml(text, holidays, workdays, errors)
    else:
        for n, (line, cells) in enumerate(_rows(text, errors)):
            if n == 0 and cells[0].strip().lower() == "date":
                continue  # header
            day = _date(cells[0].strip())
            kind = cells[1].strip().lower() if len(cells) > 1 and cells[1].strip() else _HOLIDAY
            if day is None:
                errors.add(line, f"{cells[0].strip()!r} is not a date YYYY-MM-DD", "date")
            elif kind not in (_HOLIDAY, _WORKDAY):
                errors.add(line, f"kind {kind!r} is not holiday or workday", "kind")
            else:
                (holidays if kind == _HOLIDAY else workdays).add(day.toordinal())
    both = holidays & workdays
    for ordinal in sorted(both)[:1]:
        errors.add(None, f"{dt.date.fromordinal(ordinal)} is both a holiday and a workday")
    return Calendar(frozenset(holidays), frozenset(workdays)), errors.result()


def _calendar_yaml(text: str, holidays: set[int], workdays: set[int], errors: _Errors) -> None:
    try:
        # The reader checks the whole text for control characters when it is made.
        loader = BoundedSafeLoader(text)
    except yaml.reader.ReaderError as exc:
        errors.add(reader_line(text, exc), f"YAML error: {reader_problem(exc)}")
        return
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        errors.add(mark.line + 1 if mark else None, f"YAML syntax error: {exc.problem}")
        return
    finally:
        loader.dispose()
    if root is None:
        return
    if not isinstance(root, yaml.MappingNode):
        errors.add(root.start_mark.line + 1, "expected a mapping with holidays: and workdays:")
        return
    for key_node, value_node in root.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        target = {"holidays": holidays, "workdays": workdays}.get(str(name))
        if target is None:
            errors.add(key_node.start_mark.line + 1,
                       f"unknown key {name!r}; allowed: holidays, workdays", str(name))
            continue
        if not isinstance(value_node, yaml.SequenceNode):
            errors.add(value_node.start_mark.line + 1, "expected a list of dates", str(name))
            continue
        for item in value_node.value:
            day = _date(item.value) if isinstance(item, yaml.ScalarNode) else None
            if day is None:
                errors.add(item.start_mark.line + 1, "expected a date YYYY-MM-DD", str(name))
            else:
                target.add(day.toordinal())


_LABEL_COLUMNS = ("number", "category", "label", "source", "confidence", "expires")
_CATEGORIES = {c.value: c for c in LabelCategory}


def read_label_csv(name: str, data: bytes) -> tuple[list[tuple[int, Label]], list[ConfigError]]:
    """Labels from CSV ``number,category,label,source,confidence,expires``; ``label``,
    ``source``, ``confidence`` (default 1.0) and ``expires`` may be empty.
    Returns (line, label) pairs; the label's ``number`` is its comparison key."""
    errors = _Errors(name)
    text = _decode(name, data)
    out: list[tuple[int, Label]] = []
    for line, row in _table(text, _LABEL_COLUMNS, ("number", "category"), errors):
        n = classify(user_part(row.get("number", "")))
        if n.key is None:
            errors.add(line, f"{row.get('number', '')!r} is not a valid phone number "
                             f"({n.malformed_reason or n.cls.value})", "number")
            continue
        category = _CATEGORIES.get(row.get("category", "").lower())
        if category is None:
            errors.add(line, f"category {row.get('category', '')!r} is not one of "
                             f"{' | '.join(_CATEGORIES)}", "category")
            continue
        confidence = 1.0
        if row.get("confidence"):
            try:
                confidence = float(row["confidence"])
            except ValueError:
                confidence = -1.0
            if not 0.0 <= confidence <= 1.0:
                errors.add(line, f"confidence {row['confidence']!r} is not a number between "
                                 "0.0 and 1.0", "confidence")
                continue
        expires = None
        if row.get("expires"):
            expires = _date(row["expires"])
            if expires is None:
                errors.add(line, f"expires {row['expires']!r} is not a date YYYY-MM-DD",
                           "expires")
                continue
        out.append((line, Label(n.key, category, row.get("label", ""), row.get("source", ""),
                                confidence, expires)))
    return out, errors.result()


@dataclass(frozen=True, slots=True)
class PolicyData:
    """The data files of one policy, read by the loader, keyed by the reference as the
    policy writes it (every policy file of a directory shares that directory)."""

    calendars: dict[str, Calendar] = field(default_factory=dict)
    numbers: dict[str, NumberList] = field(default_factory=dict)
    labels: dict[str, list[tuple[int, Label]]] = field(default_factory=dict)

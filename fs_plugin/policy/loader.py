"""YAML → validated models → :class:`PolicySnapshot`, with file:line:key errors.

The YAML is *composed* (PyYAML's node tree, every node with its start mark)
rather than loaded, so every value keeps where it came from. The models in
``models.py`` drive a generic converter; then cross-references (ids, customers,
rule ids, duplicate matches) are checked over the merged files. Every problem
is collected as a :class:`ConfigError`; ``load_policy`` raises the first (in
file and line order), ``check_policy`` returns them all. Nothing is half
applied: a snapshot is built only from a policy with no error at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import enum
import hashlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fs_plugin.errors import ConfigError
from fs_plugin.policy.catalogue import RULES
from fs_plugin.policy.lists import (
    PolicyData,
    read_calendar,
    read_data_file,
    read_label_csv,
    read_number_csv,
)
from fs_plugin.policy.models import Caps, Check, Hours, PolicyFile, Targets, TrunkKind, Window
from fs_plugin.policy.snapshot import PolicySnapshot, compile_snapshot, label_key
from fs_plugin.policy.yamlread import BoundedSafeLoader, reader_line, reader_problem

__all__ = ["check_policy", "load_policy", "parse_file", "parse_terms", "read_sources"]

#: Policy files larger than this are refused: a policy is hand-edited text, and a
#: runaway generated file should fail loudly rather than stall a reload.
MAX_FILE_BYTES = 32 * 1024 * 1024

_SUFFIXES = (".yaml", ".yml")

_MISSING: Any = object()

_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _kind_name(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing (null)"
    return f"{node.value!r}"


class _FileReader:
    """Converts one composed YAML document into models, collecting errors."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.errors: list[ConfigError] = []
        #: dotted key → node, for errors found after conversion (duplicates, references).
        self.nodes: dict[str, yaml.Node] = {}

    def error(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = column = None
        if node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        self.errors.append(
            ConfigError(message, file=self.file, line=line, column=column, key=key or None)
        )

    # -- generic conversion --------------------------------------------------

    def convert(self, node: yaml.Node, tp: Any, key: str) -> Any:
        """The value of ``node`` as type ``tp``, or ``_MISSING`` after recording an error."""
        self.nodes[key] = node
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            _, *extras = typing.get_args(tp)
            check = next((e for e in extras if isinstance(e, Check)), None)
            return self._string(node, key, check)
        if origin in (types.UnionType, typing.Union):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if node.tag == _NULL_TAG and isinstance(node, yaml.ScalarNode):
                return None
            return self.convert(node, args[0], key)
        if origin is tuple:
            return self._sequence(node, typing.get_args(tp)[0], key)
        if origin is Mapping or tp is Mapping:
            return self._rules(node, typing.get_args(tp)[1], key)
        if dataclasses.is_dataclass(tp):
            return self._dataclass(node, tp, key)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(node, tp, key)
        if tp is bool:
            return self._typed(node, key, (_BOOL_TAG,), "true or false")
        if tp is int:
            return self._typed(node, key, (_INT_TAG,), "an integer")
        if tp is float:
            value = self._typed(node, key, (_INT_TAG, _FLOAT_TAG), "a number")
            return value if value is _MISSING else float(value)
        if tp is dt.date:
            return self._date(node, key)
        if tp is str:
            return self._string(node, key, None)
        raise TypeError(f"policy model field type {tp!r} is not supported")  # a bug in models.py

    def _scalar(self, node: yaml.Node, key: str, expected: str) -> yaml.ScalarNode | None:
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL_TAG:
            return node
        self.error(node, key, f"expected {expected}, found {_kind_name(node)}")
        return None

    def _typed(self, node: yaml.Node, key: str, tags: tuple[str, ...], expected: str) -> Any:
        scalar = self._scalar(node, key, expected)
        if scalar is None:
            return _MISSING
        if scalar.tag not in tags:
            self.error(node, key, f"expected {expected}, found {_kind_name(node)}")
            return _MISSING
        return self.loader.construct_object(scalar)

    def _date(self, node: yaml.Node, key: str) -> Any:
        scalar = self._scalar(node, key, "a date YYYY-MM-DD")
        if scalar is None:
            return _MISSING
        try:
            return dt.date.fromisoformat(scalar.value)
        except ValueError:
            self.error(node, key, f"expected a date YYYY-MM-DD, found {scalar.value!r}")
            return _MISSING

    def _string(self, node: yaml.Node, key: str, check: Check | None) -> Any:
        expected = f"a {check.description}" if check else "text"
        scalar = self._scalar(node, key, expected)
        if scalar is None:
            return _MISSING
        # The source text, not the resolved value: YAML 1.1 reads an unquoted 0755 as
        # an octal int and `on` as a bool; a string field means what was typed.
        text: str = scalar.value
        if check is not None and check.check is not None:
            try:
                normalised = check.check(text)
            except ValueError as exc:
                self.error(node, key, str(exc))
                return _MISSING
            if normalised is not None:
                text = normalised
        return text

    def _enum(self, node: yaml.Node, tp: type[enum.Enum], key: str) -> Any:
        choices = " | ".join(str(m.value) for m in tp)
        scalar = self._scalar(node, key, f"one of {choices}")
        if scalar is None:
            return _MISSING
        try:
            return tp(scalar.value)
        except ValueError:
            self.error(node, key, f"{scalar.value!r} is not one of {choices}")
            return _MISSING

    def _sequence(self, node: yaml.Node, item_tp: Any, key: str) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
                return ()  # `ranges:` with nothing under it: an empty list, as editors expect
            self.error(node, key, f"expected a list, found {_kind_name(node)}")
            return _MISSING
        items = []
        for i, child in enumerate(node.value):
            value = self.convert(child, item_tp, f"{key}[{i}]")
            if value is not _MISSING:
                items.append(value)
        return tuple(items)

    def _pairs(self, node: yaml.MappingNode, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """Key text, key node, value node for each entry; non-text and duplicate keys are errors."""
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        seen: dict[str, yaml.Node] = {}
        pairs: list[tuple[str, yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                self.error(key_node, key, "mapping keys must be plain text")
                continue
            name = key_node.value
            where = _join(key, name)
            if name in seen:
                first = seen[name].start_mark.line + 1
                self.error(key_node, where, f"duplicate key {name!r} (first at line {first})")
                continue
            seen[name] = key_node
            pairs.append((name, key_node, value_node))
        return pairs

    def _dataclass(self, node: yaml.Node, tp: Any, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG and not _required(tp):
                return tp()
            self.error(node, key, f"expected a mapping, found {_kind_name(node)}")
            return _MISSING
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        values: dict[str, Any] = {}
        ok = True
        for name, key_node, value_node in self._pairs(node, key):
            where = _join(key, name)
            if name not in fields:
                hint = difflib.get_close_matches(name, list(fields), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                allowed = ", ".join(fields)
                self.error(key_node, where, f"unknown key {name!r}{extra}; allowed: {allowed}")
                ok = False
                continue
            value = self.convert(value_node, hints[name], where)
            if value is _MISSING:
                ok = False
            else:
                values[name] = value
        for name, f in fields.items():
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if name not in values and not has_default and ok:
                self.error(node, _join(key, name), f"required key {name!r} is missing")
                ok = False
        if not ok:
            return _MISSING
        return tp(**values)

    def _rules(self, node: yaml.Node, value_tp: Any, key: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
                return types.MappingProxyType({})
            self.error(node, key, f"expected a mapping of rule ids, found {_kind_name(node)}")
            return _MISSING
        out: dict[str, Any] = {}
        for name, key_node, value_node in self._pairs(node, key):
            where = f"{key}[{name}]"
            self.nodes[where] = key_node
            if name not in RULES:
                hint = difflib.get_close_matches(name, list(RULES), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.error(key_node, where, f"unknown rule id {name!r}{extra}")
                continue
            value = self.convert(value_node, value_tp, where)
            if value is not _MISSING:
                out[name] = value
        return types.MappingProxyType(out)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(tp: type) -> dict[str, Any]:
    hints = _HINTS.get(tp)
    if hints is None:
        hints = _HINTS[tp] = typing.get_type_hints(tp, include_extras=True)
    return hints


def _required(tp: Any) -> bool:
    return any(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(tp)
    )


# -- files -------------------------------------------------------------------


def read_sources(path: str | Path) -> list[tuple[str, bytes]]:
    """The policy's input files as (display name, bytes), in a stable order.

    A directory means every ``*.yaml``/``*.yml`` directly in it (sorted by name);
    a file means that file. Unreadable inputs raise :class:`ConfigError`.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        if not files:
            raise ConfigError("no *.yaml or *.yml policy files in directory", file=str(root))
    elif root.exists():
        files = [root]
    else:
        raise ConfigError("policy path does not exist", file=str(root))
    out = []
    for f in files:
        try:
            size = f.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ConfigError(
                    f"policy file is {size} bytes, more than the {MAX_FILE_BYTES} allowed",
                    file=str(f),
                )
            out.append((str(f), f.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read policy file: {exc.strerror}", file=str(f)) from None
    return out


def parse_file(
    name: str, data: bytes
) -> tuple[PolicyFile | None, _FileReader | None, list[ConfigError]]:
    """Compose and convert one file; returns the model (None on error), its reader and errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, None, [ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                        file=name)]
    try:
        # The reader checks the whole text for characters YAML forbids when it is made.
        loader = BoundedSafeLoader(text)
    except yaml.reader.ReaderError as exc:
        return None, None, [ConfigError(f"YAML error: {reader_problem(exc)}", file=name,
                                        line=reader_line(text, exc))]
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "YAML syntax error"
        if exc.context:
            problem = f"{exc.context}: {problem}"
        return None, None, [
            ConfigError(
                f"YAML syntax error: {problem}",
                file=name,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        ]
    except yaml.YAMLError as exc:
        return None, None, [ConfigError(f"YAML error: {exc}", file=name)]
    finally:
        loader.dispose()
    reader = _FileReader(name, loader)
    if root is None:
        return PolicyFile(), reader, []  # an empty file is a valid, empty part of a policy
    value = reader.convert(root, PolicyFile, "")
    if value is _MISSING or reader.errors:
        return None, reader, reader.errors
    return value, reader, []


# -- the whole policy ----------------------------------------------------------


def _collect(path: str | Path) -> tuple[PolicySnapshot | None, list[ConfigError]]:
    sources = read_sources(path)
    parsed: list[tuple[PolicyFile, _FileReader]] = []
    errors: list[ConfigError] = []
    for name, raw in sources:
        model, reader, errs = parse_file(name, raw)
        errors.extend(errs)
        if model is not None and reader is not None:
            parsed.append((model, reader))
    errors.extend(_cross_check(parsed))
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0, e.column or 0))
        return None, errors
    # Data files only once the YAML is sound: a broken YAML file can leave references
    # half-read, and reading a million-line list to report a typo elsewhere helps no one.
    root = Path(path)
    base = root if root.is_dir() else root.parent
    data, data_files, errors = _load_data(parsed, base)
    if errors:
        errors.sort(key=lambda e: (e.file or "", e.line or 0, e.column or 0))
        return None, errors
    digest = hashlib.sha256()
    # The data files are part of the policy: a new DNC export is a new version.
    for name, content in [*sources, *data_files]:
        digest.update(Path(name).name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(content).digest())
    version = digest.hexdigest()[:12]
    names = tuple(n for n, _ in sources) + tuple(n for n, _ in data_files)
    return compile_snapshot([m for m, _ in parsed], version, names, data), []


def _data_refs(model: PolicyFile) -> list[tuple[str, str, str]]:
    """(kind, key, reference) of every data file ``model`` names."""
    refs: list[tuple[str, str, str]] = []
    for i, c in enumerate(model.customers):
        contract = c.contract
        if contract is None:
            continue
        base = f"customers[{i}].contract"
        if contract.hours is not None and contract.hours.holidays is not None:
            refs.append(("calendar", f"{base}.hours.holidays", contract.hours.holidays))
        if contract.consent is not None:
            for j, ref in enumerate(contract.consent.whitelist):
                refs.append(("consent", f"{base}.consent.whitelist[{j}]", ref))
            for j, ref in enumerate(contract.consent.dnc):
                refs.append(("dnc", f"{base}.consent.dnc[{j}]", ref))
    if model.industries is not None:
        for f in dataclasses.fields(model.industries):
            terms = getattr(model.industries, f.name)
            if terms is not None and terms.hours is not None and terms.hours.holidays:
                refs.append(("calendar", f"industries.{f.name}.hours.holidays",
                             terms.hours.holidays))
    if model.lists is not None:
        refs.extend(("dnc", f"lists.dnc[{j}]", ref) for j, ref in enumerate(model.lists.dnc))
        refs.extend(("labels", f"lists.labels[{j}]", ref)
                    for j, ref in enumerate(model.lists.labels))
    return refs


def _load_data(
    parsed: list[tuple[PolicyFile, _FileReader]], base: Path
) -> tuple[PolicyData, list[tuple[str, bytes]], list[ConfigError]]:
    """Read every data file the policy names, relative to the policy's directory.

    A file named twice is read once; naming one file both as a consent list and a
    DNC list is an error (the two have different columns).
    """
    data = PolicyData()
    files: list[tuple[str, bytes]] = []
    errors: list[ConfigError] = []
    kinds: dict[str, str] = {}
    for model, reader in parsed:
        for kind, key, ref in _data_refs(model):
            if ref in kinds:
                if kinds[ref] != kind:
                    errors.append(_located(
                        reader, key, f"{ref!r} is already used as a {kinds[ref]} file"))
                continue
            kinds[ref] = kind
            path = base / ref
            try:
                content = read_data_file(path)
            except ConfigError as exc:
                errors.append(_located(reader, key, f"{ref}: {exc.message}"))
                continue
            name = str(path)
            files.append((name, content))
            try:
                if kind == "calendar":
                    data.calendars[ref], errs = read_calendar(name, content)
                elif kind == "labels":
                    data.labels[ref], errs = read_label_csv(name, content)
                else:
                    data.numbers[ref], errs = read_number_csv(
                        name, content, evidence=kind == "consent")
            except ConfigError as exc:
                errs = [exc]
            errors.extend(errs)
    return data, files, errors


def _cross_check(parsed: list[tuple[PolicyFile, _FileReader]]) -> list[ConfigError]:
    """Checks that need the whole policy: unique ids, references, rule verdicts."""
    errors: list[ConfigError] = []

    def err(reader: _FileReader, key: str, message: str) -> None:
        errors.append(_located(reader, key, message))

    customers: dict[str, str] = {}
    for model, reader in parsed:
        for i, c in enumerate(model.customers):
            if c.id in customers:
                err(reader, f"customers[{i}].id",
                    f"duplicate customer id {c.id!r} (first in {customers[c.id]})")
            else:
                customers[c.id] = _where(reader, f"customers[{i}].id")

    trunk_ids: dict[str, str] = {}
    claims: dict[tuple[str, str], str] = {}
    for model, reader in parsed:
        for i, t in enumerate(model.trunks):
            base = f"trunks[{i}]"
            if t.id in trunk_ids:
                err(reader, f"{base}.id",
                    f"duplicate trunk id {t.id!r} (first in {trunk_ids[t.id]})")
            else:
                trunk_ids[t.id] = _where(reader, f"{base}.id")
            if t.customer is not None and t.customer not in customers:
                err(reader, f"{base}.customer", f"unknown customer {t.customer!r}")
            if t.kind in (TrunkKind.ENTERPRISE, TrunkKind.CALL_CENTRE):
                # 谁接入谁负责: these trunks carry a customer's own numbers, so both the
                # responsible customer and the numbers it may present must be known.
                if t.customer is None:
                    err(reader, base, f"a {t.kind.value} trunk needs a 'customer'")
                ids = t.caller_ids
                if not (ids.numbers or ids.prefixes or ids.ranges):
                    err(reader, base,
                        f"a {t.kind.value} trunk needs 'caller_ids' (numbers, prefixes or ranges)")
            if t.strip_prefix is not None and not t.strip_prefix.isdigit():
                err(reader, f"{base}.strip_prefix", f"{t.strip_prefix!r} is not a digit prefix")
            m = t.match
            wanted = [("gateway", m.gateway), ("sofia_profile", m.sofia_profile)]
            wanted += [(f"source[{j}]", cidr) for j, cidr in enumerate(m.source)]
            for what, value in wanted:
                if value is None:
                    continue
                claim = (what.partition("[")[0], value)
                key = f"{base}.match.{what}"
                if claim in claims:
                    err(reader, key, f"{claim[0]} {value!r} already matches trunk {claims[claim]}")
                else:
                    claims[claim] = t.id

    rules_seen: dict[str, str] = {}
    defaults_seen: str | None = None
    for model, reader in parsed:
        for rule_id, cfg in model.rules.items():
            key = f"rules[{rule_id}]"
            if rule_id in rules_seen:
                err(reader, key,
                    f"rule {rule_id!r} configured twice (first in {rules_seen[rule_id]})")
                continue
            rules_seen[rule_id] = _where(reader, key)
            spec = RULES[rule_id]
            if cfg.verdict is not None and cfg.verdict not in spec.verdicts:
                allowed = " | ".join(v.value for v in spec.verdicts)
                err(reader, f"{key}.verdict",
                    f"rule {rule_id} cannot {cfg.verdict.value}; allowed: {allowed}")
            if cfg.min_confidence is not None:
                if spec.family != "label":
                    err(reader, f"{key}.min_confidence",
                        "min_confidence applies to label.* rules only")
                elif not 0.0 <= cfg.min_confidence <= 1.0:
                    err(reader, f"{key}.min_confidence", "must be between 0.0 and 1.0")
        if model.defaults is not None:
            if defaults_seen is not None:
                err(reader, "defaults", f"defaults already set in {defaults_seen}")
            else:
                defaults_seen = _where(reader, "defaults")
            d = model.defaults
            if not 0.0 <= d.label_min_confidence <= 1.0:
                err(reader, "defaults.label_min_confidence", "must be between 0.0 and 1.0")

    _check_terms(parsed, err)

    labels_seen: dict[str, str] = {}
    for model, reader in parsed:
        for i, lab in enumerate(model.labels):
            base = f"labels[{i}]"
            if not 0.0 <= lab.confidence <= 1.0:
                err(reader, f"{base}.confidence", "must be between 0.0 and 1.0")
            k = label_key(lab.number)
            if k is None:
                continue
            if k in labels_seen:
                err(reader, f"{base}.number",
                    f"number {lab.number!r} is already labelled (first in {labels_seen[k]})")
            else:
                labels_seen[k] = _where(reader, f"{base}.number")
    return errors


_Err = typing.Callable[[_FileReader, str, str], None]

_Terms = typing.TypeVar("_Terms", Caps, Hours, Targets)


def parse_terms(text: str, tp: type[_Terms], *, key: str) -> _Terms:
    """One contract term kept outside the policy files — the ledger's ``caps``,
    ``hours`` or ``targets`` column — written as a YAML flow mapping with the same keys
    as in a policy file, e.g. ``{caller: {per_day: 50}, trunk_cps: 5}``.

    Validated exactly as the policy's own contracts are; raises ``ValueError`` with
    the offending key (``caps.caller.per_dya: unknown key …``) and column in the text.
    """
    try:
        loader = BoundedSafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise ValueError(f"not a YAML mapping: {reader_problem(exc)}") from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"not a YAML mapping{where}: {exc.problem or 'syntax error'}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"not a YAML mapping: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("expected a mapping such as {key: value, ...}")
    reader = _FileReader("", loader)
    value = reader.convert(root, tp, key)
    if value is not _MISSING and not reader.errors:
        def err(_reader: _FileReader, where: str, message: str) -> None:
            reader.error(_node(reader, where), where, message)

        if isinstance(value, Caps):
            _check_caps(value, key, reader, err)
        elif isinstance(value, Hours):
            _check_hours(value, key, reader, err)
    if reader.errors:
        first = reader.errors[0]
        where = f" (column {first.column})" if first.column else ""
        raise ValueError(f"{first.key or key}: {first.message}{where}")
    result: _Terms = value
    return result



def _check_hours(hours: Hours | None, key: str, reader: _FileReader, err: _Err) -> None:
    if hours is None:
        return
    if not hours.windows:
        err(reader, f"{key}.windows", "at least one time window is needed")
    if not hours.weekdays:
        err(reader, f"{key}.weekdays", "at least one weekday is needed")


def _check_window(w: Window | None, key: str, reader: _FileReader, err: _Err) -> None:
    if w is None:
        return
    for f in dataclasses.fields(w):
        value = getattr(w, f.name)
        if value is not None and value < 0:
            err(reader, f"{key}.{f.name}", "a cap cannot be negative")


def _check_caps(caps: Caps | None, key: str, reader: _FileReader, err: _Err) -> None:
    if caps is None:
        return
    for name in ("caller", "callee", "pair"):
        _check_window(getattr(caps, name), f"{key}.{name}", reader, err)
    for name in ("trunk_cps", "concurrency"):
        value = getattr(caps, name)
        if value is not None and value < 0:
            err(reader, f"{key}.{name}", "a cap cannot be negative")
    if caps.max_call_s is not None and caps.max_call_s < 1:
        err(reader, f"{key}.max_call_s", "must be at least 1 second")


def _check_terms(parsed: list[tuple[PolicyFile, _FileReader]], err: _Err) -> None:
    """Contracts, industries, key regions, patterns: values and single-file sections."""
    once: dict[str, str] = {}
    region_ids: dict[str, str] = {}
    for model, reader in parsed:
        for section in ("industries", "patterns"):
            if getattr(model, section) is None:
                continue
            if section in once:
                err(reader, section, f"{section} already set in {once[section]}")
            else:
                once[section] = _where(reader, section)
        for i, c in enumerate(model.customers):
            if c.contract is None:
                continue
            base = f"customers[{i}].contract"
            _check_hours(c.contract.hours, f"{base}.hours", reader, err)
            _check_caps(c.contract.caps, f"{base}.caps", reader, err)
        if model.industries is not None:
            for f in dataclasses.fields(model.industries):
                terms = getattr(model.industries, f.name)
                if terms is not None:
                    _check_hours(terms.hours, f"industries.{f.name}.hours", reader, err)
                    _check_caps(terms.caps, f"industries.{f.name}.caps", reader, err)
        for i, r in enumerate(model.key_regions):
            base = f"key_regions[{i}]"
            if r.id in region_ids:
                err(reader, f"{base}.id",
                    f"duplicate key region {r.id!r} (first in {region_ids[r.id]})")
            else:
                region_ids[r.id] = _where(reader, f"{base}.id")
            if not r.regions:
                err(reader, f"{base}.regions", "at least one area code or place name is needed")
            if r.factor is not None and not 0.0 < r.factor <= 1.0:
                err(reader, f"{base}.factor", "must be more than 0 and at most 1")
            if r.factor is None and r.caps is None:
                err(reader, base, "a key region needs a factor, caps or both")
            _check_caps(r.caps, f"{base}.caps", reader, err)
        p = model.patterns
        if p is not None and p.bombing is not None:
            b = p.bombing
            for name in ("window_s", "flag_period_s", "min_callers"):
                if getattr(b, name) < 1:
                    err(reader, f"patterns.bombing.{name}", "must be at least 1")
            for name in ("per_caller", "calls"):
                if getattr(b, name) < 0:
                    err(reader, f"patterns.bombing.{name}", "cannot be negative")
        if p is not None and p.wangiri is not None:
            w = p.wangiri
            if not w.max_ring_s > 0:
                err(reader, "patterns.wangiri.max_ring_s", "must be more than 0")
            for name in ("window_s", "flag_period_s"):
                if getattr(w, name) < 1:
                    err(reader, f"patterns.wangiri.{name}", "must be at least 1")
            for name in ("short_calls", "callees"):
                if getattr(w, name) < 0:
                    err(reader, f"patterns.wangiri.{name}", "cannot be negative")


def _node(reader: _FileReader, key: str) -> yaml.Node | None:
    # A key with no node of its own (a missing field) is reported at its parent.
    while key:
        node = reader.nodes.get(key)
        if node is not None:
            return node
        key = key.rpartition(".")[0] if "." in key else ""
    return None


def _located(reader: _FileReader, key: str, message: str) -> ConfigError:
    node = _node(reader, key)
    line = node.start_mark.line + 1 if node is not None else None
    column = node.start_mark.column + 1 if node is not None else None
    return ConfigError(message, file=reader.file, line=line, column=column, key=key)


def _where(reader: _FileReader, key: str) -> str:
    node = _node(reader, key)
    return f"{reader.file}:{node.start_mark.line + 1}" if node is not None else reader.file


def load_policy(path: str | Path) -> PolicySnapshot:
    """Load, validate and compile a policy directory or file into a new snapshot.

    Raises :class:`ConfigError` (the first problem, by file and line) and never
    returns a partially applied policy.
    """
    snapshot, errors = _collect(path)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            more = len(errors) - 1
            # Same location fields as the first error; the count tells the editor to
            # run `fs-plugin check` for the full list.
            raise ConfigError(
                f"{first.message} (and {more} more error{'s' if more > 1 else ''})",
                file=first.file, line=first.line, column=first.column, key=first.key,
            )
        raise first
    assert snapshot is not None
    return snapshot


def check_policy(path: str | Path) -> list[ConfigError]:
    """Every problem in the policy at ``path`` (empty when it loads cleanly)."""
    try:
        _, errors = _collect(path)
    except ConfigError as exc:
        return [exc]
    return errors


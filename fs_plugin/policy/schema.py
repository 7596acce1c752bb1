"""JSON Schema of a policy file, generated from the models (for editors' completion).

``python -m fs_plugin.policy.schema > policies/schema.json`` regenerates the
committed file; a test fails when it is out of date. The schema describes one
file: every section is optional because a policy directory splits them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any

from fs_plugin.policy.catalogue import RULES
from fs_plugin.policy.models import Check, PolicyFile

__all__ = ["json_schema", "main", "render"]

_SCHEMA_ID = "https://fs-plugin.invalid/schema/policy.json"


def _describe(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        _, *extras = typing.get_args(tp)
        check = next(e for e in extras if isinstance(e, Check))
        out: dict[str, Any] = {"type": ["string", "integer"] if check.numeric_ok else "string"}
        out["description"] = check.description
        if check.pattern and not check.numeric_ok:
            out["pattern"] = f"^(?:{check.pattern})$"
        return out
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return {"anyOf": [_describe(args[0], defs), {"type": "null"}]}
    if origin is tuple:
        return {"type": "array", "items": _describe(typing.get_args(tp)[0], defs)}
    if origin is Mapping:
        value = _describe(typing.get_args(tp)[1], defs)
        return {
            "type": "object",
            "properties": {
                rule_id: {"$ref": value["$ref"], "description": spec.summary}
                for rule_id, spec in RULES.items()
            },
            "additionalProperties": False,
        }
    if dataclasses.is_dataclass(tp):
        assert isinstance(tp, type)
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            defs[name] = _object(tp, defs)
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is dt.date:
        return {"type": "string", "format": "date"}
    if tp is str:
        return {"type": "string"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _default(f: dataclasses.Field[Any]) -> Any:
    value = f.default
    if value is dataclasses.MISSING:
        return dataclasses.MISSING
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _object(tp: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(tp, include_extras=True)
    props: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(tp):
        prop = _describe(hints[f.name], defs)
        if "$ref" in prop:
            prop = {"allOf": [prop]}
        prop["description"] = f.metadata.get("doc", prop.get("description", ""))
        default = _default(f)
        if default is not dataclasses.MISSING:
            prop["default"] = default
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        props[f.name] = prop
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if tp.__doc__ and not tp.__doc__.startswith(f"{tp.__name__}("):
        out["description"] = " ".join(tp.__doc__.split())
    if required:
        out["required"] = required
    return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one policy YAML file."""
    defs: dict[str, Any] = {}
    root = _object(PolicyFile, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _SCHEMA_ID,
        "title": "fs_plugin policy file",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def render() -> str:
    """The schema as the exact text committed in ``policies/schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()

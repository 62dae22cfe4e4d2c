"""The JSON Schema of the #@smart keys (one fragment per key), and its errors as
``path:line: key.path: reason``: shared by companions, job files and profiles. The value
converters (smartcron.smart.annotations) then check what a schema cannot.

Split from smartcron.smart.smartspec so that smartcron.smart.profiles can validate a
profile file without importing the resolver that applies profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smartcron.errors import LineProblem
from smartcron.smart import safeyaml, schemacheck
from smartcron.smart.annotations import (
    CLOCK_PATTERN,
    DURATION_PATTERN,
    ENUMS,
    KEYS,
    KINDS,
    NAME_PATTERN,
    NUMBER_PATTERN,
    PERCENT_PATTERN,
    convert,
    describe,
    problem,
    suggest,
)

# after=a,b: comma-separated names (the converter checks each name).
NAMES_PATTERN = r"^[A-Za-z0-9_.-]{1,128}(\s*,\s*[A-Za-z0-9_.-]{1,128}){0,31}$"


def _schema(key: str) -> dict[str, Any]:
    kind = KINDS[key]
    duration: list[dict[str, Any]] = [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": DURATION_PATTERN},
    ]
    number = {"type": "string", "pattern": NUMBER_PATTERN}
    fragments: dict[str, list[dict[str, Any]]] = {
        "name": [{"type": "string", "pattern": NAME_PATTERN}],
        "names": [
            {"type": "string", "pattern": NAMES_PATTERN},
            {
                "type": "array",
                "items": {"type": "string", "pattern": NAME_PATTERN},
                "minItems": 1,
                "maxItems": 32,
            },
        ],
        "window": [*duration, {"type": "string", "pattern": CLOCK_PATTERN}],
        "load": [{"type": "number", "minimum": 0}, number],
        "cost": [{"type": "number", "minimum": 0}, number],
        "percent": [
            {"type": "number", "minimum": 0, "maximum": 100},
            {"type": "string", "pattern": PERCENT_PATTERN},
        ],
        "bool": [
            {"type": "boolean"},
            {"type": "string", "pattern": "^(?i:yes|no|on|off|true|false)$"},
        ],
        "duration": duration,
        "path": [{"type": "string", "pattern": "^/", "maxLength": 4096}],
        "count": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "string"}],
        "priority": [{"type": "integer", "minimum": -1000, "maximum": 1000}, {"type": "string"}],
        "enum": [{"type": "string", "pattern": f"^(?i:{'|'.join(ENUMS.get(key, ()))})$"}],
    }
    return {"description": describe(key), "anyOf": fragments[kind]}


def settings_schema(keys: Iterable[str] = KEYS) -> dict[str, Any]:
    """An object of 4.1 keys (those in `keys`); null counts as empty."""
    return {
        "description": "a mapping of #@smart keys",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {key: _schema(key) for key in keys},
    }


# Validators whose error is best told by the subschema's description.
_DESCRIBED = {"anyOf", "type", "pattern", "minLength", "maxLength", "minItems", "maxItems"}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def schema_problems(
    data: Any, schema: dict[str, Any], path: str, root: Any, *, extra_hint: str = ""
) -> list[LineProblem]:
    """Schema errors as ``path:line: key.path: reason``; an unknown key gets a suggestion."""
    out: list[LineProblem] = []
    for err in schemacheck.schema_errors(data, schema):
        keys = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = list(err.schema.get("properties", {}))
            for extra in sorted((k for k in err.instance if k not in known), key=str):
                at = [*keys, extra]
                hint = extra_hint if extra == "name" else suggest(str(extra), known)
                reason = f"{safeyaml.keypath(at)}: unknown key{hint}"
                out.append(problem(path, safeyaml.locate(root, at), reason))
            continue
        if "propertyNames" in err.schema_path:
            keys.append(err.instance)  # point at the bad key itself
        description = err.schema.get("description")
        if description and err.validator in _DESCRIBED:
            reason = f"expected {description}, got {_short(err.instance)}"
        else:
            reason = err.message if len(err.message) < 200 else err.message[:197] + "..."
        line = safeyaml.locate(root, keys)
        out.append(problem(path, line, f"{safeyaml.keypath(keys)}: {reason}"))
    return sorted(out, key=lambda p: p.line)  # stable: key-path order within a line


def convert_all(
    settings: Mapping[str, object], keys: list[Any], path: str, root: Any, out: list[LineProblem]
) -> dict[str, object]:
    """Convert a schema-valid mapping's 4.1 values; problems (with lines) go to `out`."""
    typed: dict[str, object] = {}
    for key, value in (settings or {}).items():
        try:
            typed[key] = convert(key, value)
        except ValueError as err:
            at = [*keys, key]
            out.append(problem(path, safeyaml.locate(root, at), f"{safeyaml.keypath(at)}: {err}"))
    return typed

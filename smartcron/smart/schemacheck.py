"""JSON Schema validation of the files SmartCron reads, in this process or in a child.

jsonschema (with `referencing`, `rpds` and the bundled meta-schemas) cost the daemon
3.5-4.2 MiB of RSS for as long as it lived (benchmarks daemon-model), though it validates
only when a companion file or a profile changes. So the daemon validates in a
short-lived child interpreter (`out_of_process(True)`) and never imports jsonschema;
the CLIs and the simulator validate in process. Both paths run `raw_errors`, and the
parent turns its plain records into `SchemaIssue`s against its own objects, so the two
give the same issues.

The document goes to the child pickled (the parent's own objects, so the child sees
exactly what the parent parsed); the answer comes back as JSON, never as a pickle. A
child that fails (cannot start, times out, says something unreadable) is logged and the
document is validated in process: a file is never accepted or refused by accident.
"""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CHILD_TIMEOUT_S = 30.0
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_CHILD_ARGS = ("-I", "-m", __name__)  # -I: no PYTHON* variables, no user site, no cwd
_state = {"child": False}


@dataclass(frozen=True)
class SchemaIssue:
    """One schema error: what jsonschema's ValidationError says that our callers use."""

    absolute_path: tuple[str | int, ...]  # where in the document
    schema_path: tuple[str | int, ...]  # where in the schema, ending with `validator`
    validator: str  # the keyword that failed ("anyOf", "additionalProperties", ...)
    message: str
    instance: Any  # the value that failed (a mapping's key for "propertyNames")
    schema: Mapping[str, Any]  # the subschema holding `validator`


def out_of_process(on: bool) -> None:
    """Validate in a child interpreter from now on (the daemon), or in process."""
    _state["child"] = on


def schema_errors(data: Any, schema: Mapping[str, Any]) -> list[SchemaIssue]:
    """Every JSON Schema error of `data`, in key-path order."""
    if _state["child"]:
        raw = _from_child(pickle.dumps((data, schema), protocol=pickle.HIGHEST_PROTOCOL))
        try:
            if raw is not None:
                return [_issue(data, schema, record) for record in raw]
        except (KeyError, IndexError, TypeError, ValueError) as err:  # not about this document
            log.warning("schema check in a child: unreadable answer (%r); checking in process", err)
    return [_issue(data, schema, record) for record in raw_errors(data, schema)]


def raw_errors(data: Any, schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """jsonschema's errors as JSON-able records. jsonschema is imported only here."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(k) for k in e.absolute_path])
    return [_record(data, err) for err in errors]


def _record(data: Any, err: Any) -> dict[str, Any]:
    node = _follow(data, err.absolute_path)
    key = None  # "propertyNames" checks a key, not the node at the error's path
    if err.instance is not node and isinstance(node, dict):
        key = next((i for i, k in enumerate(node) if k is err.instance), None)
    return {
        "path": list(err.absolute_path),
        "schema_path": list(err.relative_schema_path),
        "validator": str(err.validator),
        "message": err.message,
        "key": key,
    }


def _issue(data: Any, schema: Mapping[str, Any], record: Mapping[str, Any]) -> SchemaIssue:
    path, schema_path = tuple(record["path"]), tuple(record["schema_path"])
    instance = _follow(data, path)
    if record["key"] is not None:
        instance = list(instance)[record["key"]]
    return SchemaIssue(
        absolute_path=path,
        schema_path=schema_path,
        validator=record["validator"],
        message=record["message"],
        instance=instance,
        schema=_follow(schema, schema_path[:-1]),
    )


def _follow(node: Any, keys: Any) -> Any:
    for key in keys:
        node = node[key]
    return node


def _from_child(blob: bytes) -> list[dict[str, Any]] | None:
    """The child's records for a pickled (data, schema); None when the child failed. Not
    cached: the daemon reloads a file (and the profiles) only when its stamp changes."""
    try:
        done = subprocess.run(
            [sys.executable, *_CHILD_ARGS],
            input=blob,
            capture_output=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or len(done.stdout) > MAX_ANSWER_BYTES:
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ValueError(f"exit {done.returncode}: {why[0]}")
        records = json.loads(done.stdout)
        if not isinstance(records, list):
            raise ValueError("not a list")
        return records
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        log.warning("schema check in a child failed (%s); checking in process", err)
        return None


def main() -> None:
    """The child: a pickled (data, schema) on stdin, the JSON records on stdout."""
    data, schema = pickle.loads(sys.stdin.buffer.read())  # from our own parent only
    sys.stdout.write(json.dumps(raw_errors(data, schema)))


if __name__ == "__main__":
    main()

"""Defensive loading of the YAML (and JSON) files SmartCron reads, and where-is-it help.

Every document is size-capped before parsing; while it is composed, aliases are counted
and nesting is bounded, and the alias expansion is measured on the node graph before
anything is constructed (no "billion laughs"). Plain scalars resolve as PyYAML's
SafeLoader does (YAML 1.1: ``yes``/``no`` are booleans) with one exception: base-60
numbers are not numbers, so ``22:00`` stays the string "22:00", which is what a clock
time means in our files (YAML 1.1 would read it as the integer 1320).

Errors are `YamlError`: path, line (None when the whole file is at fault) and reason.
Schema errors (smartcron.smart.schemacheck) are placed at the line of the node they are
about (`locate`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from smartcron.errors import SmartcronError

if TYPE_CHECKING:
    import yaml

MAX_BYTES = 2 * 1024 * 1024
MAX_ALIASES = 200
MAX_NODES = 100_000  # nodes of the document once every alias is expanded
MAX_DEPTH = 64  # nested collections

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class YamlError(SmartcronError):
    """A file refused before or while parsing: ``path[:line]: reason``."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = path, reason, line
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")


class _Refused(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


@functools.cache
def _guarded_loader() -> type:
    """The loader class, built on first use: PyYAML is imported only when YAML is read."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """SafeLoader without base-60 ints and floats (see the module docstring)."""

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Loader.add_implicit_resolver(
        _INT,
        re.compile(
            r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""",
            re.X,
        ),
        list("-+0123456789"),
    )
    _Loader.add_implicit_resolver(
        _FLOAT,
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
            |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
            re.X,
        ),
        list("-+0123456789."),
    )

    class _GuardedLoader(_Loader):
        """Refuses alias-heavy or deeply nested documents before anything expands them."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.aliases = 0
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _Refused(f"more than {MAX_ALIASES} YAML aliases")
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    line = self.peek_event().start_mark.line + 1
                    raise _Refused(f"nested more than {MAX_DEPTH} levels deep", line)
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return _GuardedLoader


def _expanded_size(root: yaml.Node) -> int:
    """Node count with aliases expanded (memoised, so a bomb is measured, not built)."""
    import yaml

    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(c)] for c in children))
            continue
        if id(node) in sizes:
            continue
        sizes[id(node)] = MAX_NODES + 1  # in progress: a cycle counts as too big
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _size_label(size: int) -> str:
    return f"{size // 2**20} MB" if size % 2**20 == 0 else f"{size // 1024} KB"


def check_size(text: str, path: str, what: str = "file", max_bytes: int = MAX_BYTES) -> None:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise YamlError(path, f"{what} larger than {_size_label(max_bytes)}")


def load_yaml(
    text: str, path: str, *, what: str = "file", max_bytes: int = MAX_BYTES
) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document safely. Returns (data, root node); (None, None) if empty."""
    import yaml

    check_size(text, path, what, max_bytes)
    try:
        loader = _guarded_loader()(text)  # the reader refuses control characters at once
    except yaml.YAMLError as err:
        raise YamlError(path, f"YAML error: {err}") from None
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_size(root) > MAX_NODES:
            raise _Refused(f"YAML aliases expand to more than {MAX_NODES} nodes")
        data = loader.construct_document(root) if root is not None else None
    except _Refused as err:
        raise YamlError(path, err.reason, err.line) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        raise YamlError(
            path, f"YAML error: {problem}", mark.line + 1 if mark is not None else None
        ) from None
    except (ValueError, OverflowError) as err:  # int('9' * 5000), a 30th of February, ...
        raise YamlError(path, f"YAML error: bad value: {err}") from None
    finally:
        loader.dispose()
    return data, root


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level + 1)
            if deepest > MAX_DEPTH:
                break
            stack.extend(
                (v, level + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def load_json(
    text: str, path: str, *, what: str = "file", max_bytes: int = MAX_BYTES
) -> tuple[Any, yaml.Node | None]:
    """Parse JSON with the json module (NaN and Infinity refused), capped like `load_yaml`.

    The root node, for line numbers only, comes from composing the text as YAML (JSON
    is nearly a subset); it is None where that fails.
    """
    import yaml

    check_size(text, path, what, max_bytes)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise YamlError(path, f"JSON error: {err.msg}", err.lineno) from None
    except (ValueError, RecursionError) as err:
        raise YamlError(path, f"JSON error: {err}") from None
    if _depth(data) > MAX_DEPTH:
        raise YamlError(path, f"nested more than {MAX_DEPTH} levels deep")
    try:
        loader = _guarded_loader()(text)
    except yaml.YAMLError:
        return data, None
    try:
        root = loader.get_single_node()
    except (yaml.YAMLError, _Refused, RecursionError):
        root = None
    finally:
        loader.dispose()
    return data, root


def locate(root: yaml.Node | None, keys: Iterable[Any]) -> int | None:
    """The 1-based line of the node at a key path, as far as the path can be followed."""
    import yaml

    node = root
    for key in keys:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if str(k.value) == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            nxt = node.value[key]
        if nxt is None:
            break
        node = nxt
    return None if node is None else node.start_mark.line + 1


def keypath(keys: Iterable[Any]) -> str:
    """``jobs.backup.fail[0]``; ``(top level)`` for the empty path."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


def where(path: str, root: yaml.Node | None, keys: list[Any]) -> str:
    """``path:line`` for a key path (just ``path`` when no line is known)."""
    line = locate(root, keys)
    return f"{path}:{line}" if line is not None else path

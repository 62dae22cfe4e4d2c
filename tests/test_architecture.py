"""The package's shape, read from the AST of every module in smartcron/: no import cycle
(imports inside functions and under TYPE_CHECKING count: each is a module that needs the
other), and no private name (`_x`) imported from another module (a public name in
disguise: make it public in a shared module, or move the caller).

The KNOWN sets list what other work still has to remove; they may only shrink (a test
fails on an entry that is no longer true). Both are empty: keep them so.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "smartcron"

# Import edges (importer, imported) that close a cycle and that other work is removing.
# Each stays listed only while it exists; empty both sets when that work is done.
KNOWN_EDGES: set[tuple[str, str]] = set()

# (importer, imported module, name): private names still imported across modules, in
# files owned by other work. Empty: keep it so.
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def owner(dotted: str) -> str | None:
    """The module that defines `dotted` (a module, or a name in one), if it is ours."""
    while dotted not in MODULES:
        if "." not in dotted:
            return None
        dotted = dotted.rsplit(".", 1)[0]
    return dotted


def absolute(node: ast.ImportFrom, importer: str) -> str:
    """`from .x import y` as the dotted name of x."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if MODULES[importer].name != "__init__.py":
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(importer: str) -> Iterator[tuple[str, str | None, int]]:
    """(imported module, the name taken from it or None, line), for every import anywhere
    in the module: top level, in functions, under `if TYPE_CHECKING:`."""
    tree = ast.parse(MODULES[importer].read_text(encoding="utf-8"))
    module_aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = owner(alias.name)
                if target is not None:
                    module_aliases[alias.asname or alias.name] = target
                    yield target, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, importer)
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:  # `from smartcron import schedule`
                    module_aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
                    yield f"{base}.{alias.name}", None, node.lineno
                elif (target := owner(base)) is not None:
                    yield target, alias.name, node.lineno
    for node in ast.walk(tree):  # `module._name` through an imported module
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and is_private(node.attr)
        ):
            yield module_aliases[node.value.id], node.attr, node.lineno


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for importer in MODULES:
        for target, _, _ in imports(importer):
            if target != importer:
                graph[importer].add(target)
    return graph


def without_known(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {
        name: targets - {t for i, t in KNOWN_EDGES if i == name} for name, targets in graph.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def private_imports() -> set[tuple[str, str, str]]:
    return {
        (importer, target, name)
        for importer in MODULES
        for target, name, _ in imports(importer)
        if name is not None and target != importer and is_private(name)
    }


def test_the_checker_sees_the_package():
    assert {"smartcron.cron.crontab", "smartcron.cli.ctl", "smartcron.sim"} <= MODULES.keys()
    assert "smartcron.errors" in import_graph()["smartcron.cron.crontab"]


def test_cycle_detection_finds_a_cycle_through_function_level_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [frozenset({"a", "b", "c"})]


def test_no_import_cycle_among_smartcron_modules():
    found = sorted(sorted(cycle) for cycle in cycles(without_known(import_graph())))
    assert not found, f"import cycles: {found}"


def test_no_private_name_is_imported_across_modules():
    new = sorted(private_imports() - KNOWN_PRIVATE)
    assert not new, f"private names imported across modules: {new}"


def test_known_exceptions_are_still_true():
    """Both KNOWN sets are empty now; an entry added to either must name an edge or an
    import that exists (strike it when the work that removes it is done)."""
    graph = import_graph()
    gone = [edge for edge in sorted(KNOWN_EDGES) if edge[1] not in graph[edge[0]]]
    gone += sorted(KNOWN_PRIVATE - private_imports())
    assert not gone, f"no longer true, strike it from test_architecture: {gone}"


MAX_MODULE_LINES = 400  # issue 12: one concept a module
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        if (lines := source.count("\n")) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, too_long

"""How the tests are laid out, read from their AST: no test module imports another test
module (shared helpers live in plain modules, shared fixtures in conftest.py), and the
fakes shipped in smartcron.testing stay out of the daemon and away from the ML stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FILES = sorted(p for p in TESTS.rglob("*.py") if "golden" not in p.parts)


def is_test_module(dotted: str) -> bool:
    """`tests.test_x`, `tests.faults.test_x`, or `test_x` through tests/ on sys.path."""
    return dotted.split(".")[-1].startswith("test_")


def imported_test_modules(source: str) -> list[tuple[str, int]]:
    """(module, line) of every test module `source` imports, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if is_test_module(node.module):
                found.append((node.module, node.lineno))
            elif node.module in ("tests", "tests.faults"):  # `from tests import test_x`
                found += [(a.name, node.lineno) for a in node.names if is_test_module(a.name)]
    return found


def test_the_checker_finds_every_form_of_test_import():
    source = (
        "import tests.test_a\nfrom tests.faults.test_b import x\nfrom test_c import y\n"
        "def f():\n    from tests import test_d\nfrom tests.harness import make\n"
    )
    names = [name for name, _ in imported_test_modules(source)]
    assert names == ["tests.test_a", "tests.faults.test_b", "test_c", "test_d"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_file_imports_a_test_module(path: Path):
    found = imported_test_modules(path.read_text(encoding="utf-8"))
    assert not found, f"{path.name} imports test modules: {found}"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_daemon_never_loads_the_fakes():
    loaded = _modules_after(
        "import smartcron.daemon.service, smartcron.daemon.loop, smartcron.cli.daemon"
    )
    assert "smartcron.testing" not in loaded


def test_the_fakes_load_neither_pandas_nor_scikit_learn():
    loaded = _modules_after("import smartcron.testing")
    assert not {"pandas", "sklearn"} & loaded

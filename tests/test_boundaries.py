"""The package's shape: what it exports, what importing it loads, and no import cycles."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for package in ("stream_logreg", "consumers")
    for path in (ROOT / package).glob("*.py")
    if not path.name.startswith("_")
)


def test_the_top_level_exports_what_the_readme_documents():
    import stream_logreg

    assert sorted(stream_logreg.__all__) == ["Features", "LogisticRegression", "ModelFileError", "StreamLogregError"]
    readme = (ROOT / "README.md").read_text()
    assert f"from stream_logreg import {', '.join(sorted(stream_logreg.__all__))}`" in readme


@pytest.mark.parametrize("name", MODULES)
def test_every_public_module_declares_what_it_exports(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and module.__all__, name
    missing = [export for export in module.__all__ if not hasattr(module, export)]
    assert not missing, (name, missing)


def test_importing_the_package_loads_neither_the_commands_nor_the_service_nor_kafka():
    code = (
        "import sys, stream_logreg; "
        "print(sorted(m for m in sys.modules if m.startswith(('stream_logreg.cli', 'stream_logreg.replay_cli', "
        "'stream_logreg.demo', 'consumers', 'kafka', 'numba', 'pandas'))))"
    )
    loaded = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def imported_modules(path: Path) -> set[str]:
    """The stream_logreg and consumers modules a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("stream_logreg", "consumers")}


def test_no_module_imports_one_that_imports_it_back():
    files = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for package in ("stream_logreg", "consumers")
        for path in (ROOT / package).glob("*.py")
    }
    graph = {name: {m for m in imported_modules(path) if m in files and m != name} for name, path in files.items()}
    packages = {"stream_logreg", "consumers"}  # importing a submodule runs its package's __init__: not a cycle

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - packages:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(name for name in files if name not in packages and reaches(name, name, {name}))
    assert cycles == []

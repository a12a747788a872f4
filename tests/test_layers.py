"""The layers of the package, checked from the source: a package imports nothing from the layers above it, so the
dependency graph stays a ladder (function-local imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archsearch

ROOT = Path(archsearch.__file__).parent
#: what each package may not import (the layers above it)
FORBIDDEN = {
    "oneshot": {"api", "cli", "experiment", "strategies", "evaluators", "objectives", "reporting", "benchmarking"},
    "strategies": {"api", "cli", "experiment", "evaluators", "oneshot", "reporting", "executors"},
    "spaces": {
        "api",
        "cli",
        "experiment",
        "strategies",
        "evaluators",
        "oneshot",
        "objectives",
        "reporting",
        "executors",
    },
    "nn": {"api", "cli", "experiment", "strategies", "evaluators", "oneshot", "objectives", "reporting", "executors"},
    "evaluators": {"api", "cli", "experiment", "strategies", "reporting", "executors"},
    "api": {"cli"},
}


def imports_of(path: Path) -> set[str]:
    """The archsearch modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("archsearch")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archsearch"):
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_the_layers_above_it(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imports_of(path):
            parts = module.split(".")
            if len(parts) > 1 and parts[1] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert bad == []


def test_every_api_function_stays_callable_after_every_package_is_imported() -> None:
    """A subpackage named like an API function replaces it on the package when it is first imported after
    ``archsearch`` (the report package did, inside ``archsearch.report()`` itself); import everything, then check."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages([str(ROOT)], "archsearch."):
        if ".cli" not in info.name and "distributed" not in info.name:
            importlib.import_module(info.name)
    for name in archsearch.api.__all__:
        value = getattr(archsearch, name, None)
        if value is not None and name[0].islower():
            assert callable(value) and not isinstance(value, type(archsearch)), f"archsearch.{name} is a module"

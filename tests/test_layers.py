"""The layers of the package, checked from the source: a package imports nothing from the layers above it, so the
dependency graph stays a ladder (function-local imports count too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import archsearch

ROOT = Path(archsearch.__file__).parent
#: what each package (or top-level module) may not import (the layers above it)
ABOVE_MODELS = {"api", "cli", "experiment", "strategies", "evaluators", "oneshot", "objectives", "reporting",
                "executors", "comparison", "run_summary", "trial_costs"}  # fmt: skip
FORBIDDEN = {
    "oneshot": {"api", "cli", "experiment", "strategies", "evaluators", "objectives", "reporting", "comparison"},
    "strategies": {"api", "cli", "experiment", "evaluators", "oneshot", "reporting", "executors", "comparison"},
    "spaces": ABOVE_MODELS | {"costs", "export"},
    "nn": ABOVE_MODELS | {"spaces", "costs", "export"},
    "evaluators": {"api", "cli", "experiment", "strategies", "reporting", "executors", "comparison"},
    "costs": ABOVE_MODELS,
    "export": ABOVE_MODELS | {"costs"},
    "run_summary": {"api", "cli", "reporting", "experiment", "executors", "comparison"},
    "reporting": {"api", "cli", "comparison", "executors", "experiment", "strategies", "evaluators"},
    "comparison": {"api", "cli", "reporting"},
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
    files = [ROOT / f"{package}.py"] if (ROOT / f"{package}.py").is_file() else sorted((ROOT / package).rglob("*.py"))
    for path in files:
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


def _top(module: str) -> str:
    """The layer a module belongs to: its package or top-level module under ``archsearch``."""
    return module.split(".")[1] if module.count(".") else module


def test_no_two_layers_import_each_other() -> None:
    """The layers form a ladder: no package or top-level module imports one that imports it back (``reporting``
    and ``api`` once did, through ``summarize_run``)."""
    edges: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
        edges.setdefault(layer, set()).update(_top(m) for m in imports_of(path) if m.count("."))
    loops = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets
                    if b != a and a in edges.get(b, set())})  # fmt: skip
    assert loops == []


SPACE_NAME = re.compile(r"""["'](nb201|darts|chain|macro|mobile)["']""")


def test_no_module_outside_spaces_switches_on_a_space_name() -> None:
    """What a space is (its text form, drawing, tiny build, latency blocks, supernet ops) lives on the space, so no
    module outside ``spaces/`` names one; DARTS the one-shot method shares the name of its space."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.relative_to(ROOT).parts[0] == "spaces":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if SPACE_NAME.search(line) and not (path.name == "darts.py" and line.strip() == 'name = "darts"'):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []

"""A found network as a standalone ``model.py`` that imports only PyTorch (and the standard library): the classes of
``archsearch.nn`` the network is made of, copied from their source, and a ``build()`` that makes the network with
the architecture written out as plain values. Weights saved from the archsearch network load into it unchanged.

Written by hand: no library turns a module tree with custom ``forward`` code into source. The copy is taken from
this package's own files, so it is the code that was searched and trained, not a re-implementation.
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

from torch import nn

from archsearch.errors import ArchsearchError

#: the modules of archsearch.nn a network can be made of, in dependency order
SOURCES = ("archsearch.nn.fused", "archsearch.nn.conv", "archsearch.nn.ops", "archsearch.nn.heads",
           "archsearch.nn.cells", "archsearch.nn.networks", "archsearch.nn.mobile")  # fmt: skip

SHIMS = '''

class BuildError(ValueError):
    """A network that cannot be built with the arguments given."""


class Registry(dict):
    """Operations by name (the part of archsearch's registry the operations use)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def add(self, name, obj) -> None:
        self[name] = obj

    def get(self, name):
        if name not in self:
            raise BuildError(f"unknown {self.kind} {name!r} (allowed: {', '.join(self)})")
        return self[name]
'''


def _body(module_name: str) -> tuple[list[str], str]:
    """(import lines, the rest) of a module's source, its docstring and archsearch imports dropped."""
    import importlib

    source = inspect.getsource(importlib.import_module(module_name))
    tree = ast.parse(source)
    lines = source.splitlines()
    imports, skip = [], set()
    for node in tree.body:
        span = range(node.lineno - 1, node.end_lineno or node.lineno)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            skip.update(span)
            text = "\n".join(lines[i] for i in span)
            if "archsearch" not in text and "__future__" not in text:
                imports.append(text)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            skip.update(span)  # the module docstring
    body = "\n".join(line for i, line in enumerate(lines) if i not in skip).strip("\n")
    return imports, body


def _literal(value: Any) -> str:
    """``value`` as Python source (plain values, tuples, lists, dicts and archsearch.nn dataclasses)."""
    text = repr(value)
    try:
        ast.parse(text, mode="eval")
    except SyntaxError:
        raise ArchsearchError(f"cannot write {type(value).__name__} {text[:60]} as source") from None
    return text


def standalone_source(
    space: Any, genotype: Any, in_channels: int, num_classes: int, input_size: int, build: dict[str, Any]
) -> str:
    """The text of a ``model.py`` whose ``build()`` makes ``genotype``'s network (as ``space.build`` would)."""
    call = space.network_call(genotype, in_channels, num_classes, input_size, **build)
    if call is None:
        raise ArchsearchError(
            f"space {space.name!r} builds its networks with code of its own, so no standalone model.py can be "
            "written for it; export onnx, pt2 or torchscript instead"
        )
    cls, kwargs = call
    if not issubclass(cls, nn.Module) or not cls.__module__.startswith("archsearch.nn."):
        raise ArchsearchError(f"{cls.__name__} is not a network of archsearch.nn; no standalone form")
    imports: list[str] = []
    bodies = []
    for module in SOURCES:
        found, body = _body(module)
        imports += [line for line in found if line not in imports]
        bodies.append(f"# --- from {module} " + "-" * max(0, 100 - len(module)) + f"\n\n{body}")
    arguments = ",\n        ".join(f"{k}={_literal(v)}" for k, v in kwargs.items())
    header = (
        f'"""{genotype}\n\nA standalone PyTorch model written by archsearch: only torch (and the standard library) is\n'
        f"imported. `build()` makes the network ({space.name} space, input {in_channels}x{input_size}x{input_size}, "
        f'{num_classes} classes);\n`load("weights.pt")` also loads the weights saved beside this file.\n'
        '"""\n\nfrom __future__ import annotations\n\n'
    )
    footer = f'''

# --- the architecture ------------------------------------------------------------------------------------------------

ARCHITECTURE = {str(genotype)!r}
INPUT_SHAPE = ({in_channels}, {input_size}, {input_size})


def build() -> nn.Module:
    """The network, freshly initialised."""
    return {cls.__name__}(
        {arguments},
    )


def load(weights: str = "weights.pt", map_location: str = "cpu") -> nn.Module:
    """The network with the saved weights, in eval mode."""
    model = build()
    model.load_state_dict(torch.load(weights, map_location=map_location, weights_only=True))
    return model.eval()
'''
    text = header + "\n".join(imports) + SHIMS + "\n\n" + "\n\n\n".join(bodies) + "\n" + footer
    return re.sub(r"\n{4,}", "\n\n\n", text)

"""The NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops per edge, 15,625 cells.

The genotype's key and text form are NAS-Bench-201's own string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.nn.networks import NB201Network
from archsearch.spaces.base import Chooser, Decision, Space, check_keys
from archsearch.spaces.drawing import Dag, Drawing

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Edge order of the NB201 string: (to_node, from_node).
NB201_EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def _paths(node: int = 3) -> list[tuple[int, ...]]:
    """Every path from the cell's input (node 0) to ``node``, as the edge indices it runs along."""
    if node == 0:
        return [()]
    return [p + (e,) for e, (to, frm) in enumerate(NB201_EDGES) if to == node for p in _paths(frm)]


NB201_PATHS = _paths()  # (3,), (0, 4), (1, 5), (0, 2, 5)
# one slot per sequence of live ops of length 1 to 3: 4 + 16 + 64 = 84
_PATH_SLOTS = {
    seq: i
    for i, seq in enumerate(
        s for n in (1, 2, 3) for s in itertools.product([o for o in NB201_OPS if o != "none"], repeat=n)
    )
}


@dataclass(frozen=True)
class NB201Genotype:
    """A NAS-Bench-201 cell: one op per edge, edges in the order of :data:`NB201_EDGES`."""

    ops: tuple[str, ...]
    space: ClassVar[str] = "nb201"

    def __post_init__(self) -> None:
        if isinstance(self.ops, list):
            object.__setattr__(self, "ops", tuple(self.ops))
        if not isinstance(self.ops, tuple) or len(self.ops) != len(NB201_EDGES):
            got = len(self.ops) if isinstance(self.ops, tuple) else type(self.ops).__name__
            raise GenotypeError("edges", f"an NB201 cell has exactly 6 edges, got {got}")
        for (to, frm), op in zip(NB201_EDGES, self.ops):
            if op not in NB201_OPS:
                raise GenotypeError(f"edge {frm}->{to}", f"unknown op {op!r} (allowed: {', '.join(NB201_OPS)})")

    @property
    def key(self) -> str:
        return self.arch_str

    @cached_property
    def arch_str(self) -> str:
        """The NAS-Bench-201 string of this cell."""
        nodes = []
        for to in (1, 2, 3):
            parts = [f"{op}~{frm}" for (t, frm), op in zip(NB201_EDGES, self.ops) if t == to]
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    def __str__(self) -> str:
        return self.arch_str

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "arch": self.arch_str}

    def edges(self) -> list[tuple[int, int, str]]:
        """``(to_node, from_node, op)`` for every edge."""
        return [(to, frm, op) for (to, frm), op in zip(NB201_EDGES, self.ops)]

    @classmethod
    def from_string(cls, text: str) -> NB201Genotype:
        """Parse a NAS-Bench-201 string; every malformed part raises an error naming the node and edge."""
        text = text.strip()
        groups = text.split("+")
        if len(groups) != 3:
            raise GenotypeError("arch", f"an NB201 string has 3 node groups joined by '+', got {len(groups)}: {text!r}")
        ops: list[str] = []
        for to, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise GenotypeError(f"node {to}", f"group must look like '|op~0|...|', got {group!r}")
            entries = group[1:-1].split("|")
            if len(entries) != to:
                raise GenotypeError(f"node {to}", f"expects {to} incoming edge(s), got {len(entries)} in {group!r}")
            for frm, entry in enumerate(entries):
                op, sep, src = entry.partition("~")
                if not sep or not src.isdigit():
                    raise GenotypeError(f"node {to} edge {frm}", f"entry must be 'op~{frm}', got {entry!r}")
                if int(src) != frm:
                    raise GenotypeError(
                        f"node {to} edge {frm}", f"input must be node {frm} (edges in order 0..{to - 1}), got {src}"
                    )
                ops.append(op)
        return cls(tuple(ops))


class NB201Space(Space[NB201Genotype]):
    """NAS-Bench-201's cell space; the network is NAS-Bench-201's (C=16, 5 cells per stage by default)."""

    name = "nb201"
    description = "NAS-Bench-201 cell: 4 nodes, 6 edges, 5 ops (15,625 cells)"
    fixed_decisions = True
    text_is_key = True
    #: NAS-Bench-201's N: cells in each of the three stages ("cells" counts all of a DARTS network's cells)
    renamed_build_options: ClassVar[dict[str, str]] = {"cells": "cells_per_stage"}

    def __init__(self) -> None:
        self._unit_counts: dict[tuple[Any, ...], dict[str, dict[str, float]]] = {}

    def decide(self, choose: Chooser) -> NB201Genotype:
        return NB201Genotype(tuple(choose(f"edge{frm}->{to}", NB201_OPS) for to, frm in NB201_EDGES))

    def decisions(self, genotype: NB201Genotype) -> list[Decision]:
        return [Decision(f"edge{frm}->{to}", NB201_OPS, op) for (to, frm), op in zip(NB201_EDGES, genotype.ops)]

    def mutate(self, genotype: NB201Genotype, rng: np.random.Generator) -> NB201Genotype:
        ops = list(genotype.ops)
        edge = int(rng.integers(len(ops)))
        others = [op for op in NB201_OPS if op != ops[edge]]
        ops[edge] = others[int(rng.integers(len(others)))]
        return NB201Genotype(tuple(ops))

    def crossover(self, a: NB201Genotype, b: NB201Genotype, rng: np.random.Generator) -> NB201Genotype:
        take_a = rng.random(len(a.ops)) < 0.5
        return NB201Genotype(tuple(x if t else y for x, y, t in zip(a.ops, b.ops, take_a)))

    def neighbors(self, genotype: NB201Genotype) -> list[NB201Genotype]:
        out = []
        for edge, current in enumerate(genotype.ops):
            for op in NB201_OPS:
                if op != current:
                    ops = list(genotype.ops)
                    ops[edge] = op
                    out.append(NB201Genotype(tuple(ops)))
        return out

    def encode(self, genotype: NB201Genotype) -> np.ndarray:
        """One-hot op per edge: 6 x 5 = 30 values."""
        vec = np.zeros((len(NB201_EDGES), len(NB201_OPS)), dtype=np.float32)
        for edge, op in enumerate(genotype.ops):
            vec[edge, NB201_OPS.index(op)] = 1.0
        return vec.ravel()

    def encode_paths(self, genotype: NB201Genotype) -> np.ndarray:
        """Path encoding (White et al. 2021): for each input-to-output path without ``none``, a count in the slot of
        its op sequence (84 values). Predictors rank NB201 cells better from it than from the one-hot edges."""
        vec = np.zeros(len(_PATH_SLOTS), dtype=np.float32)
        for path in NB201_PATHS:
            ops = tuple(genotype.ops[e] for e in path)
            if "none" not in ops:
                vec[_PATH_SLOTS[ops]] += 1.0
        return vec

    def degenerate(self, genotype: NB201Genotype) -> str | None:
        """A cell none of whose four input-to-output paths is free of ``none``: its output is zero whatever the
        input, so the whole network outputs a constant (as nasbench prunes disconnected graphs)."""
        if any(all(genotype.ops[e] != "none" for e in path) for path in NB201_PATHS):
            return None
        return (
            "every path from the cell's input (node 0) to its output (node 3) passes a 'none' edge: the cell outputs "
            "zeros whatever its input, so the network cannot learn"
        )

    def validate(self, genotype: Any) -> NB201Genotype:
        if not isinstance(genotype, NB201Genotype):
            raise GenotypeError("genotype", f"expected an nb201 genotype, got {type(genotype).__name__}")
        return genotype

    def build_options(self) -> dict[str, Any]:
        return {"channels": 16, "cells_per_stage": 5}

    def build_network(
        self, genotype: NB201Genotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        cls, kwargs = self.network_call(genotype, in_channels, num_classes, input_size, **options)
        return cls(**kwargs)

    def network_call(
        self, genotype: NB201Genotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        opts = {**self.build_options(), **options}
        return NB201Network, {"edges": genotype.edges(), "C": opts["channels"], "cells": opts["cells_per_stage"],
                              "num_classes": num_classes, "in_channels": in_channels}  # fmt: skip

    def counts(self, genotype: NB201Genotype, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
               **options: Any) -> dict[str, float]:  # fmt: skip
        """Exact, without building: every edge of every cell sees the same shape, so a network's params and FLOPs
        are those of the all-``none`` network plus, per edge, what its op adds (measured once per op, on the network
        with that op on all six edges; ``tests/test_table_objectives.py`` checks it against real builds)."""
        settings = (in_channels, num_classes, input_size, *sorted(options.items()))
        if settings not in self._unit_counts:
            whole = {op: super(NB201Space, self).counts(NB201Genotype((op,) * len(NB201_EDGES)), in_channels,
                                                        num_classes, input_size, **options) for op in NB201_OPS}
            base = whole["none"]
            units = {op: {k: (v - base[k]) / len(NB201_EDGES) for k, v in c.items()} for op, c in whole.items()}
            self._unit_counts[settings] = {"base": base, **units}
        units = self._unit_counts[settings]
        return {k: float(round(units["base"][k] + sum(units[op][k] for op in genotype.ops))) for k in units["base"]}

    def size(self) -> int:
        return len(NB201_OPS) ** len(NB201_EDGES)

    def enumerate(self) -> Iterator[NB201Genotype]:
        for ops in itertools.product(NB201_OPS, repeat=len(NB201_EDGES)):
            yield NB201Genotype(ops)

    def ops(self) -> list[str]:
        return list(NB201_OPS)

    def complexity(self, genotype: NB201Genotype) -> float:
        """Convolutions per cell, a 3x3 counting 2 and a 1x1 counting 1."""
        return float(sum({"nor_conv_3x3": 2, "nor_conv_1x1": 1}.get(op, 0) for op in genotype.ops))

    def from_json(self, obj: Mapping[str, Any]) -> NB201Genotype:
        check_keys(obj, self.name, ["arch"])
        if not isinstance(obj["arch"], str):
            raise GenotypeError("arch", f"must be an NB201 string, got {type(obj['arch']).__name__}")
        return NB201Genotype.from_string(obj["arch"])

    @classmethod
    def recognizes(cls, text: str) -> bool:
        return text.strip().startswith("|")

    text_example = "an NB201 string '|op~0|+...'"

    def drawings(self, genotype: NB201Genotype) -> list[Drawing]:
        edges = tuple((to, frm, op) for (to, frm), op in zip(NB201_EDGES, genotype.ops))
        return [Drawing("cell", "NB201 cell", Dag(4, edges))]

    def tiny_build(self) -> dict[str, Any]:
        return {"channels": 4, "cells_per_stage": 1}

    def parse(self, text: str) -> NB201Genotype:
        if text.strip().startswith("|"):
            return NB201Genotype.from_string(text)
        return super().parse(text)

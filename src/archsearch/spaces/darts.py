"""The DARTS cell space: a normal and a reduction cell, 4 nodes each, every node summing two ops on two distinct
earlier nodes (inputs 0 and 1 are the two previous cells' outputs).

Text form is DARTS's own ``Genotype(normal=[(op, input), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
reduce_concat=[...])``; published cells are available by name (``DARTS_V2``). The key is canonical: the two inputs
of a node are unordered and nodes that can be renumbered without changing the graph give the same key.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.nn.networks import DartsNetwork
from archsearch.spaces.base import Chooser, Decision, Space, check_keys
from archsearch.spaces.darts_genotypes import PUBLISHED
from archsearch.spaces.drawing import Drawing, TwoInputCell

# Candidate ops of DARTS's search (its PRIMITIVES); ``none`` exists only inside a supernet.
DARTS_SEARCH_OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
DARTS_OPS: tuple[str, ...] = DARTS_SEARCH_OPS[1:]
STEPS = 4
CELLS = ("normal", "reduce")

Cell = tuple[tuple[str, int], ...]


def _check_cell(field: str, cell: Any) -> Cell:
    if not isinstance(cell, (list, tuple)) or not cell or len(cell) % 2:
        raise GenotypeError(field, f"must list an even, non-zero number of (op, input) pairs, got {cell!r}")
    pairs: list[tuple[str, int]] = []
    for k, pair in enumerate(cell):
        where = f"{field}[{k}] (node {2 + k // 2})"
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise GenotypeError(where, f"must be an (op, input) pair, got {pair!r}")
        op, index = pair
        if op == "none":
            raise GenotypeError(where, "'none' is never part of a final genotype")
        if op not in DARTS_OPS:
            raise GenotypeError(where, f"unknown op {op!r} (allowed: {', '.join(DARTS_OPS)})")
        node = 2 + k // 2
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < node:
            raise GenotypeError(where, f"input {index!r} is not an earlier node (allowed: 0..{node - 1})")
        pairs.append((op, index))
    for k in range(0, len(pairs), 2):
        if pairs[k][1] == pairs[k + 1][1]:
            raise GenotypeError(f"{field} node {2 + k // 2}", f"both inputs are node {pairs[k][1]}; they must differ")
    return tuple(pairs)


def _check_concat(field: str, concat: Any, cell: Cell) -> tuple[int, ...]:
    steps = len(cell) // 2
    if isinstance(concat, range):
        concat = list(concat)
    if not isinstance(concat, (list, tuple)) or not concat:
        raise GenotypeError(field, f"must be a non-empty list of node indices, got {concat!r}")
    for node in concat:
        if isinstance(node, bool) or not isinstance(node, int) or not 2 <= node < 2 + steps:
            raise GenotypeError(field, f"node {node!r} out of range (allowed: 2..{1 + steps})")
    if len(set(concat)) != len(concat):
        raise GenotypeError(field, f"lists a node twice: {list(concat)}")
    used = {index for _, index in cell}
    for node in range(2, 2 + steps):
        if node not in concat and node not in used:
            raise GenotypeError(field, f"node {node} is neither concatenated nor used by a later node")
    return tuple(concat)


def _canonical_cell(cell: Cell, concat: tuple[int, ...]) -> str:
    """The smallest text over all renumberings of the intermediate nodes that keep inputs before their node."""
    steps = len(cell) // 2
    nodes = [(cell[2 * s], cell[2 * s + 1]) for s in range(steps)]
    best: str | None = None
    for order in itertools.permutations(range(steps)):
        new_index = {0: 0, 1: 1, **{2 + old: 2 + pos for pos, old in enumerate(order)}}
        text_nodes = []
        for pos, old in enumerate(order):
            pair = sorted((new_index[i], op) for op, i in nodes[old])
            if any(i >= 2 + pos for i, _ in pair):
                break
            text_nodes.append(",".join(f"{op}~{i}" for i, op in pair))
        else:
            text = "|".join(text_nodes) + "|concat=" + ",".join(str(c) for c in sorted(new_index[c] for c in concat))
            best = text if best is None or text < best else best
    assert best is not None
    return best


@dataclass(frozen=True)
class DartsGenotype:
    """A DARTS architecture: ``(op, input)`` pairs of the normal and reduction cells and what each concatenates."""

    normal: Cell
    normal_concat: tuple[int, ...]
    reduce: Cell
    reduce_concat: tuple[int, ...]
    space: ClassVar[str] = "darts"

    def __post_init__(self) -> None:
        for name in CELLS:
            cell = _check_cell(name, getattr(self, name))
            object.__setattr__(self, name, cell)
            object.__setattr__(
                self, f"{name}_concat", _check_concat(f"{name}_concat", getattr(self, f"{name}_concat"), cell)
            )

    @cached_property
    def key(self) -> str:
        return (
            "normal:"
            + _canonical_cell(self.normal, self.normal_concat)
            + " reduce:"
            + _canonical_cell(self.reduce, self.reduce_concat)
        )

    def __str__(self) -> str:
        def cell(c: Cell) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in c) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "normal": [list(p) for p in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(p) for p in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def skip_count(self, cell: str = "normal") -> int:
        """How many ``skip_connect`` ops a cell holds (the usual sign of DARTS's collapse)."""
        return sum(op == "skip_connect" for op, _ in getattr(self, cell))

    @classmethod
    def from_string(cls, text: str) -> DartsGenotype:
        """Parse DARTS's ``Genotype(...)`` form (literals and ``range(a, b)`` only; nothing is evaluated)."""
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise GenotypeError("darts string", f"not a Genotype(...) expression ({exc.msg})") from None
        call = tree.body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
            raise GenotypeError("darts string", "must be of the form Genotype(normal=..., normal_concat=..., ...)")
        fields = ["normal", "normal_concat", "reduce", "reduce_concat"]
        if len(call.args) > len(fields):
            raise GenotypeError("darts string", f"takes at most 4 values, got {len(call.args)}")
        values: dict[str, Any] = {}
        for name, node in [*zip(fields, call.args), *((kw.arg, kw.value) for kw in call.keywords)]:
            if name not in fields:
                raise GenotypeError("darts string", f"unknown field {name!r} (allowed: {', '.join(fields)})")
            values[name] = _literal(name, node)
        missing = [f for f in fields if f not in values]
        if missing:
            raise GenotypeError("darts string", f"missing field(s) {missing}")
        return cls(**values)


def _literal(field: str, node: ast.expr) -> Any:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        return list(range(*(_literal(field, a) for a in node.args)))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(field, f"must be a literal, got {ast.unparse(node)!r}") from None


def published(name: str) -> DartsGenotype:
    """A published DARTS-space genotype by name (``DARTS_V1``, ``DARTS_V2``, ``PC_DARTS``, ``PDARTS``)."""
    if name not in PUBLISHED:
        raise GenotypeError("genotype name", f"unknown {name!r} (published: {', '.join(PUBLISHED)})")
    return DartsGenotype.from_string(PUBLISHED[name])


def _pairs(node: int) -> tuple[str, ...]:
    return tuple(f"{i},{j}" for i, j in itertools.combinations(range(node), 2))


class DartsSpace(Space[DartsGenotype]):
    """DARTS's space of (normal, reduction) cells; built as DARTS's evaluation network (36 channels, 20 cells)."""

    name = "darts"
    description = "DARTS normal + reduction cells: 4 nodes, 2 inputs each, 7 ops"
    fixed_decisions = True

    def decide(self, choose: Chooser) -> DartsGenotype:
        cells: dict[str, list[tuple[str, int]]] = {}
        for cell in CELLS:
            pairs: list[tuple[str, int]] = []
            for node in range(2, 2 + STEPS):
                lo, hi = (int(v) for v in choose(f"{cell}.node{node}.inputs", _pairs(node)).split(","))
                pairs.append((choose(f"{cell}.node{node}.op_lo", DARTS_OPS), lo))
                pairs.append((choose(f"{cell}.node{node}.op_hi", DARTS_OPS), hi))
            cells[cell] = pairs
        full = tuple(range(2, 2 + STEPS))
        return DartsGenotype(tuple(cells["normal"]), full, tuple(cells["reduce"]), full)

    def decisions(self, genotype: DartsGenotype) -> list[Decision]:
        out: list[Decision] = []
        for cell in CELLS:
            pairs = getattr(genotype, cell)
            for s, node in enumerate(range(2, 2 + STEPS)):
                (op_lo, lo), (op_hi, hi) = sorted((pairs[2 * s], pairs[2 * s + 1]), key=lambda p: p[1])
                out.append(Decision(f"{cell}.node{node}.inputs", _pairs(node), f"{lo},{hi}"))
                out.append(Decision(f"{cell}.node{node}.op_lo", DARTS_OPS, op_lo))
                out.append(Decision(f"{cell}.node{node}.op_hi", DARTS_OPS, op_hi))
        return out

    def _with(self, genotype: DartsGenotype, cell: str, slot: int, pair: tuple[str, int]) -> DartsGenotype:
        pairs = list(getattr(genotype, cell))
        pairs[slot] = pair
        fields = {c: getattr(genotype, c) for c in ("normal", "normal_concat", "reduce", "reduce_concat")}
        fields[cell] = tuple(pairs)
        return DartsGenotype(**fields)

    def _edits(self, genotype: DartsGenotype) -> Iterable[DartsGenotype]:
        for cell in CELLS:
            pairs = getattr(genotype, cell)
            for slot, (op, index) in enumerate(pairs):
                other = pairs[slot ^ 1][1]
                for new_op in DARTS_OPS:
                    if new_op != op:
                        yield self._with(genotype, cell, slot, (new_op, index))
                for new_index in range(2 + slot // 2):
                    if new_index not in (index, other):
                        yield self._with(genotype, cell, slot, (op, new_index))

    def mutate(self, genotype: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
        edits = list(self._edits(genotype))
        while True:
            child = edits[int(rng.integers(len(edits)))]
            if child.key != genotype.key:
                return child

    def crossover(self, a: DartsGenotype, b: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
        cells = {}
        for cell in CELLS:
            pa, pb = getattr(a, cell), getattr(b, cell)
            take_a = rng.random(STEPS) < 0.5
            cells[cell] = tuple(p for s in range(STEPS) for p in (pa if take_a[s] else pb)[2 * s : 2 * s + 2])
        return DartsGenotype(cells["normal"], a.normal_concat, cells["reduce"], a.reduce_concat)

    def neighbors(self, genotype: DartsGenotype) -> list[DartsGenotype]:
        seen = {genotype.key}
        out = []
        for child in self._edits(genotype):
            if child.key not in seen:
                seen.add(child.key)
                out.append(child)
        return out

    def encode(self, genotype: DartsGenotype) -> np.ndarray:
        """Per cell, a binary (edge, op) matrix over the 14 possible edges and 7 ops: 196 values."""
        edges = [(node, i) for node in range(2, 2 + STEPS) for i in range(node)]
        vec = np.zeros((len(CELLS), len(edges), len(DARTS_OPS)), dtype=np.float32)
        for c, cell in enumerate(CELLS):
            for k, (op, i) in enumerate(getattr(genotype, cell)):
                vec[c, edges.index((2 + k // 2, i)), DARTS_OPS.index(op)] = 1.0
        return vec.ravel()

    def validate(self, genotype: Any) -> DartsGenotype:
        if not isinstance(genotype, DartsGenotype):
            raise GenotypeError("genotype", f"expected a darts genotype, got {type(genotype).__name__}")
        full = tuple(range(2, 2 + STEPS))
        for cell in CELLS:
            if len(getattr(genotype, cell)) != 2 * STEPS:
                raise GenotypeError(cell, f"the darts space has {STEPS} nodes: {2 * STEPS} (op, input) pairs")
            if tuple(sorted(getattr(genotype, f"{cell}_concat"))) != full:
                raise GenotypeError(f"{cell}_concat", f"the darts space concatenates every node: {list(full)}")
        return genotype

    def build_options(self) -> dict[str, Any]:
        return {"channels": 36, "cells": 20, "auxiliary": False, "drop_path": 0.0}

    def build_network(
        self, genotype: DartsGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        cls, kwargs = self.network_call(genotype, in_channels, num_classes, input_size, **options)
        return cls(**kwargs)

    def network_call(
        self, genotype: DartsGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        opts = {**self.build_options(), **options}
        return DartsNetwork, {
            "normal": list(genotype.normal), "normal_concat": list(genotype.normal_concat),
            "reduce": list(genotype.reduce), "reduce_concat": list(genotype.reduce_concat), "C": opts["channels"],
            "layers": opts["cells"], "num_classes": num_classes, "in_channels": in_channels,
            "auxiliary": opts["auxiliary"], "drop_path_prob": opts["drop_path"], "input_size": input_size,
        }  # fmt: skip

    def size(self) -> int:
        per_node = [len(_pairs(node)) * len(DARTS_OPS) ** 2 for node in range(2, 2 + STEPS)]
        return int(np.prod(per_node, dtype=object)) ** 2

    def ops(self) -> list[str]:
        return list(DARTS_OPS)

    def supernet_ops(self) -> list[str]:
        return list(DARTS_SEARCH_OPS)

    def complexity(self, genotype: DartsGenotype) -> float:
        """Convolutions in both cells: a separable conv (two stacked) counts 2, a dilated conv 1."""
        weight = {"sep_conv_3x3": 2, "sep_conv_5x5": 2, "dil_conv_3x3": 1, "dil_conv_5x5": 1}
        return float(sum(weight.get(op, 0) for cell in CELLS for op, _ in getattr(genotype, cell)))

    def from_json(self, obj: Mapping[str, Any]) -> DartsGenotype:
        check_keys(obj, self.name, ["normal", "normal_concat", "reduce", "reduce_concat"])
        return self.validate(DartsGenotype(**{k: _tuples(obj[k]) for k in obj if k != "space"}))

    @classmethod
    def recognizes(cls, text: str) -> bool:
        return text.strip().startswith("Genotype") or text.strip() in PUBLISHED

    text_example = f"a DARTS 'Genotype(...)' or name ({', '.join(PUBLISHED)})"

    def drawings(self, genotype: DartsGenotype) -> list[Drawing]:
        return [Drawing("normal", "normal cell", TwoInputCell(tuple(genotype.normal), tuple(genotype.normal_concat))),
                Drawing("reduce", "reduction cell", TwoInputCell(tuple(genotype.reduce),
                                                                 tuple(genotype.reduce_concat)))]  # fmt: skip

    def tiny_build(self) -> dict[str, Any]:
        return {"channels": 4, "cells": 3, "auxiliary": True, "drop_path": 0.2}

    def parse(self, text: str) -> DartsGenotype:
        stripped = text.strip()
        if stripped in PUBLISHED:
            return self.validate(published(stripped))
        if stripped.startswith("Genotype"):
            return self.validate(DartsGenotype.from_string(stripped))
        return super().parse(text)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value

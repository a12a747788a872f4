"""Few-shot supernets (Zhao et al. 2021, "Few-shot Neural Architecture Search"): the supernet split on one edge's
operation into one sub-supernet per op, each trained only on the sub-networks that take its op there.

Weight sharing ranks sub-networks poorly partly because every op of an edge trains against every op of the others;
splitting on one edge removes that interference for the split edge. Here the split is a supernet that holds the
copies from the start (so checkpoints and resume need nothing new): until :meth:`FewShotSupernet.split` every path
runs through the first copy, the one-shot supernet; the split copies its weights into the others, and from then on
a path runs through the copy of its op on the split edge. Under SPOS's fair path sampling each step draws one path
per op of every edge, so after the split every sub-supernet trains on exactly one path per step, at the one-shot
supernet's cost per step. Sub-networks are scored by :class:`~archsearch.evaluators.supernet.SupernetEvaluator`
as in one-shot SPOS: each runs inside its own sub-supernet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from archsearch.errors import BuildError
from archsearch.oneshot.search_cell import CellArch
from archsearch.oneshot.supernets import Supernet


class FewShotSupernet(Supernet):
    """``parts``: one supernet per op (identical at the start), split on edge ``edge`` of the first cell type."""

    def __init__(self, parts: Sequence[Supernet], edge: int) -> None:
        super().__init__()
        first = parts[0]
        if len(parts) != len(first.op_names):
            raise BuildError(f"a few-shot supernet needs one part per op ({len(first.op_names)}), got {len(parts)}")
        if not 0 <= edge < first.num_edges:
            raise BuildError(f"few-shot split edge {edge} is not an edge of the {first.cell_types[0]} cell "
                             f"(0 to {first.num_edges - 1})")  # fmt: skip
        self.cell_types, self.op_names, self.num_edges = first.cell_types, first.op_names, first.num_edges
        self.parts = nn.ModuleList(parts)
        self.edge = edge
        self.register_buffer("is_split", torch.zeros((), dtype=torch.bool))

    @property
    def alphas(self) -> nn.ParameterDict:  # type: ignore[override]
        return self.parts[0].alphas  # type: ignore[return-value]

    @property
    def betas(self) -> nn.ParameterDict | None:  # type: ignore[override]
        return self.parts[0].betas  # type: ignore[return-value]

    def arch_logits(self) -> dict[str, torch.Tensor]:
        return self.parts[0].arch_logits()  # type: ignore[operator, no-any-return]

    def arch_parameters(self) -> list[nn.Parameter]:
        """Every part's architecture parameters (SPOS learns none; they are kept out of the weights)."""
        return [p for part in self.parts for p in part.arch_parameters()]  # type: ignore[operator]

    def edge_list(self) -> list[tuple[int, int]]:
        return self.parts[0].edge_list()  # type: ignore[operator]

    def single_path(self, genotype: Any) -> dict[str, CellArch]:
        return self.parts[0].single_path(genotype)  # type: ignore[operator]

    def derive(self) -> Any:
        raise RuntimeError("a few-shot supernet is searched over its sub-networks (SPOS); it has no alphas to derive")

    def part_of(self, archs: Mapping[str, CellArch] | None) -> int:
        """The part a single path runs through: the first before the split, its op's on the split edge after."""
        if archs is None or archs[self.cell_types[0]].choice is None:
            raise ValueError("a few-shot supernet runs single paths only (SPOS), not mixed ops")
        if not bool(self.is_split):
            return 0
        return int(archs[self.cell_types[0]].choice[self.edge])  # type: ignore[index]

    def forward(self, x: torch.Tensor, archs: Mapping[str, CellArch] | None = None) -> torch.Tensor:
        return self.parts[self.part_of(archs)](x, archs)  # type: ignore[no-any-return]

    @torch.no_grad()
    def split(self) -> None:
        """Every part takes the first part's weights and batch-norm statistics; paths are routed by their op on the
        split edge from now on."""
        state = self.parts[0].state_dict()
        for part in self.parts[1:]:
            part.load_state_dict(state)
        self.is_split.fill_(True)

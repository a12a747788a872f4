"""Cells: the NAS-Bench-201 cell, its residual reduction block, and the DARTS cell of the evaluation network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from archsearch.nn.ops import FactorizedReduce, Identity, ReLUConvBN, make_op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``drop_prob`` and rescale the rest (DARTS's drop-path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class NB201Cell(nn.Module):
    """A NAS-Bench-201 cell: node ``j`` is the sum of ``op(node i)`` over its incoming edges ``(j, i, op)``.

    The output is the last node. ``edges`` lists ``(to_node, from_node, op_name)`` for nodes 1..3.
    """

    def __init__(self, edges: Sequence[tuple[int, int, str]], C: int) -> None:
        super().__init__()
        self.edges = [(j, i) for j, i, _ in edges]
        self.num_nodes = 1 + max(j for j, _, _ in edges)
        self.layers = nn.ModuleList(make_op(op, C, C, 1) for _, _, op in edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor] = [x]
        for j in range(1, self.num_nodes):
            total: torch.Tensor | None = None
            for layer, (to, i) in zip(self.layers, self.edges):
                if to == j:
                    out = layer(nodes[i])
                    total = out if total is None else total + out
            assert total is not None, f"node {j} has no incoming edge"
            nodes.append(total)
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The residual block NAS-Bench-201 uses between stages (two 3x3 ReLU-Conv-BN, pooled 1x1 shortcut)."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        self.downsample: nn.Module | None
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
                nn.Conv2d(C_in, C_out, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif C_in != C_out:
            self.downsample = ReLUConvBN(C_in, C_out, 1, 1, 0)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))


class DartsCell(nn.Module):
    """A DARTS cell: two preprocessed inputs, ``len(ops) // 2`` nodes each summing two ops, concatenated outputs."""

    def __init__(
        self,
        ops: Sequence[tuple[str, int]],
        concat: Sequence[int],
        C_prev_prev: int,
        C_prev: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (
            FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        )
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.indices = [index for _, index in ops]
        self.concat = list(concat)
        self.multiplier = len(self.concat)
        self.ops = nn.ModuleList(make_op(name, C, C, 2 if reduction and index < 2 else 1) for name, index in ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(len(self.ops) // 2):
            total = None
            for k in (2 * step, 2 * step + 1):
                h = self.ops[k](states[self.indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(self.ops[k], Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)

"""Whole networks built from plain architecture data: NAS-Bench-201's, DARTS's evaluation network, the macro chain.

Builders take plain values (edge lists, op/index pairs, layer tuples), not genotype objects, so spaces depend on
this module and not the other way round. Every network takes ``in_channels`` and ``num_classes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import BuildError
from archsearch.nn.cells import DartsCell, NB201Cell, ResNetBasicBlock
from archsearch.nn.heads import AuxiliaryHead, ClassifierHead
from archsearch.nn.ops import ConvBNReLU, Pool


class NB201Network(nn.Module):
    """NAS-Bench-201's network: 3x3 conv stem, three stages of ``cells`` cells at C/2C/4C channels joined by
    residual reduction blocks, BN-ReLU, global pool, linear head."""

    def __init__(
        self,
        edges: Sequence[tuple[int, int, str]],
        C: int = 16,
        cells: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        blocks: list[nn.Module] = []
        C_prev = C
        for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                blocks.append(ResNetBasicBlock(C_prev, C_curr, 2))
            blocks.extend(NB201Cell(edges, C_curr) for _ in range(cells))
            C_prev = C_curr
        self.cells = nn.Sequential(*blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
        self.head = ClassifierHead(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lastact(self.cells(self.stem(x))))


class DartsNetwork(nn.Module):
    """DARTS's evaluation network (``NetworkCIFAR``): stem of 3C channels, ``layers`` cells with reduction cells at
    1/3 and 2/3 of the depth, optional auxiliary head after the second reduction, drop-path.

    In training mode with an auxiliary head, ``forward`` returns ``(logits, aux_logits)``; otherwise logits.
    """

    def __init__(
        self,
        normal: Sequence[tuple[str, int]],
        normal_concat: Sequence[int],
        reduce: Sequence[tuple[str, int]],
        reduce_concat: Sequence[int],
        C: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        auxiliary: bool = False,
        drop_path_prob: float = 0.0,
        input_size: int = 32,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise BuildError(f"a DARTS network needs at least 3 cells (two of them reductions), got {layers}")
        self.drop_path_prob = drop_path_prob
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
        self.reduction_at = (layers // 3, 2 * layers // 3)
        self.cells = nn.ModuleList()
        reduction_prev = False
        size = input_size
        C_aux = C_prev
        for i in range(layers):
            reduction = i in self.reduction_at
            if reduction:
                C_curr *= 2
                size = (size + 1) // 2
            ops, concat = (reduce, reduce_concat) if reduction else (normal, normal_concat)
            cell = DartsCell(ops, concat, C_prev_prev, C_prev, C_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, cell.multiplier * C_curr
            if i == self.reduction_at[1]:
                C_aux = C_prev
        self.aux_index = self.reduction_at[1]
        self.auxiliary_head = AuxiliaryHead(C_aux, num_classes, size) if auxiliary else None
        self.head = ClassifierHead(C_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        aux_logits = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.head(s1)
        return (logits, aux_logits) if aux_logits is not None else logits


@dataclass(frozen=True)
class ChainLayerSpec:
    """One layer of a chain network as plain values (see :mod:`archsearch.spaces.chain`)."""

    op: str  # "conv", "max_pool" or "avg_pool"
    kernel: int
    channels: int  # output channels of a conv; 0 for a pool (keeps its input's channels)
    stride: int
    inputs: tuple[int, ...]  # earlier layers whose outputs join the main input


class _Resample(nn.Module):
    """Brings a skip tensor to the main input's spatial size (adaptive average pool) and channels (1x1 conv)."""

    def __init__(self, C_in: int, C_out: int) -> None:
        super().__init__()
        self.project = None if C_in == C_out else nn.Conv2d(C_in, C_out, 1, bias=False)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) != size:
            x = F.adaptive_avg_pool2d(x, size)
        return x if self.project is None else self.project(x)


class ChainNetwork(nn.Module):
    """The macro space's network: layers in sequence, each fed by the previous layer's output merged (``add`` or
    ``concat``) with the outputs of its skip inputs, resampled and projected where shapes differ; global pool and a
    linear classifier at the end."""

    def __init__(
        self,
        layers: Sequence[ChainLayerSpec],
        merge: str,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        if merge not in ("add", "concat"):
            raise BuildError(f"merge must be 'add' or 'concat', got {merge!r}")
        self.merge = merge
        self.inputs = [spec.inputs for spec in layers]
        self.layers = nn.ModuleList()
        self.resamplers = nn.ModuleList()
        out_channels: list[int] = []
        for i, spec in enumerate(layers):
            C_main = in_channels if i == 0 else out_channels[i - 1]
            resample = nn.ModuleList()
            if merge == "add":
                resample.extend(_Resample(out_channels[j], C_main) for j in spec.inputs)
                C_in = C_main
            else:
                resample.extend(_Resample(out_channels[j], out_channels[j]) for j in spec.inputs)
                C_in = C_main + sum(out_channels[j] for j in spec.inputs)
            self.resamplers.append(resample)
            if spec.op == "conv":
                C_out = max(4, round(spec.channels * width))
                self.layers.append(ConvBNReLU(C_in, C_out, spec.kernel, spec.stride))
            else:
                C_out = C_in
                self.layers.append(Pool("max" if spec.op == "max_pool" else "avg", C_in, C_in, spec.stride))
            out_channels.append(C_out)
        self.head = ClassifierHead(out_channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []
        for layer, resample, inputs in zip(self.layers, self.resamplers, self.inputs):
            if inputs:
                size = (int(x.shape[-2]), int(x.shape[-1]))  # constants when traced: exporters need a fixed size
                extra = [r(outputs[j], size) for r, j in zip(resample, inputs)]
                if self.merge == "add":
                    for e in extra:
                        x = x + e
                else:
                    x = torch.cat([x, *extra], dim=1)
            x = layer(x)
            outputs.append(x)
        return self.head(x)

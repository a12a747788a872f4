"""MobileNet-style networks: a conv stem, a sequence of blocks (inverted residuals or skips), a 1x1 head conv, global
pooling and a linear classifier, as in MobileNetV2, MnasNet, ProxylessNAS and NAS-Bench-Macro.

The blocks follow NAS-Bench-Macro's model code (``xiusu/NAS-Bench-Macro``, ``train/model.py``): an inverted residual
is 1x1 expand conv-BN-ReLU (left out at expansion 1), depthwise conv-BN-ReLU, optional squeeze-excitation, 1x1
project conv-BN, with the input added when shapes agree; a skip is the identity, or a strided 1x1 conv-BN where the
stride or the channels change (the benchmark's own downsampling path). The network is built from plain
:class:`MobileBlockSpec` values, so a standalone ``model.py`` writes the architecture out as data.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from archsearch.errors import BuildError
from archsearch.nn.conv import DepthwiseConv2d, PointwiseConv2d
from archsearch.nn.fused import run_layers, run_squeeze


@dataclass(frozen=True)
class MobileBlockSpec:
    """One layer of a mobile network: ``kind`` is ``"mb"`` (an inverted residual with ``expansion``, ``kernel``,
    ``se``) or ``"skip"`` (identity, or a strided 1x1 conv where the shape changes)."""

    kind: str
    in_channels: int
    out_channels: int
    stride: int
    expansion: int = 1
    kernel: int = 3
    se: bool = False


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global pool, 1x1 reduce-ReLU, 1x1 expand, sigmoid gate on the channels."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = PointwiseConv2d(channels, reduced, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.expand = PointwiseConv2d(reduced, channels, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = run_squeeze(self, x)
        return fast if fast is not None else x * torch.sigmoid(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand (1x1), depthwise (``kernel``), optional SE, project (1x1); residual when the
    input and output shapes agree."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int, kernel: int, se: bool = False) -> None:
        super().__init__()
        if stride not in (1, 2) or kernel % 2 == 0 or expansion < 1:
            raise BuildError(f"an inverted residual needs stride 1/2, an odd kernel, expansion >= 1; got "
                             f"{stride}, {kernel}, {expansion}")  # fmt: skip
        hidden = inp * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [PointwiseConv2d(inp, hidden), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)]
        layers += [
            DepthwiseConv2d(hidden, kernel, stride, padding=kernel // 2),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        ]
        if se:
            layers.append(SqueezeExcite(hidden, max(8, inp // 4)))
        layers += [PointwiseConv2d(hidden, oup), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.use_shortcut = inp == oup and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = run_layers(self.conv, x)
        return out + x if self.use_shortcut else out


class SkipBlock(nn.Module):
    """The identity choice: the input itself, or a strided 1x1 conv-BN where the stride or channels change."""

    def __init__(self, inp: int, oup: int, stride: int) -> None:
        super().__init__()
        self.downsample = (
            nn.Sequential(PointwiseConv2d(inp, oup, stride), nn.BatchNorm2d(oup))
            if stride != 1 or inp != oup
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else run_layers(self.downsample, x)


def make_block(spec: MobileBlockSpec) -> nn.Module:
    """The module of one block spec."""
    if spec.kind == "skip":
        return SkipBlock(spec.in_channels, spec.out_channels, spec.stride)
    if spec.kind == "mb":
        return InvertedResidual(spec.in_channels, spec.out_channels, spec.stride, spec.expansion, spec.kernel, spec.se)
    raise BuildError(f"unknown block kind {spec.kind!r} (allowed: mb, skip)")


class MobileStem(nn.Module):
    """3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.conv, x)


class MobileHead(nn.Module):
    """1x1 conv-BN-ReLU to ``channels``, global average pool, linear classifier."""

    def __init__(self, in_channels: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.out = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(run_layers(self.out, x), 1))


class MobileNetwork(nn.Module):
    """Stem, blocks in sequence, head: the network of the ``macro`` and ``mobile`` spaces."""

    def __init__(
        self,
        blocks: Sequence[MobileBlockSpec],
        stem_channels: int = 32,
        stem_stride: int = 1,
        head_channels: int = 1280,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not blocks or blocks[0].in_channels != stem_channels:
            raise BuildError("the first block must take the stem's channels")
        for a, b in itertools.pairwise(blocks):
            if a.out_channels != b.in_channels:
                raise BuildError(f"block {b} does not take the {a.out_channels} channels its predecessor gives")
        self.stem = MobileStem(in_channels, stem_channels, stem_stride)
        self.features = nn.Sequential(*(make_block(s) for s in blocks))
        self.head = MobileHead(blocks[-1].out_channels, head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.stem(x)))

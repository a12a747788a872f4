"""Primitive operations and the one registry of op names shared by cells, final networks and supernets.

Every registered op is a factory ``(C_in, C_out, stride, affine=True) -> nn.Module``. The shapes follow DARTS
(`quark0/darts`, ``operations.py``) and NAS-Bench-201 (``cell_operations.py``): same layers, same parameter counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import BuildError
from archsearch.nn.conv import DepthwiseConv2d, PointwiseConv2d, conv2d
from archsearch.nn.fused import run_layers
from archsearch.registry import Registry


class OpFactory(Protocol):
    def __call__(self, C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module: ...


OPS: Registry[OpFactory] = Registry("op")


class ReLUConvBN(nn.Module):
    """ReLU -> Conv -> BatchNorm (the NAS-Bench-201 ``nor_conv`` and DARTS preprocessing block)."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int = 1, affine: bool = True
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv2d(C_in, C_out, kernel, stride, padding, dilation),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.op, x)


class ConvBNReLU(nn.Module):
    """Conv -> BatchNorm -> ReLU, the plain layer of the macro (chain) space and the baseline CNN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.op = nn.Sequential(
            conv2d(C_in, C_out, kernel, stride, kernel // 2),
            nn.BatchNorm2d(C_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.op, x)


class DilConv(nn.Module):
    """ReLU -> dilated depthwise conv -> pointwise conv -> BatchNorm."""

    def __init__(
        self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool = True
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            DepthwiseConv2d(C_in, kernel, stride, padding, dilation),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.op, x)


class SepConv(nn.Module):
    """Two stacked (ReLU, depthwise conv, pointwise conv, BatchNorm) blocks, the first one strided."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    """Returns its input (the skip connection at stride 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape, kept in the graph so a supernet's mixed op stays differentiable."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.C_in == self.C_out:
            return x.mul(0.0)
        shape = (x.shape[0], self.C_out, x.shape[2], x.shape[3])
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """Halves the resolution with two offset stride-2 1x1 convs whose outputs are concatenated.

    The offset path is padded on the bottom/right, which gives DARTS's exact result on even sizes and also works on
    odd ones (DARTS's own version fails there).
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        if C_out % 2:
            raise BuildError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = PointwiseConv2d(C_in, C_out // 2, stride=2)
        self.conv_2 = PointwiseConv2d(C_in, C_out // 2, stride=2)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Pool(nn.Module):
    """3x3 max or average pool; a 1x1 ReLU-Conv-BN first when the channel count changes (NAS-Bench-201's rule)."""

    def __init__(self, kind: str, C_in: int, C_out: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        self.preprocess = None if C_in == C_out else ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine)
        if kind == "avg":
            self.pool: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        elif kind == "max":
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)
        else:
            raise BuildError(f"pool kind must be 'avg' or 'max', got {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


def _skip(C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    if stride == 1 and C_in == C_out:
        return Identity()
    if stride == 1:
        return ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine)
    return FactorizedReduce(C_in, C_out, affine)


def _register(name: str, factory: Callable[..., nn.Module]) -> None:
    OPS.add(name, factory)


_register("none", lambda C_in, C_out, stride, affine=True: Zero(C_in, C_out, stride))
_register("skip_connect", _skip)
_register("nor_conv_1x1", lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 1, stride, 0, 1, affine))
_register("nor_conv_3x3", lambda C_in, C_out, stride, affine=True: ReLUConvBN(C_in, C_out, 3, stride, 1, 1, affine))
_register("avg_pool_3x3", lambda C_in, C_out, stride, affine=True: Pool("avg", C_in, C_out, stride, affine))
_register("max_pool_3x3", lambda C_in, C_out, stride, affine=True: Pool("max", C_in, C_out, stride, affine))
_register("sep_conv_3x3", lambda C_in, C_out, stride, affine=True: SepConv(C_in, C_out, 3, stride, 1, affine))
_register("sep_conv_5x5", lambda C_in, C_out, stride, affine=True: SepConv(C_in, C_out, 5, stride, 2, affine))
_register("dil_conv_3x3", lambda C_in, C_out, stride, affine=True: DilConv(C_in, C_out, 3, stride, 2, 2, affine))
_register("dil_conv_5x5", lambda C_in, C_out, stride, affine=True: DilConv(C_in, C_out, 5, stride, 4, 2, affine))


def make_op(name: str, C_in: int, C_out: int, stride: int, affine: bool = True) -> nn.Module:
    """Build the registered op ``name``; an unknown name raises with the list of op names."""
    return OPS.get(name)(C_in, C_out, stride, affine)

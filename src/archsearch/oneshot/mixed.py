"""Mixed operations of a supernet, computed per *source*: every edge leaving one node sees the same input, so the
part of each candidate op that has no weights of its own is computed once for all those edges.

The math is DARTS's mixed op exactly: the output of edge ``e`` is ``sum_k w[e, k] * op_k,e(x)``. What changes is
only how it is computed:

- an op's leading parameter-free layers (the ReLU that opens every conv op, pooling) run once per source and are
  shared by every op and edge that starts with them;
- a batch norm without affine weights that follows only shared layers sees the same input on every edge, so it runs
  once in training mode and every edge's module gets the same running statistics, as separate runs would give;
- batch norms without affine weights, 3x3 average pooling and the backward pass of depthwise convolutions run on
  compiled CPU kernels where the batch allows it (:mod:`archsearch.nn.native`);
- ``none`` contributes zeros, so it is skipped (its weight still takes part in the softmax);
- the weighted sum is one pass: the batch norm that ends an op is folded into it on those kernels (its statistics
  taken, its output never written), else fused multiply-adds (``addcmul``).

Layers that hold weights (convolutions, affine batch norms) run edge by edge through their own modules.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.nn import native
from archsearch.nn.ops import DilConv, Identity, Pool, ReLUConvBN, SepConv, Zero

_CONTAINERS = (nn.Sequential, ReLUConvBN, DilConv, SepConv)
_LEAVES = (nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d, Identity)


_CHAINS: weakref.WeakKeyDictionary[nn.Module, list[nn.Module] | None] = weakref.WeakKeyDictionary()


def chain(module: nn.Module) -> list[nn.Module] | None:
    """:func:`flatten`, worked out once per module (every forward asks again)."""
    if module not in _CHAINS:
        _CHAINS[module] = flatten(module)
    return _CHAINS[module]


def flatten(module: nn.Module) -> list[nn.Module] | None:
    """The chain of leaf layers an op applies in order, or ``None`` when it is not a plain chain."""
    if isinstance(module, Pool):
        return None if module.preprocess is not None else [module.pool]
    if isinstance(module, _CONTAINERS):
        layers: list[nn.Module] = []
        for child in module.children():
            sub = flatten(child)
            if sub is None:
                return None
            layers.extend(sub)
        return layers
    if isinstance(module, _LEAVES):
        return [module]
    return None


class SharedPrefix:
    """Per source: the outputs of parameter-free layer prefixes, keyed by the layers they applied."""

    def __init__(self, x: torch.Tensor) -> None:
        self.cache: dict[tuple[Any, ...], torch.Tensor] = {(): x}

    def run(self, ops: Sequence[nn.Module]) -> tuple[torch.Tensor, list[list[nn.Module]]]:
        """Apply the longest shared parameter-free prefix of ``ops`` (one op per edge, same structure); return its
        output and, per edge, the layers still to run."""
        chains = [chain(op) for op in ops]
        if any(c is None for c in chains):
            raise ValueError("ops are not plain chains of layers")
        key: tuple[Any, ...] = ()
        x = self.cache[key]
        depth = 0
        for layers in zip(*chains):  # type: ignore[call-overload]
            first = layers[0]
            if isinstance(first, (nn.ReLU, Identity)):
                step: tuple[Any, ...] = (type(first).__name__,)
            elif isinstance(first, (nn.AvgPool2d, nn.MaxPool2d)):
                step = (repr(first),)
            elif isinstance(first, nn.BatchNorm2d) and not first.affine and first.training:
                step = ("bn", tuple(id(n) for n in layers))
            else:
                break
            key = (*key, step)
            if key not in self.cache:
                if step[0] == "bn":
                    self.cache[key] = native.batch_norm(x, layers)
                elif isinstance(first, nn.ReLU):
                    self.cache[key] = F.relu(x)
                elif isinstance(first, nn.AvgPool2d):
                    self.cache[key] = native.avg_pool(x, first)
                else:
                    self.cache[key] = first(x)
            x = self.cache[key]
            depth += 1
        return x, [list(c[depth:]) for c in chains]  # type: ignore[index]


def batchable(op: nn.Module) -> bool:
    """Whether ``op`` can run through :class:`SharedPrefix` (a plain chain of layers)."""
    return chain(op) is not None


def is_zero(op: nn.Module) -> bool:
    """The ``none`` op, whose output is zeros and can be skipped."""
    return isinstance(op, Zero)

"""Mixed operations of a supernet, computed per *source*: every edge leaving one node sees the same input, so the
part of each candidate op that has no weights of its own is computed once for all those edges.

The math is DARTS's mixed op exactly: the output of edge ``e`` is ``sum_k w[e, k] * op_k,e(x)``. What changes is
only how it is computed:

- an op's leading parameter-free layers (the ReLU that opens every conv op, pooling) run once per source and are
  shared by every op and edge that starts with them;
- a batch norm without affine weights that follows only shared layers sees the same input on every edge, so it runs
  once in training mode and every edge's module gets the same running statistics, as separate runs would give;
- ``none`` contributes zeros, so it is skipped (its weight still takes part in the softmax);
- the weighted sum is fused (``addcmul``), and without partial channels or edge weights (DARTS, NB201) every edge adds
  straight into the sum of its target node (:class:`WeightedSum`);
- on CPU channels-last batches, a batch norm without affine weights that ends an op (the last BN of a separable or
  ReLU-conv-BN op) is folded into the weighted sum (:class:`_NormalizedSum`): ``w * BN(x)`` is never materialised;
  the sum takes ``(w / std) * x`` in the same pass as the addition and the per-channel shift ``-w * mean / std`` is
  added once per node. PyTorch's batch-norm kernels take ~4 passes over memory forward and backward where this takes
  ~2, and the op's normalised output is not kept for the backward pass (less memory).

Layers that hold weights (convolutions, affine batch norms) run edge by edge through their own modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from archsearch.nn.ops import DilConv, Identity, Pool, ReLUConvBN, SepConv, Zero

_CONTAINERS = (nn.Sequential, ReLUConvBN, DilConv, SepConv)
_LEAVES = (nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d, Identity)


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


def _shared_batch_norm(x: torch.Tensor, norms: Sequence[nn.BatchNorm2d]) -> torch.Tensor:
    """Batch norms without affine weights that all see ``x``, in training mode: normalise once, and update every
    module's running statistics as its own run would have."""
    first = norms[0]
    out = F.batch_norm(x, None, None, None, None, True, 0.0, first.eps)
    if first.track_running_stats:
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=True)
            _update_running_stats(norms, mean, var)
    return out


class _NormalizedSum(torch.autograd.Function):
    """``acc + w * batch_norm(x)`` (training mode, no affine weights, per-channel batch statistics), returned as
    ``acc + (w * invstd) * x`` and the per-channel ``shift = -w * invstd * mean`` the caller adds later. Statistics
    come from the sums of ``x`` and ``x**2`` (combined in float64); ``norm``'s running statistics are updated as its
    own forward would update them."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, acc: torch.Tensor | None, x: torch.Tensor, w: torch.Tensor, held: list[nn.BatchNorm2d]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        norm = held[0]
        C = x.shape[1]
        count = x.numel() // C
        mean64 = x.sum((0, 2, 3)).double() / count
        var64 = ((x * x).sum((0, 2, 3)).double() / count - mean64 * mean64).clamp_min(0.0)
        mean, invstd = mean64.to(x.dtype), torch.rsqrt(var64 + norm.eps).to(x.dtype)
        scale = w * invstd
        shift = -scale * mean
        out = x * scale.view(1, C, 1, 1) if acc is None else torch.addcmul(acc, x, scale.view(1, C, 1, 1))
        if norm.track_running_stats and norm.running_mean is not None:
            _update_running_stats([norm], mean64, var64 * count / max(1, count - 1))
        ctx.save_for_backward(x, w, mean, invstd)
        ctx.has_acc = acc is not None
        return out, shift

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor, grad_shift: torch.Tensor) -> tuple[Any, ...]:
        x, w, mean, invstd = ctx.saved_tensors
        C = x.shape[1]
        grad = grad.contiguous(memory_format=torch.channels_last)
        count = x.numel() // C
        scale = w * invstd
        d_scale = (grad * x).sum((0, 2, 3)) - grad_shift * mean  # out = acc + scale * x; shift = -scale * mean
        d_w = (d_scale * invstd).sum().reshape(w.shape)
        grad_x = None
        if ctx.needs_input_grad[1]:
            d_invstd, d_mean = d_scale * w, -grad_shift * scale
            a = -d_invstd * invstd.pow(3) / count  # d var / d x = 2 (x - mean) / count; d invstd / d var = -invstd^3/2
            b = d_mean / count - a * mean
            grad_x = torch.addcmul(b.view(1, C, 1, 1), x, a.view(1, C, 1, 1))
            grad_x.addcmul_(grad, scale.view(1, C, 1, 1))
        return (grad if ctx.has_acc else None), grad_x, d_w, None


def _update_running_stats(norms: Sequence[nn.BatchNorm2d], mean: torch.Tensor, var: torch.Tensor) -> None:
    """What each module's own training-mode forward does to its running statistics (``var`` unbiased)."""
    with torch.no_grad():
        for norm in norms:
            norm.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
            momentum = norm.momentum
            if momentum is None:  # cumulative average
                momentum = 1.0 / float(norm.num_batches_tracked)  # type: ignore[arg-type]
            norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), momentum)  # type: ignore[union-attr,arg-type]
            norm.running_var.lerp_(var.to(norm.running_var.dtype), momentum)  # type: ignore[union-attr,arg-type]


#: fold batch norms into weighted sums where :func:`foldable` allows (``False``: run them as modules, e.g. to measure
#: what folding saves, as ``benchmarks/oneshot_step.py`` does)
FOLD_BATCH_NORMS = True


def foldable(layer: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``layer`` is a batch norm :class:`_NormalizedSum` can fold into a weighted sum, for input ``x``."""
    return (
        FOLD_BATCH_NORMS
        and isinstance(layer, nn.BatchNorm2d)
        and not layer.affine
        and layer.training
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
    )


class WeightedSum:
    """A sum of weighted op outputs (one edge's mixed op, or every edge entering a node)."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.shift: torch.Tensor | None = None

    def add(self, w: torch.Tensor, y: torch.Tensor) -> None:
        """Add ``w * y``."""
        self.total = w * y if self.total is None else torch.addcmul(self.total, w, y)

    def add_normalized(self, w: torch.Tensor, x: torch.Tensor, norm: nn.BatchNorm2d) -> None:
        """Add ``w * norm(x)`` (``norm`` :func:`foldable`)."""
        self.total, shift = _NormalizedSum.apply(self.total, x, w, [norm])
        self.shift = shift if self.shift is None else self.shift + shift

    def add_tensor(self, y: torch.Tensor) -> None:
        """Add ``y``."""
        self.total = y if self.total is None else self.total + y

    def result(self) -> torch.Tensor:
        """The sum."""
        if self.total is None:
            raise ValueError("a mixed edge needs at least one op besides 'none'")
        return self.total if self.shift is None else self.total + self.shift.view(1, -1, 1, 1)


class SharedPrefix:
    """Per source: the outputs of parameter-free layer prefixes, keyed by the layers they applied."""

    def __init__(self, x: torch.Tensor) -> None:
        self.cache: dict[tuple[Any, ...], torch.Tensor] = {(): x}

    def run(self, ops: Sequence[nn.Module]) -> tuple[torch.Tensor, list[list[nn.Module]]]:
        """Apply the longest shared parameter-free prefix of ``ops`` (one op per edge, same structure); return its
        output and, per edge, the layers still to run."""
        chains = [flatten(op) for op in ops]
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
                    self.cache[key] = _shared_batch_norm(x, layers)
                elif isinstance(first, nn.ReLU):
                    self.cache[key] = F.relu(x)
                else:
                    self.cache[key] = first(x)
            x = self.cache[key]
            depth += 1
        return x, [list(c[depth:]) for c in chains]  # type: ignore[index]


def batchable(op: nn.Module) -> bool:
    """Whether ``op`` can run through :class:`SharedPrefix` (a plain chain of layers)."""
    return flatten(op) is not None


def is_zero(op: nn.Module) -> bool:
    """The ``none`` op, whose output is zeros and can be skipped."""
    return isinstance(op, Zero)

"""Batch norm with its weight and bias, and the ReLU after it, on the compiled kernels: what a MobileNet-style
network's layers spend most of a CPU training step on (``archsearch.nn.fused.run_layers`` also runs the conv-BN(-ReLU)
blocks of the baseline CNN, chain networks and final DARTS and NB201 cells on it: ``benchmarks/norm_kernel.py``).

A ``mobile`` network at width 0.25 on 28x28 images has 8-288 channels; on such channels-last batches PyTorch's
batch norm forward and backward and the ReLU's backward took about 40% of a training step (profiled inside the
step, batch 128, 2 threads). The kernel makes one pass for the statistics and one for the output forward, one for
the sums and one for the input gradient backward, with the ReLU's mask recomputed from the input by the forward's
own expression (exactly where the output was positive; reading the output instead cost two more passes). Alone on a
128x48x28x28 batch, forward and backward took 5.6 ms where PyTorch's batch norm and ReLU took 16.4 ms; inside a step,
where no activation stays in cache, the gain is smaller (``benchmarks/mobile_training.py``: 1.06-1.22x on the
step). It takes any channel count: the batch is read as rows of ``lcm(C, 16)`` floats (``kernels.cpp``).
``tests/test_affine_norm.py`` checks outputs, gradients and running statistics against PyTorch's layers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from archsearch.nn.native import (
    _exporting,
    graph_backward,
    hooked,
    kernels,
    loaded,
    norm_as_pytorch,
    update_running_stats,
)


class _AffineBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, relu: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, mean, invstd, var, scale, shift = loaded().affine_norm_forward(x, weight, bias, eps, relu)  # type: ignore[union-attr]
        # the backward recomputes the ReLU's mask from x, scale and shift rather than reading the output
        ctx.save_for_backward(x, weight, bias, mean, invstd, scale, shift)
        ctx.eps, ctx.relu = eps, relu
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, mean, invstd, scale, shift = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward (see graph_backward)
            norm = lambda x, w, b: norm_as_pytorch(x, w, b, ctx.eps, ctx.relu)  # noqa: E731
            return (*graph_backward(norm, (x, weight, bias), ctx.needs_input_grad[:3], grad), None, None)
        relu = [scale, shift] if ctx.relu else None
        dx, dweight, dbias = loaded().affine_norm_backward(grad, x, mean, invstd, weight, relu)  # type: ignore[union-attr]
        return dx, dweight, dbias, None, None


def takes(x: torch.Tensor, norm: nn.BatchNorm2d) -> bool:
    """Whether :func:`norm_relu` runs ``norm`` on the kernel for this batch: a training-mode ``nn.BatchNorm2d`` with
    weight and bias on a float32 channels-last CPU batch whose size is a multiple of ``lcm(C, 16) / C`` pixels,
    gradients recorded, nothing tracing, compiling, exporting or casting it, and the kernels built."""
    channels = x.shape[1] if x.dim() == 4 else 0
    return (
        type(norm) is nn.BatchNorm2d
        and norm.training
        and norm.affine
        and channels == norm.num_features
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and norm.weight.dtype == torch.float32
        and x.is_contiguous(memory_format=torch.channels_last)
        and x.numel() % math.lcm(channels, 16) == 0
        and torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not _exporting()
        and kernels() is not None
    )


def norm_relu(x: torch.Tensor, norm: nn.BatchNorm2d, relu: nn.Module | None) -> torch.Tensor | None:
    """``relu(norm(x))`` (``norm(x)`` when ``relu`` is None) on the compiled kernel, the module's running statistics
    updated as its own forward would; ``None`` where the kernel does not take the batch (:func:`takes`) or a hook
    watches the modules, and the caller runs them itself."""
    if not takes(x, norm) or hooked(norm, *([relu] if relu is not None else [])):
        return None
    out, mean, var = _AffineBatchNorm.apply(x, norm.weight, norm.bias, norm.eps, relu is not None)
    update_running_stats([norm], mean, var, x.numel() // x.shape[1])
    return out

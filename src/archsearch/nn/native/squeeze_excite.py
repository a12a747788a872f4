"""Squeeze-and-excitation as one autograd node while training: ``x * sigmoid(expand(relu(reduce(pool(x)))))``.

Autograd runs this block as separate nodes, each pass over the whole feature map its own: the gate's product, the
product's two gradients (``g * gate`` and ``g * x``), the average pool's backward (a full map divided by H*W) and
the sum of the two input gradients. As one node the backward makes two passes: the gate's gradient
``sum_hw(g * x)``, then ``dx = g * gate + d(pooled) / (H*W)`` in one fused multiply-add. The small channel MLP
between them keeps its own graph. PyTorch's ops only (no compiled code); installed with the kernels by
``archsearch.nn.native.install`` and used where :func:`squeeze_excite` says. ``tests/test_squeeze_excite.py``
checks outputs and gradients against the plain block; ``benchmarks/mobile_training.py`` measures it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch.nn.native import _exporting, graph_backward, hooked, switched_off

#: smaller batches (B*C*H*W) run the plain block: they stay in cache, and the node's fixed cost is larger than what it
#: saves (measured, SE forward and backward, 2 threads: 0.63x at 1,024 values, 0.99x at 12,288, 1.2-1.75x from
#: 150,000 to 4.8 million)
MIN_ELEMENTS = 1 << 15


def _plain(se: Any, x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(se.expand(se.act(se.reduce(se.pool(x)))))


class _SqueezeExcite(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, se: Any, *params: torch.Tensor) -> torch.Tensor:
        pooled = se.pool(x)
        with torch.enable_grad():  # the channel MLP's own small graph, differentiated in backward
            p = pooled.detach().requires_grad_()
            gate = torch.sigmoid(se.expand(se.act(se.reduce(p))))
        ctx.save_for_backward(x, *params)
        ctx.se, ctx.p, ctx.gate = se, p, gate
        return x * gate.detach()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, *params = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward (see archsearch.nn.native.graph_backward)
            needs = (ctx.needs_input_grad[0], *ctx.needs_input_grad[2:])
            got = graph_backward(lambda x, *_: _plain(ctx.se, x), (x, *params), needs, grad)
            return (got[0], None, *got[1:])
        wanted = [w for w, need in zip(params, ctx.needs_input_grad[2:]) if need]
        dgate = (grad * x).sum((2, 3), keepdim=True)
        found = iter(torch.autograd.grad(ctx.gate, [ctx.p, *wanted], dgate))
        dpooled = next(found)
        dx = None
        if ctx.needs_input_grad[0]:
            scale = dpooled / (x.shape[2] * x.shape[3])
            dx = torch.addcmul(scale, grad, ctx.gate.detach(), out=torch.empty_like(x))
        return (dx, None, *(next(found) if need else None for need in ctx.needs_input_grad[2:]))


def squeeze_excite(se: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """``se(x)`` as one autograd node for a training-mode :class:`archsearch.nn.mobile.SqueezeExcite` on a 4-D CPU
    batch of at least :data:`MIN_ELEMENTS` values with gradients recorded; ``None`` (the caller runs the block as
    such) for a smaller batch, in eval mode, without gradients, under autocast, tracing, ``torch.compile`` or
    export, where a hook watches one of its layers, or with the kernels switched off
    (:func:`archsearch.nn.native.switched_off`)."""
    if (
        not se.training
        or switched_off()
        or x.dim() != 4
        or x.device.type != "cpu"  # measured on CPUs only; a GPU runs the plain block
        or x.numel() < MIN_ELEMENTS
        or not torch.is_grad_enabled()
        or torch.is_autocast_enabled("cpu")
        or torch.jit.is_tracing()
        or torch.compiler.is_compiling()
        or _exporting()
        or hooked(*se.children())
    ):
        return None
    return _SqueezeExcite.apply(x, se, *se.parameters())

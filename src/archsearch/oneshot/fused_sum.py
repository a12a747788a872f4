"""A mixed edge's weighted sum with its ops' last batch norms folded in, on the compiled CPU kernels
(:mod:`archsearch.nn.native`): ``sum_i w_i * bn_i(z_i) + sum_j w_j * y_j`` in one pass over memory, its backward
pass giving each weight's gradient from the sums it makes anyway. Supernet-only: used by
:class:`archsearch.oneshot.search_cell.SearchCell`'s mixed edges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from archsearch.nn import native


def can_fold(z: torch.Tensor, norm: nn.Module) -> bool:
    """Whether the batch norm ``norm`` applied to ``z`` can be folded into :func:`mixed_sum` (training mode, no
    affine weights, a batch the compiled kernels take)."""
    return (
        isinstance(norm, nn.BatchNorm2d)
        and norm.training
        and not norm.affine
        and native.eligible(z, z.shape[1])
        and native.kernels() is not None
    )


class _MixedSum(torch.autograd.Function):
    """``sum_i c_i * bn_i(z_i) + sum_j c_{n+j} * y_j`` in one pass; the backward pass of each folded batch norm
    is scaled by its weight and yields the weight's gradient from the sums it makes anyway."""

    @staticmethod
    def forward(ctx: Any, coeffs: torch.Tensor, n_folded: int, eps: float, *tensors: torch.Tensor) -> Any:
        ext = native.loaded()
        zs, ys = list(tensors[:n_folded]), list(tensors[n_folded:])
        stats = [ext.batch_norm_stats(z, eps) for z in zs]  # type: ignore[union-attr]
        c = coeffs.detach().tolist()
        means, invstds, variances = [s[0] for s in stats], [s[1] for s in stats], [s[2] for s in stats]
        out = ext.mixed_sum(zs, means, invstds, c[:n_folded], ys, c[n_folded:])  # type: ignore[union-attr]
        keep_ys = ys if ctx.needs_input_grad[0] else []
        ctx.save_for_backward(*zs, *means, *invstds, coeffs, *keep_ys)
        ctx.n_folded, ctx.n_plain, ctx.coeffs, ctx.eps = n_folded, len(ys), c, eps
        ctx.mark_non_differentiable(*means, *variances)
        return (out, *means, *variances)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        n, c = ctx.n_folded, ctx.coeffs
        saved = ctx.saved_tensors
        zs, means, invstds = saved[:n], saved[n : 2 * n], saved[2 * n : 3 * n]
        coeffs, ys = saved[3 * n], saved[3 * n + 1 :]
        if torch.is_grad_enabled():  # a double backward (see archsearch.nn.native.graph_backward)
            return _graph_backward(ctx, grad, coeffs, zs, ys)
        grad = grad.contiguous(memory_format=torch.channels_last)
        flat_grad = grad.permute(0, 2, 3, 1).reshape(-1)
        dots: list[float] = []
        grads: list[torch.Tensor | None] = []
        for i in range(n):
            dz, dot = native.loaded().batch_norm_backward(grad, zs[i], means[i], invstds[i], None, c[i])  # type: ignore
            grads.append(dz if ctx.needs_input_grad[3 + i] else None)
            dots.append(dot)
        for j in range(ctx.n_plain):
            grads.append(grad * c[n + j] if ctx.needs_input_grad[3 + n + j] else None)
            if ctx.needs_input_grad[0]:
                dots.append(float(torch.dot(flat_grad, ys[j].permute(0, 2, 3, 1).reshape(-1))))
        grad_coeffs = torch.tensor(dots, dtype=grad.dtype) if ctx.needs_input_grad[0] else None
        return (grad_coeffs, None, None, *grads)


def _graph_backward(ctx: Any, grad: torch.Tensor, coeffs: torch.Tensor, zs: Sequence[torch.Tensor],
                    ys: Sequence[torch.Tensor]) -> tuple[torch.Tensor | None, ...]:  # fmt: skip
    """:class:`_MixedSum`'s gradients by PyTorch's differentiable ops. The plain terms are linear: without the
    coefficients' gradient (their tensors not saved), zeros stand in for them."""
    n = ctx.n_folded
    plain = list(ys) or [torch.zeros_like(grad).requires_grad_() for _ in range(ctx.n_plain)]

    def total(coeffs: torch.Tensor, *tensors: torch.Tensor) -> torch.Tensor:
        out = sum(coeffs[i] * native.norm_as_pytorch(tensors[i], None, None, ctx.eps, False) for i in range(n))
        return out + sum(coeffs[n + j] * tensors[n + j] for j in range(ctx.n_plain))  # type: ignore[return-value]

    needs = (ctx.needs_input_grad[0], *ctx.needs_input_grad[3:])
    got = native.graph_backward(total, (coeffs, *zs, *plain), needs, grad)
    return (got[0], None, None, *got[1:])


def mixed_sum(
    folded: Sequence[tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]],
    plain: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> torch.Tensor:
    """A mixed edge's output ``sum w * norm(z) + sum w * y`` from ``folded`` ``(w, z, norm)`` (each passed
    :func:`can_fold`; running statistics updated) and ``plain`` ``(w, y)`` terms, ``w`` 0-dim weights; every
    tensor channels-last of one shape."""
    if not folded:
        raise ValueError("mixed_sum needs at least one folded batch norm")
    eps = folded[0][2].eps
    if any(norm.eps != eps for _, _, norm in folded):
        raise ValueError("folded batch norms must share one eps")
    coeffs = torch.stack([w for w, _, _ in folded] + [w for w, _ in plain])
    ys = [y.contiguous(memory_format=torch.channels_last) for _, y in plain]
    outputs = _MixedSum.apply(coeffs, len(folded), eps, *[z for _, z, _ in folded], *ys)
    out, stats = outputs[0], outputs[1:]
    n = len(folded)
    for i, (_, z, norm) in enumerate(folded):
        native.update_running_stats([norm], stats[i], stats[n + i], z.numel() // z.shape[1])
    return out

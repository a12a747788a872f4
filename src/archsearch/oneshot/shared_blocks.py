"""A ``mobile`` supernet slot whose candidate blocks share one set of weights (weight entanglement).

Every choice of a slot is an inverted residual with the same input, output and stride; they differ in kernel size,
expansion and squeeze-excitation. The slot holds the largest of them (the widest expansion, the largest kernel, the
excitation) and a choice runs a slice of it: its expansion takes the first ``inp * expansion`` hidden channels, its
kernel the centre ``k x k`` taps of the depthwise kernel, and squeeze-excitation the same channels of the shared
excitation, as Single-Path NAS's superkernel, Once-for-All and BigNAS share them. As BigNAS does, the last batch norm
of a block with a shortcut starts at zero, so every block starts as the identity and a sampled path is the same
function whichever blocks it draws.

Why: with a separate block per choice, a path drawn at random shares only the stem and head with the one before.
On Fashion-MNIST (``mobile`` at width 0.25, 750 training images, batch 64, SGD at 0.025) such a supernet stayed at
chance: 9-11% training accuracy over 60 steps of uniformly drawn paths, 10-14% over 180 steps of GDAS's, where the
same 60 steps on one fixed path reached 71%. With shared weights and the zero-initialised norm, uniformly drawn
paths reached 62% in those 60 steps. Memory is still one path's: a choice's activations are its own channels.

Batch norms are shared the same way (a choice normalises its channels with the first entries of the statistics), so
the inherited statistics of a sub-network are recalibrated before it is scored, as for every supernet.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import BuildError
from archsearch.spaces.mobile import MobileLayer


class SlicedBatchNorm2d(nn.BatchNorm2d):
    """A batch norm over the first ``C`` of its channels for an input of ``C`` channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if self.training and self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        else:
            factor = 0.0
        use_batch = self.training or self.running_mean is None
        mean = None if self.running_mean is None else self.running_mean[:c]
        var = None if self.running_var is None else self.running_var[:c]
        return F.batch_norm(x, mean, var, self.weight[:c], self.bias[:c], use_batch, factor, self.eps)


class SharedInvertedResidual(nn.Module):
    """The inverted residuals of one slot (``layers``: kernel, expansion, excitation) as slices of the largest."""

    def __init__(self, inp: int, oup: int, stride: int, layers: Sequence[MobileLayer]) -> None:
        super().__init__()
        if not layers or min(la.expansion for la in layers) < 2 or any(la.kernel % 2 == 0 for la in layers):
            raise BuildError("a shared slot needs inverted residuals with an expansion of at least 2 and odd kernels")
        self.inp, self.oup, self.stride = inp, oup, stride
        hidden, kernel = inp * max(la.expansion for la in layers), max(la.kernel for la in layers)
        reduced = max(8, inp // 4)  # the excitation's width, as a separate block of this input has it
        self.expand = nn.Conv2d(inp, hidden, 1, bias=False)
        self.bn1 = SlicedBatchNorm2d(hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, kernel, groups=hidden, bias=False)
        self.bn2 = SlicedBatchNorm2d(hidden)
        self.se_reduce = nn.Conv2d(hidden, reduced, 1)
        self.se_expand = nn.Conv2d(reduced, hidden, 1)
        self.project = nn.Conv2d(hidden, oup, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(oup)
        self.use_shortcut = inp == oup and stride == 1
        if self.use_shortcut:
            nn.init.zeros_(self.bn3.weight)  # the block starts as the identity (BigNAS)

    def _kernel(self, k: int) -> torch.Tensor:
        start = (self.depthwise.kernel_size[0] - k) // 2
        return self.depthwise.weight[:, :, start : start + k, start : start + k]

    def forward(self, x: torch.Tensor, layer: MobileLayer) -> torch.Tensor:
        """The block of ``layer`` on ``x``, with its slice of the shared weights."""
        h, k = self.inp * layer.expansion, layer.kernel
        y = F.relu(self.bn1(F.conv2d(x, self.expand.weight[:h])))
        y = F.conv2d(y, self._kernel(k)[:h], stride=self.stride, padding=k // 2, groups=h)
        y = F.relu(self.bn2(y))
        if layer.se:
            s = F.relu(F.conv2d(y.mean((2, 3), keepdim=True), self.se_reduce.weight[:, :h], self.se_reduce.bias))
            y = y * torch.sigmoid(F.conv2d(s, self.se_expand.weight[:h], self.se_expand.bias[:h]))
        y = self.bn3(F.conv2d(y, self.project.weight[:, :h]))
        return y + x if self.use_shortcut else y

    def block_state(self, layer: MobileLayer) -> dict[str, torch.Tensor]:
        """The state dict of the separate :class:`~archsearch.nn.mobile.InvertedResidual` of ``layer`` that
        computes what :meth:`forward` does for it (its slices of the shared weights and statistics)."""
        h, k = self.inp * layer.expansion, layer.kernel

        def norm(prefix: str, bn: nn.BatchNorm2d, c: int) -> dict[str, torch.Tensor]:
            assert bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None
            return {f"{prefix}.weight": bn.weight[:c], f"{prefix}.bias": bn.bias[:c],
                    f"{prefix}.running_mean": bn.running_mean[:c], f"{prefix}.running_var": bn.running_var[:c],
                    f"{prefix}.num_batches_tracked": bn.num_batches_tracked}  # fmt: skip

        state = {"conv.0.weight": self.expand.weight[:h], **norm("conv.1", self.bn1, h),
                 "conv.3.weight": self._kernel(k)[:h], **norm("conv.4", self.bn2, h)}  # fmt: skip
        last = 6
        if layer.se:
            state |= {"conv.6.reduce.weight": self.se_reduce.weight[:, :h],
                      "conv.6.reduce.bias": self.se_reduce.bias,
                      "conv.6.expand.weight": self.se_expand.weight[:h],
                      "conv.6.expand.bias": self.se_expand.bias[:h]}  # fmt: skip
            last = 7
        state |= {f"conv.{last}.weight": self.project.weight[:, :h], **norm(f"conv.{last + 1}", self.bn3, self.oup)}
        return {name: value.detach().clone() for name, value in state.items()}


class SharedSlot(nn.Module):
    """One slot of the ``mobile`` supernet: choice ``k`` runs ``layers[k]`` on the shared block, and the choice
    after the last (where the slot allows it) the identity."""

    def __init__(self, inp: int, oup: int, stride: int, layers: Sequence[MobileLayer]) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.block = SharedInvertedResidual(inp, oup, stride, self.layers)

    def run(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Choice ``k`` on ``x``."""
        return x if k == len(self.layers) else self.block(x, self.layers[k])

    def block_state(self, k: int) -> dict[str, torch.Tensor]:
        """The separate block of choice ``k``'s state dict (see :meth:`SharedInvertedResidual.block_state`)."""
        return self.block.block_state(self.layers[k])

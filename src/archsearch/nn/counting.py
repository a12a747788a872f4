"""Counting what a network holds and computes: parameters and multiply-adds. Here, beside the networks, because
spaces count their networks too (:meth:`archsearch.Space.counts`); :mod:`archsearch.costs` re-exports both.

FLOPs come from PyTorch's own ``torch.utils.flop_counter`` and are reported as multiply-adds (MACs), the convention
of NAS papers (half of PyTorch's FLOP count).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, exclude: Sequence[str] = ("auxiliary",)) -> int:
    """Number of parameters, leaving out those whose name contains any of ``exclude`` (DARTS's convention:
    the auxiliary head is used only in training and is not counted)."""
    return sum(p.numel() for name, p in model.named_parameters() if not any(e in name for e in exclude))


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block, its training mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """Multiply-adds of one inference forward pass on one image of ``input_shape`` (C, H, W)."""
    x = torch.zeros(1, *input_shape, device=device)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops()) // 2

"""Layer sequences whose training-mode batch norms, and the ReLU after each, may run on a faster kernel (and
squeeze-excitation blocks as one autograd node).

A conv-BN-ReLU block spends a large share of a CPU training step in PyTorch's batch norm and the ReLU's backward
(memory-bound passes over the whole activation). :func:`run_layers` runs such a block's ``nn.Sequential`` with each
batch norm (and a ReLU right after it) on :data:`training_norm`, which ``archsearch.nn.native.install`` sets to the
compiled kernel; everything else, and every batch the kernel does not take, runs as the layers themselves. The
module tree and state-dict keys are those of the plain ``nn.Sequential``, and a standalone ``model.py`` copies this
file with no kernel installed, so it runs the layers as such. :data:`training_squeeze` does the same for a
squeeze-excitation block (``archsearch.nn.native.squeeze_excite``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: ``(x, norm, relu)`` -> ``relu(norm(x))`` (``norm(x)`` when ``relu`` is None) on a faster training kernel, or None
#: where that kernel does not take the batch; set by ``archsearch.nn.native.install`` (None: the layers run as such)
training_norm: Callable[[torch.Tensor, nn.BatchNorm2d, nn.Module | None], torch.Tensor | None] | None = None


def run_layers(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)``, with each training-mode batch norm, and the ReLU after it, on :data:`training_norm` where one
    is installed and takes the batch (the same sums in fewer passes over memory)."""
    norm_relu = training_norm
    if norm_relu is None or not layers.training or layers._forward_hooks or layers._forward_pre_hooks:
        return layers(x)
    modules = list(layers)
    i = 0
    while i < len(modules):
        layer = modules[i]
        if isinstance(layer, nn.BatchNorm2d):
            relu = modules[i + 1] if i + 1 < len(modules) and type(modules[i + 1]) is nn.ReLU else None
            out = norm_relu(x, layer, relu)
            if out is not None:
                x, i = out, i + (1 if relu is None else 2)
                continue
        x = layer(x)
        i += 1
    return x


#: ``(block, x)`` -> a squeeze-excitation block's output on a faster training path, or None where that path does not
#: take it; set by ``archsearch.nn.native.install`` (None: the block runs as such)
training_squeeze: Callable[[nn.Module, torch.Tensor], torch.Tensor | None] | None = None


def run_squeeze(block: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """``block(x)`` on :data:`training_squeeze` where one is installed and takes it, else None."""
    fast = training_squeeze
    return None if fast is None else fast(block, x)

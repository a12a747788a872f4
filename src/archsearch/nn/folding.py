"""Batch norms folded into the convolutions before them, for inference.

In eval mode a batch norm is a per-channel scale and shift, which the convolution before it can apply through its
weights and bias; folded, a layer reads and writes its activations once instead of twice. On a CPU, where these
small networks are bound by memory traffic, evaluation runs faster (``benchmarks/eval_batch.py`` measures it). Only
a convolution and a batch norm that follow each other in a plain ``nn.Sequential`` are folded: there the forward pass
is known to feed one into the other and nothing else.
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every batch norm that directly follows a convolution in a plain
    ``nn.Sequential`` folded into it (the norm replaced by ``nn.Identity``); the same outputs up to float rounding.
    ``model`` is untouched. A model that cannot be copied (``copy.deepcopy`` refuses it) is returned as it is."""
    try:
        folded = copy.deepcopy(model)
    except (TypeError, RuntimeError, copy.Error):  # e.g. a user's module holding a generator or a lock
        return model
    folded.eval()
    for module in folded.modules():
        if type(module) is not nn.Sequential:  # a subclass may feed its children otherwise
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = module._modules[first], module._modules[second]
            if _foldable(conv, norm):
                module._modules[first] = fuse_conv_bn_eval(conv, norm)  # type: ignore[arg-type]
                module._modules[second] = nn.Identity()
    return folded


def _foldable(conv: nn.Module | None, norm: nn.Module | None) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and type(norm) is nn.BatchNorm2d
        and norm.running_mean is not None
        and norm.running_var is not None
        and conv.out_channels == norm.num_features
        and not conv._forward_hooks
        and not norm._forward_hooks
        and not norm._forward_pre_hooks
    )


def is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` is a ``torch.compile`` wrapper (its graph is fixed: nothing to fold)."""
    return hasattr(model, "_orig_mod") or isinstance(model, torch.jit.ScriptModule)

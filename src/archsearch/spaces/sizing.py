"""Refusing a network that cannot fit in memory before it is built: a width of 1e6 or a 100000 x 100000 input would
otherwise fail (or swap the machine to a halt) only when the allocation is refused.

The network is first built on PyTorch's ``meta`` device, which records shapes and allocates nothing: its
parameters are counted exactly, and for large inputs a forward pass on ``meta`` tensors sums the activations one
image produces. A network whose training state (weights, gradients and two optimizer moments: 4x the weights) or
one image's activations exceed this machine's memory is refused with the estimate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archsearch.errors import GenotypeError

#: inputs with more values than this get the activation estimate (a forward pass on meta tensors, ~10-50 ms)
LARGE_INPUT = 3 * 256 * 256


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def might_not_fit(options: dict[str, Any], defaults: dict[str, Any], in_channels: int, input_size: int) -> bool:
    """Whether a network is worth the meta-device check: a large input, or a size option over 4x its default
    (the space's own defaults always fit; the check costs about one more build, 10-35 ms)."""
    if in_channels * input_size * input_size > LARGE_INPUT:
        return True
    for name, value in options.items():
        default = defaults.get(name)
        numbers = isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(default, (int, float))
        if numbers and value > 4 * max(float(default), 1.0):
            return True
    return False


def check_options(space: str, options: dict[str, Any]) -> None:
    """Build options are finite numbers (or booleans): NaN or infinity is refused naming the option."""
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise GenotypeError("build options", f"{name}={value} for space {space!r}: a finite number is needed")


def check_fits(build: Callable[[], nn.Module], in_channels: int, input_size: int, what: str) -> None:
    """Refuse (a :class:`GenotypeError` saying the estimate) the network ``build()`` makes when it cannot fit in
    memory; a network that fails to build on ``meta`` is left for the real build to report."""
    memory = machine_memory()
    if memory is None:
        return
    gib = 2**30
    image = in_channels * input_size * input_size * 4
    if image > memory // 4:
        raise GenotypeError("size", f"{what}: one {in_channels}x{input_size}x{input_size} input alone takes "
                            f"{image / gib:,.1f} GiB; this machine has {memory / gib:,.1f} GiB")  # fmt: skip
    try:
        with torch.device("meta"), torch.random.fork_rng(devices=[]):
            net = build()
    except (GenotypeError, MemoryError):
        raise
    except Exception:
        return
    weights = sum(p.numel() for p in net.parameters()) * 4
    if 4 * weights > memory:
        raise GenotypeError("size", f"{what}: {weights / 4:,.0f} parameters take {weights / gib:,.1f} GiB, "
                            f"{4 * weights / gib:,.1f} GiB to train; this machine has {memory / gib:,.1f} "
                            "GiB")  # fmt: skip
    if in_channels * input_size * input_size <= LARGE_INPUT:
        return
    total = [0]

    def count(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * 4

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net.eval()(torch.empty(1, in_channels, input_size, input_size, device="meta"))
    except Exception:
        return
    finally:
        for h in hooks:
            h.remove()
    if total[0] > memory // 2:
        raise GenotypeError("size", f"{what}: one {in_channels}x{input_size}x{input_size} image's activations take "
                            f"about {total[0] / gib:,.1f} GiB; this machine has {memory / gib:,.1f} GiB")  # fmt: skip

"""The float type a training run computes in: float32, or autocast to bfloat16 / float16 (``--precision``).

``auto`` takes what the hardware runs faster. On CUDA: bfloat16 autocast where the GPU supports it, else float16
with a gradient scaler. On the CPU: bfloat16 autocast only where this CPU has bfloat16 instructions (AVX-512 BF16
or AMX) and the network is one that gains from it, float32 otherwise. ``benchmarks/cpu_precision.py`` measured a
training step under bfloat16 autocast against float32 (channels-last, 2 threads, an AMD EPYC with AVX-512 BF16):

- networks of dense convolutions: 1.4-1.9x (the baseline CNN from 8x8 to 32x32 images, NB201 cells at C=16);
- networks with depthwise convolutions: 0.4x (mobile) to 1.0x (DARTS cells). oneDNN's bfloat16 depthwise backward
  is slow, and archsearch's compiled kernels run in float32 only;
- networks under about 5M multiply-adds an image: 0.9-1.0x (per-op overhead, not arithmetic, sets their speed).

Evaluation stays in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.nn.counting import count_flops

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: below this many multiply-adds per image a CPU step is per-op overhead, and bfloat16 does not pay
MIN_CPU_MACS = 5_000_000


def check_precision(precision: str) -> str:
    """``precision`` if it is one archsearch knows, else an error listing them."""
    if precision not in PRECISIONS:
        raise ArchsearchError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX-512 BF16 or AMX tiles), where oneDNN's bfloat16 convolutions
    run faster than float32 ones; without it bfloat16 is converted to float32 and back, and is slower."""
    for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        supported = getattr(torch.cpu, check, None)
        if supported is not None and supported():
            return True
    return False


def bf16_pays_on_cpu(model: nn.Module, input_shape: Sequence[int]) -> bool:
    """Whether ``model`` (on the CPU) is a network that trains faster under bfloat16 autocast on a CPU with
    bfloat16 instructions: no grouped (depthwise) convolution, and at least :data:`MIN_CPU_MACS` multiply-adds an
    image."""
    if any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules()):
        return False
    return count_flops(model, input_shape) >= MIN_CPU_MACS


def autocast_dtype(
    precision: str, model: nn.Module, device: torch.device, input_shape: Sequence[int]
) -> torch.dtype | None:
    """The type a training run of ``model`` on ``device`` autocasts to under ``precision``; None: float32
    throughout. A type the device cannot run is an error naming the ones it can."""
    check_precision(precision)
    if precision == "float32":
        return None
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "bfloat16" and not bf16:
            raise ArchsearchError("precision bfloat16: this GPU does not support it; use float16, float32 or auto")
        if precision == "float16":
            return torch.float16
        return torch.bfloat16 if bf16 else torch.float16
    if device.type != "cpu":
        if precision == "auto":
            return None
        raise ArchsearchError(f"precision {precision} runs on cuda and cpu devices; on {device.type} use auto or "
                              "float32")  # fmt: skip
    if precision == "float16":
        raise ArchsearchError("precision float16 runs on CUDA only; on the CPU use bfloat16, float32 or auto")
    if precision == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() and bf16_pays_on_cpu(model, input_shape) else None


def dtype_name(dtype: torch.dtype | None) -> str:
    """How a run records the type it trained in: float32, bfloat16 or float16."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")

"""Training speed on the CPU under bfloat16 autocast against float32, for each kind of network archsearch trains, and
what ``--precision auto`` chooses for it (``archsearch.mixed_precision``).

Each network takes SGD steps on a random channels-last batch with archsearch's compiled kernels installed (they run
in float32 only, so under autocast PyTorch's own layers run), float32 and bfloat16 interleaved round by round in one
process (this machine's timings drift). Run it alone.

    python benchmarks/cpu_precision.py --threads 2

Prints, per network, its multiply-adds per image, whether it has depthwise convolutions, images per second in float32
and under bfloat16 autocast, the ratio, and what ``auto`` takes on this CPU; then one JSON line. On a CPU without
bfloat16 instructions (AVX-512 BF16 or AMX) bfloat16 is emulated and ``auto`` keeps float32 for every network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.mixed_precision import autocast_dtype, cpu_has_bf16, dtype_name
from archsearch.nn import native
from archsearch.nn.counting import count_flops
from archsearch.spaces import get_space
from archsearch.spaces.darts import published

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def networks() -> dict[str, tuple[dict[str, Any], int]]:
    """Each network's model spec and batch size."""
    nb201 = get_space("nb201").parse(NB201_BEST)
    mobile = get_space("mobile").sample(np.random.default_rng(0))
    chain = get_space("chain").sample(np.random.default_rng(0))
    return {
        "baseline CNN, 1x28x28": (model_spec(1, 10, 28, model="baseline"), 128),
        "baseline CNN, 3x32x32": (model_spec(3, 10, 32, model="baseline"), 128),
        "baseline CNN, 1x8x8 (digits)": (model_spec(1, 10, 8, model="baseline"), 64),
        "NB201 network, C=16, N=5, 3x32x32": (model_spec(3, 10, 32, genotype=nb201), 128),
        "NB201 network, C=8, N=1, 1x8x8 (quick start)": (
            model_spec(1, 10, 8, genotype=nb201, build={"channels": 8, "cells_per_stage": 1}), 64),
        "DARTS_V2 network, C=16, 8 cells, 3x32x32": (
            model_spec(3, 10, 32, genotype=published("DARTS_V2"), build={"channels": 16, "cells": 8}), 128),
        "mobile network, width 0.25, 1x28x28": (model_spec(1, 10, 28, genotype=mobile, build={"width": 0.25}), 128),
        "chain network, width 0.25, 1x28x28": (model_spec(1, 10, 28, genotype=chain, build={"width": 0.25}), 128),
    }  # fmt: skip


def step_of(model: torch.nn.Module, batch: int, channels: int, size: int) -> Callable[[torch.dtype | None], None]:
    """One SGD step of ``model`` on a random channels-last batch, as the trainer takes it: the forward under
    autocast to the given type (None: float32), the loss in float32."""
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(dtype: torch.dtype | None) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        F.cross_entropy(logits.float(), y).backward()
        opt.step()

    return step


def measure(step: Callable[[torch.dtype | None], None], batch: int, rounds: int, steps: int) -> dict[str, float]:
    """Images per second in float32 and under bfloat16 autocast, ``rounds`` interleaved rounds of ``steps``."""
    kinds: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for dtype in kinds.values():  # warm up (oneDNN primitives, the allocator)
        step(dtype)
    for _ in range(rounds):
        for name, dtype in kinds.items():
            start = time.perf_counter()
            for _ in range(steps):
                step(dtype)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: batch / statistics.median(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per type and round")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    native.install()
    print(f"{args.threads} threads; this CPU has bfloat16 instructions: {cpu_has_bf16()}")
    print(f"{'network':<46} {'MACs/image':>11} {'depthwise':>9} {'float32':>9} {'bfloat16':>9} {'ratio':>6}  auto")
    rows = {}
    for name, (spec, batch) in networks().items():
        torch.manual_seed(0)
        model = build_from_spec(spec).to(memory_format=torch.channels_last).train()
        channels, size = spec["in_channels"], spec["input_size"]
        shape = (channels, size, size)
        macs = count_flops(model, shape)
        depthwise = any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in model.modules())
        auto = dtype_name(autocast_dtype("auto", model, torch.device("cpu"), shape))
        rate = measure(step_of(model, batch, channels, size), batch, args.rounds, args.steps)
        ratio = rate["bfloat16"] / rate["float32"]
        rows[name] = {"macs": macs, "depthwise": depthwise, **rate, "ratio": ratio, "auto": auto}
        print(f"{name:<46} {macs / 1e6:>10.1f}M {depthwise!s:>9} {rate['float32']:>9.1f} {rate['bfloat16']:>9.1f} "
              f"{ratio:>5.2f}x  {auto}", flush=True)  # fmt: skip
    print(json.dumps({"threads": args.threads, "cpu_bf16": cpu_has_bf16(), "images_per_s": rows}))


if __name__ == "__main__":
    main()

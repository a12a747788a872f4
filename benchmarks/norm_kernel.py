"""Training speed of every kind of network with its batch norms (and the ReLU after each) on PyTorch's layers and
on archsearch's compiled kernel (``archsearch.nn.native.affine_norm``, through ``archsearch.nn.fused.run_layers``).

The networks, each at the size a user trains it at: the hand-designed baseline CNN on 1x28x28 (Fashion-MNIST) and
3x32x32 (CIFAR-10) images; a final DARTS network at the mini-DARTS retraining size (C=16, 8 cells; the DARTS_V2
cell); a NAS-Bench-201 network (C=16, N=5; the best cell of the table); a chain network and a ``mobile`` network at
width 0.25 on 1x28x28 (seed 0). Both variants run in the same process, channels-last as the trainer runs them,
interleaved round by round (this machine's timings drift); random inputs (the speed does not depend on the pixels).

    python benchmarks/norm_kernel.py --threads 2

Prints images per second of each network without and with the kernel, the ratio, and one JSON line. Run it alone.
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
from archsearch.nn import fused, native
from archsearch.spaces import get_space
from archsearch.spaces.darts import published

NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def networks() -> dict[str, tuple[dict[str, Any], int]]:
    """Each network's model spec and its input channels and size."""
    mobile = get_space("mobile").sample(np.random.default_rng(0))
    chain = get_space("chain").sample(np.random.default_rng(0))
    return {
        "baseline CNN, 1x28x28": (model_spec(1, 10, 28, model="baseline"), 1),
        "baseline CNN, 3x32x32": (model_spec(3, 10, 32, model="baseline"), 3),
        "DARTS_V2 network, C=16, 8 cells": (
            model_spec(3, 10, 32, genotype=published("DARTS_V2"), build={"channels": 16, "cells": 8}), 3),
        "NB201 network, C=16, N=5": (model_spec(3, 10, 32, genotype=get_space("nb201").parse(NB201_BEST)), 3),
        "chain network, width 0.25, 1x28x28": (model_spec(1, 10, 28, genotype=chain, build={"width": 0.25}), 1),
        "mobile network, width 0.25, 1x28x28": (model_spec(1, 10, 28, genotype=mobile, build={"width": 0.25}), 1),
    }  # fmt: skip


def step_of(spec: dict[str, Any], channels: int, batch: int) -> Callable[[], None]:
    """One SGD step of the network of ``spec`` on a random channels-last batch."""
    torch.manual_seed(0)
    model = build_from_spec(spec).to(memory_format=torch.channels_last).train()
    size = spec["input_size"]
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        F.cross_entropy(out[0] if isinstance(out, tuple) else out, y).backward()
        opt.step()

    return step


def measure(step: Callable[[], None], batch: int, rounds: int, steps: int) -> tuple[float, float]:
    """Images per second without and with the kernel: ``rounds`` rounds of ``steps`` steps of each in turn."""
    kernel = fused.training_norm
    times: tuple[list[float], list[float]] = ([], [])
    try:
        for r in range(rounds + 1):  # the first round warms both up (oneDNN primitives, the allocator)
            for variant in (0, 1):
                fused.training_norm = kernel if variant else None
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                if r:
                    times[variant].append((time.perf_counter() - start) / steps)
    finally:
        fused.training_norm = kernel
    return batch / statistics.median(times[0]), batch / statistics.median(times[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per variant and round")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    native.install()
    if native.ensure_built() is None:
        raise SystemExit(f"the compiled kernels are unavailable ({native.unavailable_reason()}): nothing to compare")
    print(f"{args.threads} threads, batch {args.batch_size}; images per second")
    print(f"{'network':<40} {'PyTorch BN + ReLU':>18} {'compiled kernel':>16} {'ratio':>7}")
    results = {}
    for name, (spec, channels) in networks().items():
        plain, kernel = measure(step_of(spec, channels, args.batch_size), args.batch_size, args.rounds, args.steps)
        results[name] = {"pytorch": round(plain, 1), "kernel": round(kernel, 1), "ratio": round(kernel / plain, 3)}
        print(f"{name:<40} {plain:>18.1f} {kernel:>16.1f} {kernel / plain:>6.2f}x", flush=True)
    print(json.dumps({"threads": args.threads, "batch_size": args.batch_size, "images_per_s": results}))


if __name__ == "__main__":
    main()

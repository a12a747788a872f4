"""Training speed of ``mobile`` networks on the CPU: sampled networks at width 0.25 on 28x28 one-channel images
(Fashion-MNIST's shape), and the mobile supernet's DARTS step at the method suite's size (width 0.125, 8x8, batch
16: every one of its 252 blocks runs, so per-call costs are all there is).

Each row adds one change to the row before, measured in the same process and interleaved round by round (this
machine's timings drift): PyTorch's own layers (channels-last, as the trainer runs them); depthwise kernels cropped
to the taps that reach the image (a 7x7 kernel on a 2x2 image is a 3x3 one; exact); small 1x1 convolutions as one
matrix product (under 1,024 pixels a batch; exact); archsearch's compiled CPU kernels (``archsearch.nn.native``:
depthwise weight gradients of 5x5 and 7x7 kernels); batch norm with the ReLU after it on a compiled kernel
(``archsearch.nn.native.affine_norm``; the supernet's slots do not use it); squeeze-excitation blocks as one autograd
node (``archsearch.nn.native.squeeze_excite``). Random inputs (the speed does not depend on the pixels).

    python benchmarks/mobile_training.py --threads 2

Then one search step (an architecture step and a weight step, batch 64) of GDAS and of DARTS on the mobile supernet
at width 0.25, 28x28 (each in a fresh process): its time, and how far it raised the process's peak resident memory
above the built supernet's. GDAS runs one sampled path per step, DARTS every block of every slot.

Prints images per second per row and network, the ratio to the first row, the two search steps, and one JSON line.
Run it alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.api.tools import check_build
from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.nn import conv, fused, native
from archsearch.oneshot.supernets import build_supernet
from archsearch.spaces import get_space

ROWS = ("PyTorch layers", "+ cropped depthwise kernels", "+ small 1x1 as matmul", "+ compiled depthwise kernels",
        "+ compiled batch norm + ReLU", "+ squeeze-excitation as one node")


@contextmanager
def row(level: int) -> Iterator[None]:
    """The changes of rows ``0..level`` on, the others off."""
    crop, pixels, norm = conv.DepthwiseConv2d.crop_kernels, conv.MATMUL_PIXELS, fused.training_norm
    squeeze = fused.training_squeeze
    conv.DepthwiseConv2d.crop_kernels = level >= 1
    conv.MATMUL_PIXELS = 1024 if level >= 2 else 0
    fused.training_norm = norm if level >= 4 else None
    fused.training_squeeze = squeeze if level >= 5 else None
    try:
        if level >= 3:
            yield
        else:
            with native.turned_off():
                yield
    finally:
        conv.DepthwiseConv2d.crop_kernels, conv.MATMUL_PIXELS, fused.training_norm = crop, pixels, norm
        fused.training_squeeze = squeeze


def step_of(model: torch.nn.Module, batch: int, in_channels: int, size: int, classes: int) -> Callable[[], None]:
    """One SGD step of ``model`` on a random channels-last batch."""
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(batch, in_channels, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def measure(step: Callable[[], None], batch: int, rounds: int, steps: int) -> list[float]:
    """Images per second of each row: ``rounds`` rounds, each timing ``steps`` steps of every row in turn."""
    times: list[list[float]] = [[] for _ in ROWS]
    for level in range(len(ROWS)):  # warm every row up (oneDNN primitives, the allocator)
        with row(level):
            step()
    for _ in range(rounds):
        for level in range(len(ROWS)):
            with row(level):
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                times[level].append((time.perf_counter() - start) / steps)
    return [batch / statistics.median(t) for t in times]


def search_step(method: str, threads: int) -> dict[str, float]:
    """(Run in a fresh process.) Seconds of the fastest of three search steps of ``method`` on the mobile supernet
    (width 0.25, 1x28x28, batch 64) and the rise of peak resident memory over the built supernet, MiB."""
    from archsearch.oneshot import METHODS, default_config

    torch.set_num_threads(threads)
    native.install()
    x = torch.randn(64, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    net = build_supernet("mobile", 1, 10, input_size=28, width=0.25).to(memory_format=torch.channels_last)
    searcher = METHODS.get(method)(net, default_config(method, epochs=1, batch_size=64), 10, space=get_space("mobile"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(3):
        start = time.perf_counter()
        searcher.step(x, y, x, y)
        times.append(time.perf_counter() - start)
    rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return {"step_s": min(times), "peak_rise_mib": rise}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--networks", type=int, default=3, help="sampled mobile networks (seeds 0..N-1)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=2, help="steps per row and round")
    p.add_argument("--search-step", help=argparse.SUPPRESS)  # the child process of one search-step measurement
    args = p.parse_args()
    if args.search_step:
        print(json.dumps(search_step(args.search_step, args.threads)))
        return
    torch.set_num_threads(args.threads)
    native.install()
    if native.ensure_built() is None:
        print(f"note: the compiled kernels are unavailable ({native.unavailable_reason()}); the last row equals "
              "the one before")  # fmt: skip
    space = get_space("mobile")
    results: dict[str, list[float]] = {}
    for seed in range(args.networks):
        genotype = space.sample(np.random.default_rng(seed))
        spec = model_spec(1, 10, 28, genotype=genotype, build=check_build(space, {"width": 0.25}))
        torch.manual_seed(seed)
        step = step_of(build_from_spec(spec), args.batch_size, 1, 28, 10)
        results[f"network {seed} ({genotype})"] = measure(step, args.batch_size, args.rounds, args.steps)
    supernet = build_supernet("mobile", 1, 4, input_size=8, width=0.125, head=16)
    results["supernet, all blocks mixed (suite size)"] = measure(step_of(supernet, 16, 1, 8, 4), 16, args.rounds, 1)
    print(f"{args.threads} threads; images per second (ratio to the first row)")
    for name, rates in results.items():
        print(name)
        for label, rate in zip(ROWS, rates):
            print(f"  {label:<34} {rate:8.1f}  x{rate / rates[0]:.2f}")
    steps = {}
    for method in ("gdas", "darts"):
        child = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--search-step", method],
                               capture_output=True, text=True, check=True)  # fmt: skip
        steps[method] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{method} search step on the mobile supernet (width 0.25, 28x28, batch 64): "
              f"{steps[method]['step_s']:.2f} s, peak memory +{steps[method]['peak_rise_mib']:.0f} MiB")  # fmt: skip
    print(json.dumps({"threads": args.threads, "batch_size": args.batch_size, "rows": ROWS, "images_per_s": results,
                      "search_steps": steps}))  # fmt: skip


if __name__ == "__main__":
    main()

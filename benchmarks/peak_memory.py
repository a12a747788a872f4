"""Peak memory on a CPU: PyTorch's MemTracker as it is against the peak-only tracker ``costs.metrics`` uses, on one
sampled network of each space at a batch of 32, an inference forward pass and one SGD step.

    python benchmarks/peak_memory.py            # ~30 s on one core; run it alone

MemTracker updates a peak per module after every op; archsearch reads only the whole run's peak, so its tracker keeps
that alone. Printed: each tracker's peak (they must agree) and seconds, and the ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.distributed._tools.mem_tracker import MemTracker

import archsearch.costs.metrics as metrics
from archsearch.spaces import get_space

NETWORKS = {"darts": ({"channels": 16, "cells": 8}, (1, 28, 28)), "nb201": ({}, (3, 32, 32)),
            "mobile": ({"width": 0.25}, (1, 28, 28)), "chain": ({}, (1, 28, 28))}  # fmt: skip


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours = metrics._peak_tracker
    print(f"{'network':<16} {'MemTracker':>18} {'peak only':>18} {'speed-up':>9}")
    for space, (build, shape) in NETWORKS.items():
        sp = get_space(space)
        net = sp.build(sp.sample(np.random.default_rng(0)), shape[0], 10, shape[1], seed=0, **build)
        for mode in ("forward", "train"):
            row = []
            for tracker in (MemTracker, ours):
                metrics._peak_tracker = tracker
                start = time.perf_counter()
                peak = metrics.peak_memory_mb(net, shape, args.batch_size, mode=mode)
                row.append((peak, time.perf_counter() - start))
            metrics._peak_tracker = ours
            (a, ta), (b, tb) = row
            print(f"{space + ' ' + mode:<16} {a:8.1f} MiB {ta:5.2f} s {b:8.1f} MiB {tb:5.2f} s {ta / tb:8.2f}x")


if __name__ == "__main__":
    main()

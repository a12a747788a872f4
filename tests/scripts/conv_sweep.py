"""Which CPU convolutions corrupt memory in their backward pass: every case runs (forward and backward, several
times) in a worker process with glibc's heap checker on; a case whose worker crashes or hangs, or whose gradients
differ from the same convolution in float64 NCHW, is reported. A crash is blamed on the case that was running, then
confirmed by running that case alone in a fresh process.

The bug shows with oneDNN's AVX2 kernels (AMD EPYC; an AVX-512 machine runs others), so each worker runs with
``ONEDNN_MAX_CPU_ISA=AVX2`` unless ``--isa`` says otherwise (``--isa native``: the machine's own).

    python tests/scripts/conv_sweep.py --threads 1,2            # the raw sweep (about 1,600 cases per thread count)
    python tests/scripts/conv_sweep.py --ops --threads 1,2      # archsearch's own ops and blocks, narrow channels

Cases are ``kind:c_in:c_out:kernel:stride:dilation:groups:format`` (raw) or ``op:NAME:c_in:c_out:stride`` (ops).
Exit status 1 when any case is bad.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 30
MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def raw_cases() -> list[str]:
    """Plain ``F.conv2d`` configurations of the kinds archsearch builds: dense k x k (1, 3, 5, 7), depthwise, dilated,
    strides 1 and 2, narrow channel counts, both memory formats."""
    out = []
    channels = (1, 2, 3, 4, 5, 6, 8, 12, 16)
    for fmt, k, s in itertools.product(("cl", "nchw"), (1, 3, 5, 7), (1, 2)):
        for c_in, c_out in itertools.product(channels, channels):
            out.append(f"raw:{c_in}:{c_out}:{k}:{s}:1:1:{fmt}")
        for c in channels:  # depthwise, plain and dilated
            for d in (1, 2):
                out.append(f"raw:{c}:{c}:{k}:{s}:{d}:{c}:{fmt}")
    return out


def op_cases() -> list[str]:
    """Every registered op, FactorizedReduce and the mobile blocks at narrow widths, strides 1 and 2."""
    from archsearch.nn.ops import OPS

    out = []
    for name in OPS.names():
        for c_in, c_out, s in itertools.product((2, 4, 6, 8), (2, 4, 8), (1, 2)):
            out.append(f"op:{name}:{c_in}:{c_out}:{s}")
    for c_in, c_out, s in itertools.product((1, 2, 3, 4, 6, 8), (1, 2, 3, 4, 8), (1, 2)):
        out.append(f"op:skipblock:{c_in}:{c_out}:{s}")
    for c_in, c_out, s, k in itertools.product((2, 4, 8), (2, 4, 8), (1, 2), (3, 5, 7)):
        out.append(f"op:mb{k}:{c_in}:{c_out}:{s}")
    return out


# --- the worker ----------------------------------------------------------------------------------------------------
def _module(case: str):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    parts = case.split(":")
    if parts[0] == "raw":
        c_in, c_out, k, s, d, g = (int(p) for p in parts[1:7])
        return nn.Conv2d(c_in, c_out, k, s, padding=d * (k // 2), dilation=d, groups=g, bias=False), c_in, parts[7]
    name, c_in, c_out, s = parts[1], int(parts[2]), int(parts[3]), int(parts[4])
    torch.manual_seed(0)
    if name == "skipblock":
        from archsearch.nn.mobile import SkipBlock

        return SkipBlock(c_in, c_out, s), c_in, "cl"
    if name.startswith("mb"):
        from archsearch.nn.mobile import InvertedResidual

        return InvertedResidual(c_in, c_out, s, 3, int(name[2:]), se=True), c_in, "cl"
    from archsearch.nn.ops import make_op

    return make_op(name, c_in, c_out, s), c_in, "cl"


def _run_case(case: str) -> str | None:
    """Run one case REPEATS times; the reason it is wrong, or None."""
    import copy

    import torch

    module, c_in, fmt = _module(case)
    reference = copy.deepcopy(module).double()
    x = torch.randn(16, c_in, 16, 16, generator=torch.Generator().manual_seed(1))
    # a random projection of the output as the loss: a BatchNorm output's sum of squares is constant (zero gradient)
    with torch.no_grad():
        projection = torch.randn(reference(x.double()).shape, generator=torch.Generator().manual_seed(2))
    for _ in range(REPEATS):
        xi = (x.to(memory_format=torch.channels_last) if fmt == "cl" else x.clone()).requires_grad_()
        module.zero_grad()
        out = (module(xi) * projection).sum()
        if out.requires_grad:  # "none" with other output channels returns fresh zeros
            out.backward()
    xr = x.double().requires_grad_()
    reference.zero_grad()
    out = (reference(xr) * projection.double()).sum()
    if out.requires_grad:
        out.backward()
    worst = 0.0
    if xr.grad is not None:  # "none" with other output channels: zeros, no gradient to compare
        if xi.grad is None:
            return "no input gradient where the float64 reference has one"
        worst = float((xi.grad.double() - xr.grad).abs().max() / xr.grad.abs().max().clamp_min(1e-12))
    # parameters: relative to the largest parameter gradient (a conv bias before a BatchNorm has a gradient of ~0)
    pairs = [(p.grad, q.grad) for p, q in zip(module.parameters(), reference.parameters()) if q.grad is not None]
    if pairs:
        scale = max(float(q.abs().max()) for _, q in pairs) or 1.0
        worst = max(worst, max(float((p.double() - q).abs().max()) / scale for p, q in pairs))
    return None if worst < 1e-3 else f"gradient off by {worst:.3g} (relative)"


def worker(cases: list[str]) -> None:
    for i, case in enumerate(cases):
        print(f"START {i}", flush=True)
        wrong = _run_case(case)
        print(f"DONE {i} {json.dumps(wrong)}", flush=True)


# --- the driver ----------------------------------------------------------------------------------------------------
ISA = "AVX2"


def _spawn(cases: list[str], threads: int, per_case: float) -> tuple[int | None, list[str]]:
    """Run ``cases`` in one worker; (exit status or None for a hang, its output lines). A case that runs longer
    than ``per_case`` seconds is a hang: the worker is killed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "ARCHSEARCH_NATIVE": "0", "GLIBC_TUNABLES":
           "glibc.malloc.check=3"}  # fmt: skip
    if ISA != "native":
        env["ONEDNN_MAX_CPU_ISA"] = ISA
    if Path(MALLOC_DEBUG).exists():
        env["LD_PRELOAD"] = MALLOC_DEBUG
    worker = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(cases)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert worker.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + per_case + 30  # the first case also pays for importing torch
    while True:
        ready, _, _ = select.select([worker.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            worker.kill()
            worker.wait()
            return None, lines
        line = worker.stdout.readline()
        if not line:
            return worker.wait(), lines
        lines.append(line.rstrip("\n"))
        deadline = time.monotonic() + per_case


def sweep(cases: list[str], threads: int, per_case: float = 8.0) -> dict[str, str]:
    """``{case: what went wrong}`` for every bad case with ``threads`` OpenMP threads."""
    bad: dict[str, str] = {}
    start = 0
    while start < len(cases):
        chunk = cases[start : start + 400]
        code, lines = _spawn(chunk, threads, per_case)
        done = -1
        for line in lines:
            if line.startswith("DONE"):
                _, i, wrong = line.split(" ", 2)
                done = int(i)
                if json.loads(wrong):
                    bad[chunk[done]] = json.loads(wrong)
        if code == 0:
            start += len(chunk)
            continue
        suspect = chunk[done + 1]
        alone_code, _ = _spawn([suspect], threads, per_case)
        why = "hang" if code is None else f"crash (signal {-code})" if code < 0 else f"exit {code}"
        if alone_code != 0:
            alone = "hang" if alone_code is None else f"signal {-alone_code}" if alone_code < 0 else alone_code
            bad[suspect] = f"{why}; alone: {alone}"
        else:
            bad[suspect] = f"{why} after the cases before it; alone: fine"
        start += done + 2
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--ops", action="store_true", help="archsearch's ops and blocks instead of raw convolutions")
    parser.add_argument("--cases", help="comma-separated cases to run instead of a sweep")
    parser.add_argument("--isa", default="AVX2", help="oneDNN's ISA limit for the workers, or 'native' (default AVX2)")
    args = parser.parse_args()
    global ISA
    ISA = args.isa
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    cases = args.cases.split(",") if args.cases else op_cases() if args.ops else raw_cases()
    failed = False
    for threads in (int(t) for t in args.threads.split(",")):
        began = time.time()
        bad = sweep(cases, threads)
        print(f"{threads} thread(s), oneDNN ISA {ISA}: {len(cases)} cases, {len(bad)} bad, {time.time() - began:.0f} s")
        for case, why in bad.items():
            print(f"  {case}: {why}")
        failed |= bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

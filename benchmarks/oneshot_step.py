"""Time one first-order DARTS search step (alpha step on a validation batch + weight step on a training batch):
the naive DARTS supernet (a Python sum of weight x op output per edge), written plainly below, against
archsearch's supernet with the same math: 8 cells, 4 nodes, 16 initial channels, ops skip_connect, sep_conv_3x3,
sep_conv_5x5, avg_pool_3x3 and none, batch 64 of 3x32x32. PC-DARTS (K=4) is timed too.

The headline compares against the naive supernet in the same memory layout (channels-last). Each saving is shown
apart, one row adding it to the row before: channels-last; each step differentiating only its own parameters (the
alphas in the alpha step, the weights in the weight step); skipping the ``none`` op; archsearch's per-source
mixed op (the parameter-free head of each op run once per source node, the weighted sum fused); and archsearch's
compiled CPU kernels (``archsearch.nn.native``: the 5x5 depthwise weight gradient, batch norm). Every row runs in a
fresh process. Peak memory of a step, achieved GFLOP/s and a large matmul's GFLOP/s on the same machine are
printed; the last line is one JSON object.

    python benchmarks/oneshot_step.py --threads 2
    python benchmarks/oneshot_step.py --device cuda --amp     # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from archsearch.costs import measure_peak_mb
from archsearch.nn.ops import FactorizedReduce, ReLUConvBN, make_op
from archsearch.oneshot.base import OneShotConfig
from archsearch.oneshot.darts import Darts
from archsearch.oneshot.supernets import DartsSupernet

#: the rows that run with archsearch's compiled CPU kernels (archsearch.nn.native); the others are plain PyTorch
NATIVE_ROWS = ("archsearch", "pcdarts_k4")
OPS = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "none")


# --- the naive reference: a mixed op is a Python sum of weight x op output ------------------------------------------
class NaiveMixedOp(nn.Module):
    def __init__(self, C: int, stride: int, skip_none: bool = False) -> None:
        super().__init__()
        self.ops = nn.ModuleList()
        self.names = [n for n in OPS if not (skip_none and n == "none")]
        self.index = [OPS.index(n) for n in self.names]
        for name in self.names:
            op = make_op(name, C, C, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            self.ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(weights[k] * op(x) for k, op in zip(self.index, self.ops))  # type: ignore[return-value]


class NaiveCell(nn.Module):
    def __init__(
        self,
        C_pp: int,
        C_p: int,
        C: int,
        reduction: bool,
        reduction_prev: bool,
        steps: int = 4,
        skip_none: bool = False,
    ) -> None:
        super().__init__()
        self.pre0 = (
            FactorizedReduce(C_pp, C, affine=False) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False)
        )
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.steps, self.reduction = steps, reduction
        self.ops = nn.ModuleList(
            NaiveMixedOp(C, 2 if reduction and j < 2 else 1, skip_none) for i in range(steps) for j in range(2 + i)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)  # type: ignore[arg-type]
        return torch.cat(states[-self.steps :], dim=1)


class NaiveNetwork(nn.Module):
    def __init__(
        self, C: int = 16, layers: int = 8, num_classes: int = 10, steps: int = 4, skip_none: bool = False
    ) -> None:
        super().__init__()
        C_curr = 3 * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            self.cells.append(NaiveCell(C_pp, C_p, C_curr, reduction, reduction_prev, steps, skip_none))
            reduction_prev = reduction
            C_pp, C_p = C_p, steps * C_curr
        self.classifier = nn.Linear(C_p, num_classes)
        edges = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(edges, len(OPS)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(OPS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            alphas = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(alphas, dim=-1))
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def naive_step_fn(net: NaiveNetwork, own_grads_only: bool = False) -> tuple[Callable[..., None], list[Any]]:
    """The naive step; ``own_grads_only``: each step differentiates only the parameters it updates."""
    arch = [net.alphas_normal, net.alphas_reduce]
    weights = [p for p in net.parameters() if all(p is not a for a in arch)]
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(arch, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def backward(loss: torch.Tensor, params: list[torch.Tensor]) -> None:
        if not own_grads_only:
            loss.backward()
            return
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g

    def step(x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> None:
        a_opt.zero_grad()
        backward(F.cross_entropy(net(xv), yv), arch)
        a_opt.step()
        w_opt.zero_grad()
        backward(F.cross_entropy(net(x), y), weights)
        nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    return step, [net, w_opt, a_opt]


def archsearch_step_fn(net: DartsSupernet) -> tuple[Callable[..., None], list[Any]]:
    method = Darts(net, OneShotConfig(epochs=1), steps_per_epoch=1000)

    def step(x: torch.Tensor, y: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> None:
        method.step(x, y, xv, yv)

    return step, [net, method.w_optimizer, method.a_optimizer]


# --- measuring ----------------------------------------------------------------------------------------------------
def timed(
    step: Callable[..., None], batch: tuple[torch.Tensor, ...], steps: int, device: torch.device, amp: bool
) -> float:
    def run() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16, enabled=amp):
            step(*batch)

    run()  # warm-up
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def step_flops(net: nn.Module, x: torch.Tensor) -> int:
    """Model FLOPs of a step by the usual convention: two passes (alpha step, weight step), each a forward and a
    backward of twice its cost. (PyTorch's counter overstates backward FLOPs of grouped convolutions, so only the
    forward is counted.)"""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    return 2 * 3 * int(counter.get_total_flops())


def peak_rss_increase_mb(step: Callable[..., None], batch: tuple[torch.Tensor, ...]) -> float:
    """CPU: how far the process's resident memory rises above its level before one step (Linux's VmHWM, reset
    through /proc/self/clear_refs). Run in a fresh process per network so one network's freed memory cannot hide
    another's. (PyTorch's MemTracker refuses a module called twice in a step, as both steps here do.)"""

    def status(field: str) -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
        raise RuntimeError(f"/proc/self/status has no {field}")

    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    step(*batch)
    return status("VmHWM") - before


def _child(arguments: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{out.stderr}")
    return out.stdout.strip()


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network (median reported)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision (float16 on CUDA)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated rows to run (default: all)")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    batch = tuple(
        t.to(device)
        for t in (
            torch.randn(args.batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (args.batch,), generator=gen),
            torch.randn(args.batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (args.batch,), generator=gen),
        )
    )
    torch.manual_seed(0)
    cl = torch.channels_last
    builders = {
        "naive": lambda: naive_step_fn(NaiveNetwork().to(device)),
        "naive_cl": lambda: naive_step_fn(NaiveNetwork().to(device, memory_format=cl)),
        "+own_grads": lambda: naive_step_fn(NaiveNetwork().to(device, memory_format=cl), own_grads_only=True),
        "+skip_none": lambda: naive_step_fn(
            NaiveNetwork(skip_none=True).to(device, memory_format=cl), own_grads_only=True
        ),
        "+per_source": lambda: archsearch_step_fn(DartsSupernet(16, 8, 10, 3, OPS).to(device, memory_format=cl)),
        "archsearch": lambda: archsearch_step_fn(DartsSupernet(16, 8, 10, 3, OPS).to(device, memory_format=cl)),
        "pcdarts_k4": lambda: archsearch_step_fn(
            DartsSupernet(16, 8, 10, 3, OPS, partial=4, edge_norm=True).to(device, memory_format=cl)
        ),
    }
    if args.row or args.memory_of:  # a child process: one network
        name = args.row or args.memory_of
        step, resident = builders[name]()
        if args.memory_of:
            if device.type == "cuda":
                print(measure_peak_mb(lambda: step(*batch), resident, device))
            else:
                print(peak_rss_increase_mb(step, batch))
        else:
            seconds = timed(step, batch, args.steps, device, args.amp)
            print(json.dumps({"step_s": seconds, "flops": step_flops(resident[0], batch[0])}))
        return
    if args.only:
        builders = {k: v for k, v in builders.items() if k in args.only.split(",")}
    rows: dict[str, dict[str, float]] = {}
    peak_gflops = matmul_gflops(device)
    gains = {
        "naive_cl": "naive",
        "+own_grads": "naive_cl",
        "+skip_none": "+own_grads",
        "+per_source": "+skip_none",
        "archsearch": "+per_source",
    }
    common = ["--threads", str(args.threads), "--batch", str(args.batch), "--device", args.device]
    common += ["--steps", str(args.steps)] + (["--amp"] if args.amp else [])
    for name in builders:
        # a fresh process per network, so that no network runs in the memory another one left behind; only the
        # archsearch rows use the compiled kernels (the naive supernet is plain PyTorch)
        env = {**os.environ, "ARCHSEARCH_NATIVE": "1" if name in NATIVE_ROWS else "0"}
        timing = json.loads(_child(["--row", name, *common], env).splitlines()[-1])
        seconds, flops = timing["step_s"], timing["flops"]
        memory = "nan" if args.skip_memory else _child(["--memory-of", name, *common], env).splitlines()[-1]
        peak = float(memory)
        rows[name] = {"step_s": seconds, "peak_mb": peak, "gflop": flops / 1e9, "gflops_per_s": flops / 1e9 / seconds}
        versus = "" if "naive_cl" not in rows else f"  {rows['naive_cl']['step_s'] / seconds:5.2f}x naive_cl"
        gain = "" if gains.get(name) not in rows else f"  gain {rows[gains[name]]['step_s'] / seconds:5.2f}x"
        print(
            f"{name:<12} step {seconds:7.3f} s  peak {peak:8.1f} MiB  {flops / 1e9:7.2f} GFLOP  "
            f"{flops / 1e9 / seconds:6.1f} GFLOP/s{versus}{gain}",
            flush=True,
        )
    if not {"naive", "naive_cl", "archsearch", "pcdarts_k4"} <= rows.keys():  # --only: rows without the summary
        return
    base, same_layout, ours = rows["naive"], rows["naive_cl"], rows["archsearch"]
    speedup = same_layout["step_s"] / ours["step_s"]
    print(
        f"\nagainst the naive supernet in the same layout (channels-last): {speedup:.2f}x (goal >= 2x); "
        f"against the default layout {base['step_s'] / ours['step_s']:.2f}x; peak memory {ours['peak_mb']:.0f} vs "
        f"{same_layout['peak_mb']:.0f} MiB; PC-DARTS K=4 {same_layout['step_s'] / rows['pcdarts_k4']['step_s']:.2f}x; "
        f"large matmul {peak_gflops:.1f} GFLOP/s ({args.threads} threads, {device})"
    )
    print(
        json.dumps(
            {
                "device": str(device),
                "threads": args.threads,
                "amp": args.amp,
                "baseline_step_s": round(base["step_s"], 4),
                "baseline_cl_step_s": round(same_layout["step_s"], 4),
                "archsearch_step_s": round(ours["step_s"], 4),
                "pcdarts_step_s": round(rows["pcdarts_k4"]["step_s"], 4),
                "speedup_vs_channels_last": round(speedup, 3),
                "speedup_vs_default_layout": round(base["step_s"] / ours["step_s"], 3),
                "baseline_peak_mb": round(base["peak_mb"], 1),
                "archsearch_peak_mb": round(ours["peak_mb"], 1),
                "pcdarts_peak_mb": round(rows["pcdarts_k4"]["peak_mb"], 1),
                "archsearch_gflops_per_s": round(ours["gflops_per_s"], 2),
                "baseline_gflops_per_s": round(base["gflops_per_s"], 2),
                "matmul_gflops_per_s": round(peak_gflops, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

"""What a network costs: parameters, multiply-adds, latency and peak memory.

FLOPs come from PyTorch's own ``torch.utils.flop_counter`` and are reported as multiply-adds (MACs), the convention
of NAS papers (half of PyTorch's FLOP count). Peak memory comes from ``torch.cuda`` statistics on a GPU and from
PyTorch's ``MemTracker`` (``torch.distributed._tools.mem_tracker``) on the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.costs import runtime
from archsearch.errors import ArchsearchError
from archsearch.nn.counting import count_flops, count_params, eval_mode


@dataclass
class Cost:
    """Costs of one network for one input shape (``latency_ms`` and memory only when measured)."""

    params: int
    flops: int
    latency_ms: float | None = None
    forward_peak_mb: float | None = None
    train_peak_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


def _input(batch_size: int, input_shape: Sequence[int], device: torch.device) -> torch.Tensor:
    """A random batch from a local generator: measuring never touches the global random state."""
    return torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)


def measure_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    warmup: int = runtime.WARMUP,
    runs: int = runtime.REPEATS,
) -> float:
    """Median wall time in milliseconds of an inference forward pass on PyTorch eager, after ``warmup`` untimed
    runs, on ``threads`` threads (default: the current count), timed by :func:`archsearch.costs.runtime.measure`, the
    clock every latency in archsearch is measured with; the model's training mode is kept."""
    if runs < 1 or warmup < 0 or batch_size < 1:
        raise ArchsearchError(f"need runs >= 1, warmup >= 0, batch_size >= 1; got {runs}, {warmup}, {batch_size}")
    with eval_mode(model):
        latency = runtime.measure(model, input_shape, "eager", batch_size, threads or torch.get_num_threads(), warmup,
                                  runs, str(device))  # fmt: skip
    return latency.median_ms


def _train_step(model: nn.Module, x: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    target = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    loss = F.cross_entropy(_first(model(x)), target)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def peak_memory_mb(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    mode: str = "forward",
) -> float:
    """Peak memory in MiB while running an inference forward pass (``mode='forward'``) or one SGD training step
    (``mode='train'``) on a batch: parameters, activations, gradients and optimizer state included."""
    if mode not in ("forward", "train"):
        raise ArchsearchError(f"mode must be 'forward' or 'train', got {mode!r}")
    dev = torch.device(device)
    # A copy runs the step, so measuring never changes the caller's weights or batch-norm statistics.
    work = copy.deepcopy(model).to(dev)
    x = _input(batch_size, input_shape, dev)

    def run() -> None:
        if mode == "forward":
            with eval_mode(work), torch.no_grad():
                work(x)
        else:
            work.train()
            _train_step(work, x)

    return measure_peak_mb(run, [work, x], dev)


def measure_peak_mb(
    run: Any, resident: Sequence[nn.Module | torch.Tensor], device: str | torch.device = "cpu"
) -> float:
    """Peak memory in MiB while ``run()`` executes, counting the ``resident`` modules and tensors (parameters,
    buffers, optimizer state and gradients they hold) as well as everything ``run`` allocates."""
    dev = torch.device(device)
    if dev.type == "cuda":
        held = [t for r in resident for t in ([*r.parameters(), *r.buffers()] if isinstance(r, nn.Module) else [r])]
        size = sum(t.numel() * t.element_size() for t in held)
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        run()
        torch.cuda.synchronize(dev)
        return (torch.cuda.max_memory_allocated(dev) - before + size) / 2**20
    tracker = _peak_tracker()
    tracker.track_external(*resident)
    with tracker:
        run()
    peak = tracker.get_tracker_snapshot("peak")
    return sum(v.get("Total", 0) for v in peak.values()) / 2**20


def _peak_tracker() -> Any:
    """PyTorch's MemTracker keeping only the whole run's peak. Its own peak update also walks every module it has
    seen, after every op, for per-module peaks nothing here reads: 5.8 s of a DARTS network's (8 cells, 1,500
    modules) training step, against 1.9 s without (``benchmarks/peak_memory.py``); the peak is the same."""
    try:
        from torch.distributed._tools.mem_tracker import MemTracker
    except ImportError as exc:  # pragma: no cover - depends on the installed torch
        raise ArchsearchError(
            f"peak memory on the CPU needs PyTorch's MemTracker (torch >= 2.5); this torch has none ({exc})"
        ) from None

    class PeakTracker(MemTracker):  # type: ignore[misc]
        def _update_peak_stats(self, peak_state: Any) -> None:
            for dev, snap in self._curr_mem_snap.items():
                if self._peak_mem.get(dev, 0) < snap["Total"]:
                    self._peak_mem[dev] = snap["Total"]
                    self._peak_mem_snap[dev] = dict(snap)

    return PeakTracker() if hasattr(MemTracker, "_update_peak_stats") else MemTracker()


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    device: str | torch.device = "cpu",
    latency: bool = True,
    memory: bool = False,
    batch_size: int = 1,
    threads: int | None = None,
    runs: int = runtime.REPEATS,
    memory_batch_size: int = 32,
) -> Cost:
    """All costs of ``model`` for images of ``input_shape`` (C, H, W); latency and memory are optional."""
    model = model.to(device)
    cost = Cost(params=count_params(model), flops=count_flops(model, input_shape, device))
    if latency:
        cost.latency_ms = measure_latency(model, input_shape, batch_size, device, threads, runs=runs)
    if memory:
        cost.forward_peak_mb = peak_memory_mb(model, input_shape, memory_batch_size, device, "forward")
        cost.train_peak_mb = peak_memory_mb(model, input_shape, memory_batch_size, device, "train")
    return cost

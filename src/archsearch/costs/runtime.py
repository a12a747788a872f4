"""Inference latency measured on the runtime a network is deployed to: PyTorch eager, TorchScript (traced and frozen)
or ONNX Runtime's CPU execution provider, for a batch size and a thread count, after warm-up, as the median of
repeated runs with its spread (the interquartile range).

Each target is prepared once (traced, or exported to ONNX and loaded in a session) and then timed call by call with
``time.perf_counter``; on a GPU the device is synchronised around each call. Written by hand: the timing loop is a
dozen lines, and no library times all three runtimes the same way.

Before the first measurement in a process, one 32 MiB buffer is allocated and freed (:func:`settle_allocator`).
glibc's malloc serves large buffers from freshly mapped pages, each call paying page faults, until it frees a large
mapped block; then it raises its mmap threshold and keeps such memory for reuse. A long-running process is in that
second state; a fresh one is not until it happens to free a large block, so the same network measured 24.4 ms early in
a process and 16.2 ms later (PyTorch eager, 224x224, one thread). Settling first measures the steady state at once.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchsearchError

TARGETS = ("eager", "torchscript", "onnxruntime")
WARMUP, REPEATS = 5, 30  # untimed and timed calls of every latency measurement unless the caller says otherwise
#: Sessions of a measurement that decides whether a network meets a latency limit. On this 2-core VM a 0.36 ms network
#: measured 0.49-0.67 ms in 1 or 2 of 12 measurements of 100 calls (with OMP_WAIT_POLICY=passive too): spells in
#: which the host runs the process slower, lasting from one measurement to several in a row (sessions timed call by
#: call in turn were slow together, and the median of five sessions still read 0.59 ms once in 24). The lowest of five
#: sessions' medians read 0.357-0.365 ms in 24 of 24: it needs one session outside a spell, and each session's own
#: median keeps a single slow call out.
VERIFY_SESSIONS = 5
#: A verification over its limit is measured again after these pauses (seconds) before it counts: a spell can outlast
#: five sessions back to back (a 0.33 ms network read 0.48 ms in all five once), but it passes; a network that is
#: over its limit stays over.
VERIFY_PAUSES_S = (0.5, 2.0)


@dataclass
class Latency:
    """Milliseconds per inference call: median, quartiles, extremes, and how it was measured."""

    target: str
    median_ms: float
    q25_ms: float
    q75_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    batch_size: int
    threads: int

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.q75_ms - self.q25_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "spread": self.spread}

    def text(self) -> str:
        return (f"{self.median_ms:.3f} ms median on {self.target} (IQR {self.q25_ms:.3f}-{self.q75_ms:.3f}, "
                f"{self.repeats} runs, batch {self.batch_size}, {self.threads} thread(s))")  # fmt: skip


def check_target(target: str) -> str:
    """``target`` if it is a runtime latency can be measured on, else an error naming the allowed ones."""
    if target not in TARGETS:
        raise ArchsearchError(f"unknown latency target {target!r} (allowed: {', '.join(TARGETS)})")
    return target


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``n`` for the block."""
    if n < 1:
        raise ArchsearchError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_SETTLED = False


def settle_allocator() -> None:
    """Allocate and free one buffer just under glibc's largest dynamic mmap threshold (32 MiB), once per process, so
    that CPU latency is measured in the allocator's steady state (see the module docstring)."""
    global _SETTLED
    if not _SETTLED:
        buffer = torch.empty(32 * 2**20 - 2**16, dtype=torch.uint8)
        buffer.fill_(0)
        del buffer
        _SETTLED = True


def prepare(model: nn.Module, example: torch.Tensor, target: str, threads: int = 1) -> Callable[[], Any]:
    """A function that runs one inference of ``model`` on ``example`` on ``target`` (ready to be timed)."""
    check_target(target)
    model = model.eval()
    if target == "eager":

        def run_eager() -> Any:
            with torch.inference_mode():
                return model(example)

        return run_eager
    if target == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():  # TorchScript is deprecated in this PyTorch
            warnings.simplefilter("ignore")
            frozen = torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))

        def run_script() -> Any:
            with torch.no_grad():
                return frozen(example)

        return run_script
    from archsearch.export.formats import onnxruntime_module, write_onnx

    ort = onnxruntime_module()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with torch.no_grad():
            write_onnx(model, example, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: example.cpu().numpy()}
    return lambda: session.run(None, feed)


def time_calls(run: Callable[[], Any], warmup: int, repeats: int, device: torch.device | None = None) -> list[float]:
    """Milliseconds of each of ``repeats`` calls of ``run`` after ``warmup`` untimed ones."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summarize(target: str, times: Sequence[float], batch_size: int, threads: int) -> Latency:
    """The :class:`Latency` of a list of call times."""
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return Latency(target, statistics.median(times), q[0], q[2], min(times), max(times), len(times), batch_size,
                   threads)  # fmt: skip


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    target: str = "eager",
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = WARMUP,
    repeats: int = REPEATS,
    device: str = "cpu",
    sessions: int = 1,
) -> Latency:
    """Latency of ``model`` on ``target`` for a batch of ``batch_size`` images of ``input_shape`` (C, H, W).
    ``sessions``: prepare and time the target that many times, one after another (ONNX Runtime: a fresh session
    each), and report the lowest of their medians (the spread and extremes over all calls): the measurement that
    decides a latency limit (see :data:`VERIFY_SESSIONS`)."""
    check_target(target)
    if batch_size < 1 or repeats < 1 or warmup < 0 or sessions < 1:
        raise ArchsearchError(f"need batch_size >= 1, repeats >= 1, warmup >= 0, sessions >= 1; got {batch_size}, "
                              f"{repeats}, {warmup}, {sessions}")  # fmt: skip
    if target == "onnxruntime" and device != "cpu":
        raise ArchsearchError("onnxruntime latency is measured with its CPU execution provider: use --device cpu")
    dev = torch.device(device)
    settle_allocator()
    example = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0)).to(dev)
    medians, pooled = [], []
    with torch_threads(threads):
        for _ in range(sessions):
            times = time_calls(prepare(model.to(dev), example, target, threads), warmup, repeats, dev)
            medians.append(statistics.median(times))
            pooled += times
    latency = summarize(target, pooled, batch_size, threads)
    return replace(latency, median_ms=min(medians)) if sessions > 1 else latency


def verified_ms(model: nn.Module, input_shape: Sequence[int], target: str, batch_size: int, threads: int,
                limit_ms: float | None, warmup: int = 10, repeats: int = 30) -> float:  # fmt: skip
    """The latency (ms) that decides whether ``model`` meets ``limit_ms``: the lowest median of
    :data:`VERIFY_SESSIONS` sessions, and while that is over the limit, again after each of
    :data:`VERIFY_PAUSES_S` (the lowest of all rounds: the host's slow spells only ever add time)."""
    best = math.inf
    for pause in (0.0, *VERIFY_PAUSES_S):
        if limit_ms is not None and best <= limit_ms:
            break
        time.sleep(pause)
        best = min(best, measure(model, input_shape, target, batch_size, threads, warmup=warmup, repeats=repeats,
                                 sessions=VERIFY_SESSIONS).median_ms)  # fmt: skip
        if limit_ms is None:
            break
    return best

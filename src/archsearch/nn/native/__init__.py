"""Compiled CPU kernels for training a supernet's layers on float32 channels-last batches whose channel count is a
multiple of 16: the backward pass of depthwise convolutions, batch norm without affine weights (with the ReLU that
follows it), a mixed edge's weighted sum with its ops' last batch norms folded in, and DARTS's 3x3 average pooling.

Why: oneDNN's depthwise weight gradient has a fast path for 3x3 kernels only; a 5x5 one on a 64x16x32x32 batch
takes about 4 ms where the forward takes 0.3 ms, and a DARTS supernet has two of them per edge. Inside a search step
every layer writes an activation that does not fit in cache, so each tensor that is never written (a folded batch
norm's output, a ReLU's) saves a pass over memory. The kernels compute the same sums as PyTorch's layers (float
rounding aside; ``tests/test_native_kernels.py`` checks outputs, gradients and running statistics). A double
backward (``create_graph=True``) runs each kernel's backward on PyTorch's differentiable ops (:func:`graph_backward`).

They are C++ (``kernels.cpp``), built once per machine with PyTorch's extension builder (about 20 s; it needs a
C++ compiler and ninja), one build per instruction set, in a private cache folder whose libraries are loaded only
when their hash matches the one recorded at build time (:mod:`archsearch.nn.native.build`). They are built at set-up
(``python -m archsearch.nn.native``, which the Makefile's install step runs) or, where that did not happen, in the
background of the first supernet search (:func:`ensure_built` with ``background=True``, saying so); a plain training run
only uses kernels already built, so it never stalls on a compiler. Where the build fails or the cache is not
private, a warning says why once and the layers run on PyTorch's own kernels (the same math, slower).
``ARCHSEARCH_NATIVE=0`` turns them off.

Nothing happens at import: :func:`install` (called by the training loop and the supernet search) makes
:func:`depthwise_conv` :class:`archsearch.nn.conv.DepthwiseConv2d`'s training convolution; supernets call
:func:`batch_norm` and :func:`avg_pool` (and :mod:`archsearch.oneshot.fused_sum` the mixed edge's weighted sum).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_hooks

from archsearch.nn.conv import DepthwiseConv2d

log = logging.getLogger(__name__)

#: extra compiler flags by the CPU capability PyTorch reports (the build is named after it)
_ISA_FLAGS = {"AVX512": ["-mavx512f", "-mavx512dq", "-mfma"], "AVX2": ["-mavx2", "-mfma"]}


@dataclass
class _Kernels:
    """The kernels of this process: the loaded module, why there is none, a build going on in the background, and
    whether :func:`turned_off` holds them off. One per process, as the loaded library is."""

    module: Any = None
    reason: str | None = None
    looked: bool = False  # the cache was read: not again in this process
    tried: bool = False  # a build was tried: not again in this process
    building: threading.Thread | None = None
    off: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_KERNELS = _Kernels()


def kernels() -> Any | None:
    """The compiled kernels when they are built (loaded from the cache on first call), else ``None``: this never
    builds them (see :func:`ensure_built`)."""
    k = _KERNELS
    if k.off:
        return None
    if not k.looked and k.building is None:
        with k.lock:
            if not k.looked:
                k.module, k.looked = _load(allow_build=False), True
    return k.module


def switched_off() -> bool:
    """Whether the user (``ARCHSEARCH_NATIVE=0``) or :func:`turned_off` asked for PyTorch's own layers, which also
    keeps the faster training paths written in PyTorch's ops (:mod:`archsearch.nn.native.squeeze_excite`) off."""
    return _KERNELS.off or os.environ.get("ARCHSEARCH_NATIVE", "1") == "0"


def ensure_built(background: bool = False) -> Any | None:
    """Build the kernels if the cache has none (about 20 s, once per machine) and load them. ``background``: build
    in a thread, saying so on stderr, and return at once (layers use PyTorch's kernels until the build is done);
    what a supernet search does. Returns the kernels when they are ready now, else ``None``."""
    k = _KERNELS
    if kernels() is not None or (k.reason is not None and k.reason.startswith("turned off")):
        return k.module
    with k.lock:
        if k.building is not None or k.module is not None or k.tried:
            return k.module
        k.tried = True
        if not background:
            k.module, k.looked = _load(allow_build=True), True
            return k.module

        def run() -> None:
            module = _load(allow_build=True)
            k.module, k.looked, k.building = module, True, None

        print("archsearch: building the compiled CPU kernels in the background (once per machine, about 20 s); "
              "until they are ready, training runs on PyTorch's own kernels", file=sys.stderr, flush=True)  # fmt: skip
        k.building = threading.Thread(target=run, name="archsearch-kernel-build", daemon=True)
        k.building.start()
        return None


def wait_for_build() -> Any | None:
    """The kernels once a background :func:`ensure_built` has finished (at once when none is going on)."""
    thread = _KERNELS.building
    if thread is not None:
        thread.join()
    return kernels()


def install() -> None:
    """Make :func:`depthwise_conv` the training convolution of :class:`archsearch.nn.conv.DepthwiseConv2d` (it uses
    the kernels when they are built and the batch allows it, else ``F.conv2d``). Called by the training loop and the
    supernet search; idempotent. Also puts the training-mode batch norms with weight and bias (and the ReLUs after
    them) of :func:`archsearch.nn.fused.run_layers` on :func:`archsearch.nn.native.affine_norm.norm_relu`: the
    blocks of MobileNet-style networks, conv-BN-ReLU layers (the baseline CNN, chain networks) and the cell ops of
    final DARTS and NB201 networks; and their squeeze-excitation blocks on
    :func:`archsearch.nn.native.squeeze_excite.squeeze_excite`."""
    from archsearch.nn import fused
    from archsearch.nn.native.affine_norm import norm_relu
    from archsearch.nn.native.squeeze_excite import squeeze_excite

    DepthwiseConv2d.training_conv = staticmethod(depthwise_conv)
    fused.training_norm = norm_relu
    fused.training_squeeze = squeeze_excite


def loaded() -> Any:
    """The kernels a layer's forward found available (its backward uses them even inside :func:`turned_off`)."""
    return _KERNELS.module


@contextmanager
def turned_off() -> Iterator[None]:
    """Inside the block every layer runs on PyTorch's own kernels (comparisons, benchmarks)."""
    before = _KERNELS.off
    _KERNELS.off = True
    try:
        yield
    finally:
        _KERNELS.off = before


def unavailable_reason() -> str | None:
    """Why :func:`kernels` is ``None`` (``None`` when the kernels are in use)."""
    kernels()
    return _KERNELS.reason


def _load(allow_build: bool) -> Any | None:
    """The kernels from the cache, or built now when ``allow_build``; ``None`` with the reason recorded otherwise."""
    if os.environ.get("ARCHSEARCH_NATIVE", "1") == "0":
        _KERNELS.reason = "turned off by ARCHSEARCH_NATIVE=0"
        return None
    capability = torch.backends.cpu.get_cpu_capability()
    name = f"archsearch_kernels_{capability.lower()}"
    try:
        from archsearch.nn.native.build import build_and_load

        # OpenMP as PyTorch uses it (at::parallel_for is compiled in here); the loader binds it to the libgomp.so.1
        # PyTorch has already loaded, so there is one thread pool
        module = build_and_load(name, Path(__file__).with_name("kernels.cpp"),
                                ["-O3", "-fopenmp", *_ISA_FLAGS.get(capability, [])], ["-fopenmp"],
                                allow_build=allow_build)  # fmt: skip
    except Exception as exc:  # a missing compiler or ninja raises RuntimeError, OSError or a build error
        lines = str(exc).strip().splitlines() or [""]
        first_error = next((line.strip() for line in lines if "error:" in line.lower()), lines[0].strip())
        reason = f"{type(exc).__name__}: {first_error}"
        _KERNELS.reason = reason
        warnings.warn(
            f"archsearch's compiled CPU kernels are not used ({reason}); training runs on PyTorch's own "
            "kernels (the same math, slower). Set ARCHSEARCH_NATIVE=0 to silence this.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    _KERNELS.reason = None if module is not None else "not built yet (python -m archsearch.nn.native builds them)"
    return module


def eligible(x: torch.Tensor, channels: int) -> bool:
    """Whether the kernels take this batch: float32 channels-last on the CPU, ``channels`` a multiple of 16,
    gradients recorded, nothing tracing, compiling, exporting or casting it."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and channels % 16 == 0
        and x.is_contiguous(memory_format=torch.channels_last)
        and torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not _exporting()
    )


def graph_backward(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], needs: Sequence[bool], grad: torch.Tensor
) -> tuple[torch.Tensor | None, ...]:
    """The gradients of ``fn(*inputs)`` (for the inputs that ``needs`` them) by PyTorch's own differentiable ops.

    What each kernel's backward returns when autograd runs it with ``create_graph=True`` (a double backward: GraSP's
    Hessian-gradient product, a Hessian-vector product): the kernels' gradients have no graph of their own, and a
    second derivative through them would silently leave their part out."""
    wanted = [t for t, n in zip(inputs, needs) if n]
    with torch.enable_grad():
        got = iter(torch.autograd.grad(fn(*inputs), wanted, grad, create_graph=True, allow_unused=True))
    return tuple(next(got) if n else None for n in needs)


def hooked(*modules: nn.Module) -> bool:
    """Whether a hook watches these modules' calls (a zero-cost proxy reading a ReLU's output, say): then each
    must run as itself."""
    if module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
               for m in modules)  # fmt: skip


def _exporting() -> bool:
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting())


# --- depthwise convolution -------------------------------------------------------------------------------------
class _DepthwiseConv(torch.autograd.Function):
    """oneDNN's forward; the input gradient at stride 1 as oneDNN's forward convolution with the kernel flipped
    (the same sums; oneDNN's own backward-data is 2-8x slower on channels-last depthwise convolutions); the weight
    gradient of 5x5 and 7x7 kernels on the compiled kernel, of others by oneDNN."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        s, p, k, C = ctx.stride, ctx.padding, weight.shape[-1], weight.shape[0]
        if torch.is_grad_enabled():  # a double backward (see graph_backward)
            conv = lambda x, w: F.conv2d(x, w, None, s, p, 1, C)  # noqa: E731
            return (*graph_backward(conv, (x, weight), ctx.needs_input_grad[:2], grad), None, None)
        grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            if s == 1:
                grad_x = F.conv2d(grad, weight.flip(-1, -2), None, 1, k - 1 - p, 1, C)
            else:
                grad_x = torch.ops.aten.convolution_backward(
                    grad, x, weight, None, [s, s], [p, p], [1, 1], False, [0, 0], C, [True, False, False]
                )[0]
        if ctx.needs_input_grad[1]:
            if k in (5, 7):
                grad_w = loaded().depthwise_weight_grad(x, grad, k, s, p, 1)  # type: ignore[union-attr]
            else:
                grad_w = torch.ops.aten.convolution_backward(
                    grad, x, weight, None, [s, s], [p, p], [1, 1], False, [0, 0], C, [False, True, False]
                )[1]
        return grad_x, grad_w, None, None


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> torch.Tensor:
    """An undilated depthwise convolution without bias, its backward pass as :class:`_DepthwiseConv` describes
    when the batch allows it (square 3x3, 5x5 or 7x7 kernel, padding below the kernel size), else plain ``F.conv2d``."""
    k = weight.shape[-1]
    if (
        k == weight.shape[-2]
        and k in (3, 5, 7)
        and padding < k
        and (x.requires_grad or weight.requires_grad)
        and eligible(x, x.shape[1])
        and kernels() is not None
    ):
        return _DepthwiseConv.apply(x, weight, stride, padding)
    return F.conv2d(x, weight, None, stride, padding, 1, weight.shape[0])


# --- batch norm without affine weights ----------------------------------------------------------------------------
class _BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, eps: float, relu: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, mean, invstd, var = loaded().batch_norm_forward(x, eps, relu)  # type: ignore[union-attr]
        ctx.save_for_backward(x, mean, invstd, out if relu else None)
        ctx.eps, ctx.relu = eps, relu
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, None, None]:
        x, mean, invstd, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward (see graph_backward)
            return (*graph_backward(lambda x: norm_as_pytorch(x, None, None, ctx.eps, ctx.relu), (x,), (True,),
                                    grad), None, None)  # fmt: skip
        return loaded().batch_norm_backward(grad, x, mean, invstd, out, 1.0)[0], None, None  # type: ignore[union-attr]


def norm_as_pytorch(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float, relu: bool
) -> torch.Tensor:
    """A training-mode batch norm (then a ReLU) on PyTorch's ops, no running statistics: what the kernels compute."""
    out = F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    return F.relu(out) if relu else out


def batch_norm(x: torch.Tensor, norms: Sequence[nn.BatchNorm2d], relu: bool = False) -> torch.Tensor:
    """Training-mode batch norms without affine weights that all see ``x`` (one, or the same layer of several
    edges): normalise once, on the compiled kernel where the batch allows it, and update every module's running
    statistics as its own run would have. ``relu``: a ReLU follows, fused into the kernel."""
    first = norms[0]
    if any(n.affine or not n.training or n.eps != first.eps for n in norms):
        raise ValueError("batch_norm takes training-mode batch norms without affine weights and with one eps")
    if eligible(x, x.shape[1]) and kernels() is not None:
        out, mean, var = _BatchNorm.apply(x, first.eps, relu)
    elif len(norms) == 1:
        return F.relu(first(x)) if relu else first(x)
    else:
        out, mean, invstd = torch.native_batch_norm(x, None, None, None, None, True, 0.0, first.eps)
        var = (invstd.detach() ** -2 - first.eps).clamp_min(0.0)
        out = F.relu(out) if relu else out
    update_running_stats(norms, mean, var, x.numel() // x.shape[1])
    return out


def update_running_stats(norms: Sequence[nn.BatchNorm2d], mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
    """Each module's running statistics, as its own training-mode forward on a batch of ``n`` values per channel
    with this (biased) ``var`` would have updated them."""
    if not norms[0].track_running_stats:
        return
    ext = kernels()
    if ext is not None and mean.device.type == "cpu" and mean.dtype == torch.float32:
        for norm in norms:
            momentum = -1.0 if norm.momentum is None else norm.momentum
            ext.update_running_stats(
                norm.running_mean, norm.running_var, norm.num_batches_tracked, mean, var, momentum, n
            )
        return
    with torch.no_grad():
        mean, unbiased = mean.detach(), var.detach() * (n / max(n - 1, 1))
        for norm in norms:
            norm.num_batches_tracked.add_(1)  # type: ignore[union-attr,operator]
            momentum = norm.momentum
            if momentum is None:  # cumulative average
                momentum = 1.0 / float(norm.num_batches_tracked)  # type: ignore[arg-type]
            norm.running_mean.lerp_(mean, momentum)  # type: ignore[union-attr,arg-type]
            norm.running_var.lerp_(unbiased, momentum)  # type: ignore[union-attr,arg-type]


# --- DARTS's average pooling ----------------------------------------------------------------------------------------
class _AvgPool3(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, stride: int) -> torch.Tensor:
        ctx.shape, ctx.stride = (x.shape[2], x.shape[3]), stride
        return loaded().avg_pool3_forward(x, stride)  # type: ignore[union-attr]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        if torch.is_grad_enabled():  # a double backward (see graph_backward); the pooling is linear in x
            pool = lambda g: F.avg_pool2d(g, 3, ctx.stride, 1, count_include_pad=False)  # noqa: E731
            zeros = grad.new_zeros((grad.shape[0], grad.shape[1], *ctx.shape)).requires_grad_()
            return graph_backward(pool, (zeros,), (True,), grad)[0], None
        return loaded().avg_pool3_backward(grad, *ctx.shape, ctx.stride), None  # type: ignore[union-attr]


def avg_pool(x: torch.Tensor, pool: nn.AvgPool2d) -> torch.Tensor:
    """``pool(x)``; DARTS's 3x3 average pooling (padding 1, pixels inside the image only, stride 1 or 2) runs on
    the compiled kernel where the batch allows it (oneDNN's takes 3-5x longer on these channels-last batches)."""
    stride = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
    if (
        pool.kernel_size in (3, (3, 3))
        and pool.padding in (1, (1, 1))
        and pool.stride in (1, 2, (1, 1), (2, 2))
        and not pool.count_include_pad
        and not pool.ceil_mode
        and pool.divisor_override is None
        and eligible(x, x.shape[1])
        and kernels() is not None
    ):
        return _AvgPool3.apply(x, stride)
    return pool(x)

"""The compiled batch norm with weight and bias (and the ReLU after it) that networks train with: PyTorch's results
for any channel count, only where it applies, and a step of each kind of network equal to the unfused one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.nn import fused, native
from archsearch.nn.native.affine_norm import norm_relu
from archsearch.spaces import get_space

CL = torch.channels_last

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason=f"archsearch's CPU kernels are not built here: {native.unavailable_reason()}"
)
native.install()


def _batch(C: int, H: int, seed: int = 0, B: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, H, H, generator=gen) * 2 + 3.0).to(memory_format=CL)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 2e-5) -> None:
    a, b = a.detach(), b.detach()
    assert a.shape == b.shape
    assert float((a - b).abs().max()) <= tol * max(float(b.abs().max()), 1.0), float((a - b).abs().max())


def _norm(C: int, momentum: float | None = 0.1) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(C, momentum=momentum)
    gen = torch.Generator().manual_seed(C)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(C, generator=gen))
        norm.bias.copy_(torch.randn(C, generator=gen))
    return norm


@pytest.mark.parametrize("C", [8, 24, 17, 80])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_it_matches_pytorch_for_any_channel_count(C: int, relu: bool, momentum: float | None) -> None:
    ours, theirs = _norm(C, momentum), _norm(C, momentum)
    for step in range(3):
        x = _batch(C, 4, seed=step).requires_grad_()
        out = norm_relu(x, ours, nn.ReLU() if relu else None)
        assert out is not None and type(out.grad_fn).__name__ == "_AffineBatchNormBackward"
        ref = F.relu(theirs(x)) if relu else theirs(x)
        _close(out, ref)
        g = torch.randn_like(out)
        inputs = (x, ours.weight, ours.bias), (x, theirs.weight, theirs.bias)
        for a, b in zip(torch.autograd.grad(out, inputs[0], g), torch.autograd.grad(ref, inputs[1], g)):
            _close(a, b, 1e-4)
    _close(ours.running_mean, theirs.running_mean)
    _close(ours.running_var, theirs.running_var)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3


def test_the_relu_mask_of_the_backward_is_exactly_where_the_output_was_positive() -> None:
    # The backward recomputes the mask from x; one element decided differently from the forward would change a
    # channel's bias gradient by 1 here, where every output gradient is 1 (sums of ones are exact in float).
    norm = _norm(32)
    with torch.no_grad():
        norm.bias.zero_()  # half the outputs below zero, many of them within rounding of it
    x = _batch(32, 16, B=64).requires_grad_()
    out = norm_relu(x, norm, nn.ReLU())
    assert out is not None
    (_, dbias) = torch.autograd.grad(out, (x, norm.bias), torch.ones_like(out))
    assert torch.equal(dbias, (out > 0).sum(dim=(0, 2, 3)).float())


def test_it_runs_only_where_it_applies() -> None:
    norm, relu = _norm(24), nn.ReLU()
    x = _batch(24, 4).requires_grad_()
    assert norm_relu(x, norm, relu) is not None
    assert norm_relu(x.contiguous(), norm, relu) is None  # not channels-last
    assert norm_relu(_batch(24, 3, B=1).requires_grad_(), norm, relu) is None  # 9 pixels x 24 channels: no whole rows
    with torch.no_grad():
        assert norm_relu(x, norm, relu) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert norm_relu(x, norm, relu) is None
    with native.turned_off():
        assert norm_relu(x, norm, relu) is None
    assert norm_relu(x, norm.eval(), relu) is None
    assert norm_relu(x, nn.BatchNorm2d(24, affine=False), relu) is None
    handle = relu.register_forward_hook(lambda *_: None)
    assert norm_relu(x, norm.train(), relu) is None  # a hook watches the ReLU: it must run as itself
    handle.remove()
    assert norm_relu(x, norm, relu) is not None


#: networks whose layers go through ``fused.run_layers``, with build options small enough for a test
NETWORKS = {"mobile": {"width": 0.25}, "baseline": None, "nb201": {"channels": 8, "cells_per_stage": 1},
            "darts": {"channels": 8, "cells": 3}, "chain": {"width": 0.25}}  # fmt: skip


def _network(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(0)
    if kind == "baseline":
        return build_from_spec(model_spec(1, 10, 12, model="baseline")).to(memory_format=CL)
    genotype = get_space(kind).sample(np.random.default_rng(seed))
    spec = model_spec(1, 10, 12, genotype=genotype, build=NETWORKS[kind])
    return build_from_spec(spec).to(memory_format=CL)


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_a_network_step_is_the_same_with_the_kernel(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(8, 1, 12, 12, generator=torch.Generator().manual_seed(1)).to(memory_format=CL)
    y = torch.arange(8) % 10
    calls: list[bool] = []

    def counted(x: torch.Tensor, norm: nn.BatchNorm2d, relu: nn.Module | None) -> torch.Tensor | None:
        out = norm_relu(x, norm, relu)
        calls.append(out is not None)
        return out

    results = []
    for kernel in (counted, None):
        monkeypatch.setattr(fused, "training_norm", kernel)
        net = _network(kind)
        torch.manual_seed(2)  # the same dropout masks in both
        out = net(x)
        loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, y)
        grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
        results.append((loss, grads, [b.clone() for b in net.buffers()]))
    norms = [m for m in _network(kind).modules() if type(m) is nn.BatchNorm2d and m.affine]
    # every batch norm with weight and bias ran on the kernel (a cell's unused inputs' norms do not run at all)
    assert calls and all(calls) and len(calls) <= len(norms)
    (loss_a, grads_a, bufs_a), (loss_b, grads_b, bufs_b) = results
    _close(loss_a, loss_b)
    # Float rounding decides the ReLU of a pre-activation within ~1e-6 of zero differently in the two (in the mobile
    # network's batch, one of a 48x6x6 layer's 13,824), which moves that layer's and earlier layers' gradients by a
    # few percent of their largest entry; a wrong formula moves them in direction. (Gradients near 1e-7, of the
    # biases before a batch norm, are rounding either way.)
    for a, b in zip(grads_a, grads_b):
        assert (a is None) == (b is None)
        if a is None or b is None:
            continue
        tiny = float((a - b).abs().max()) <= 1e-5
        assert tiny or float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0)) > 0.995
    for a, b in zip(bufs_a, bufs_b):
        _close(a.float(), b.float())


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_hooks_on_a_networks_relus_still_see_every_call(kind: str) -> None:
    net = _network(kind)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    seen: list[nn.Module] = []
    for relu in relus:
        relu.register_forward_hook(lambda module, inputs, output: seen.append(module))
    net(torch.randn(8, 1, 12, 12).to(memory_format=CL)).sum().backward()
    assert len(relus) > 3 and sorted(map(id, seen)) == sorted(map(id, relus))  # each ReLU runs once a forward

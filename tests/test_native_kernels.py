"""archsearch.nn.native: the compiled CPU kernels give PyTorch's results (float rounding aside), run only where they
apply, and a build that fails leaves training on PyTorch's kernels with a warning that says why."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.nn import native
from archsearch.nn.conv import DepthwiseConv2d
from archsearch.oneshot import fused_sum

CL = torch.channels_last

pytestmark = pytest.mark.skipif(
    native.kernels() is None, reason=f"archsearch's CPU kernels are not built here: {native.unavailable_reason()}"
)
native.install()  # what the training loop and the supernet search do


def _batch(C: int, H: int, seed: int = 0, B: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, H, H, generator=gen) * 2 + 0.5).to(memory_format=CL)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 2e-5) -> None:
    a, b = a.detach(), b.detach()
    assert a.shape == b.shape
    scale = max(float(b.abs().max()), 1.0)
    assert float((a - b).abs().max()) <= tol * scale, float((a - b).abs().max())


@pytest.mark.parametrize(
    ("C", "H", "k", "stride", "dilation"),
    [(16, 8, 5, 1, 1), (32, 7, 5, 2, 1), (16, 9, 3, 1, 1), (16, 8, 3, 2, 1), (16, 10, 5, 1, 2), (16, 11, 3, 1, 2),
     (16, 9, 7, 1, 1), (32, 8, 7, 2, 1)],
)
def test_depthwise_conv_gradients_match_pytorch(C: int, H: int, k: int, stride: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = DepthwiseConv2d(C, k, stride, dilation * (k // 2), dilation)
    x = _batch(C, H).requires_grad_()
    out = conv(x)
    assert (out.grad_fn is not None and "DepthwiseConv" in type(out.grad_fn).__name__) or dilation > 1
    g = torch.randn_like(out)
    gx, gw = torch.autograd.grad(out, (x, conv.weight), g)
    ref = F.conv2d(x, conv.weight, None, stride, dilation * (k // 2), dilation, C)
    rx, rw = torch.autograd.grad(ref, (x, conv.weight), g)
    _close(out, ref)
    _close(gx, rx)
    _close(gw, rw, 1e-4)


def test_depthwise_weight_gradient_kernel_against_onednn() -> None:
    x = _batch(48, 12, B=3)
    for k, stride in ((5, 1), (5, 2), (3, 1), (3, 2), (7, 1), (7, 2)):
        w = torch.randn(48, 1, k, k)
        p = k // 2
        g = torch.randn_like(F.conv2d(x, w, None, stride, p, 1, 48))
        ours = native.kernels().depthwise_weight_grad(x, g, k, stride, p, 1)
        ref = torch.ops.aten.convolution_backward(
            g, x, w, None, [stride] * 2, [p, p], [1, 1], False, [0, 0], 48, [False, True, False]
        )[1]
        _close(ours, ref, 1e-4)


def test_the_kernels_run_only_where_they_apply() -> None:
    conv = DepthwiseConv2d(16, 5, 1, 2)
    x = _batch(16, 8).requires_grad_()
    assert type(conv(x).grad_fn).__name__ == "_DepthwiseConvBackward"
    odd = DepthwiseConv2d(24, 5, 1, 2)
    assert type(odd(_batch(24, 8).requires_grad_()).grad_fn).__name__ != "_DepthwiseConvBackward"  # 24 channels
    assert type(conv(x.contiguous()).grad_fn).__name__ != "_DepthwiseConvBackward"  # not channels-last
    with torch.no_grad():
        assert conv(x).grad_fn is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert type(conv(x).grad_fn).__name__ != "_DepthwiseConvBackward"
    with native.turned_off():
        assert type(conv(x).grad_fn).__name__ != "_DepthwiseConvBackward"
    assert type(conv(x).grad_fn).__name__ == "_DepthwiseConvBackward"


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_matches_pytorch(momentum: float | None, relu: bool) -> None:
    ours = [nn.BatchNorm2d(32, affine=False, momentum=momentum) for _ in range(2)]
    theirs = [nn.BatchNorm2d(32, affine=False, momentum=momentum) for _ in range(2)]
    for step in range(3):
        x = _batch(32, 6, seed=step).requires_grad_()
        out = native.batch_norm(x, ours, relu=relu)
        assert type(out.grad_fn).__name__ == "_BatchNormBackward"
        refs = [F.relu(n(x)) if relu else n(x) for n in theirs]
        _close(out, refs[0])
        g = torch.randn_like(out)
        _close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(refs[0], x, g)[0])
    for a, b in zip(ours, theirs):
        _close(a.running_mean, b.running_mean)
        _close(a.running_var, b.running_var)
        assert int(a.num_batches_tracked) == int(b.num_batches_tracked) == 3


def test_batch_norm_of_a_large_mean_is_accurate() -> None:
    x = (_batch(16, 16) * 0.01 + 1000.0).contiguous(memory_format=CL)
    norm = nn.BatchNorm2d(16, affine=False)
    out = native.batch_norm(x, [norm])
    ref = F.batch_norm(x.double(), None, None, None, None, True, 0.0, norm.eps)
    assert float((out.double() - ref).abs().max()) < 2e-2  # float32 input holds x - mean to ~1e-4 / 0.01


@pytest.mark.parametrize(("H", "stride"), [(8, 1), (7, 1), (8, 2), (9, 2)])
def test_average_pooling_matches_pytorch(H: int, stride: int) -> None:
    pool = nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    x = _batch(32, H).requires_grad_()
    out = native.avg_pool(x, pool)
    assert type(out.grad_fn).__name__ == "_AvgPool3Backward"
    assert out.is_contiguous(memory_format=CL)
    ref = pool(x)
    _close(out, ref)
    g = torch.randn_like(ref)
    _close(torch.autograd.grad(out, x, g)[0], torch.autograd.grad(ref, x, g)[0])
    padded = nn.AvgPool2d(3, stride, 1)  # counting the padding: not DARTS's pooling, PyTorch's kernel
    assert type(native.avg_pool(x, padded).grad_fn).__name__ != "_AvgPool3Backward"


def test_mixed_sum_matches_the_weighted_sum_it_replaces() -> None:
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(4), 0).requires_grad_()
    zs = [_batch(16, 8, seed=s).requires_grad_() for s in (1, 2)]
    ys = [_batch(16, 8, seed=s).requires_grad_() for s in (3, 4)]
    ours = [nn.BatchNorm2d(16, affine=False) for _ in zs]
    theirs = [nn.BatchNorm2d(16, affine=False) for _ in zs]
    assert all(fused_sum.can_fold(z, n) for z, n in zip(zs, ours))
    out = fused_sum.mixed_sum(
        [(weights[i], zs[i], ours[i]) for i in range(2)], [(weights[2 + j], ys[j]) for j in range(2)]
    )
    ref = sum(weights[i] * theirs[i](zs[i]) for i in range(2)) + sum(weights[2 + j] * ys[j] for j in range(2))
    _close(out, ref)
    g = torch.randn_like(out)
    inputs = (weights, *zs, *ys)
    for a, b in zip(torch.autograd.grad(out, inputs, g), torch.autograd.grad(ref, inputs, g)):
        _close(a, b, 1e-4)
    for a, b in zip(ours, theirs):
        _close(a.running_mean, b.running_mean)
        _close(a.running_var, b.running_var)


def test_a_supernet_step_gives_the_same_gradients_with_and_without_the_kernels() -> None:
    from archsearch.oneshot.supernets import DartsSupernet

    ops = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "dil_conv_5x5", "none")
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)).to(memory_format=CL)
    y = torch.tensor([0, 1, 2, 3])
    grads = []
    for off in (False, True):
        torch.manual_seed(0)
        net = DartsSupernet(16, 3, 4, 3, ops).to(memory_format=CL)
        if off:
            with native.turned_off():
                loss = F.cross_entropy(net(x), y)
        else:
            loss = F.cross_entropy(net(x), y)
        grads.append(torch.autograd.grad(loss, list(net.parameters())))
    for a, b in zip(*grads):
        _close(a, b, 2e-4)


def test_a_backward_pass_started_with_the_kernels_finishes_with_them() -> None:
    norm = nn.BatchNorm2d(16, affine=False)
    x = _batch(16, 8).requires_grad_()
    out = native.batch_norm(x, [norm], relu=True)
    with native.turned_off():
        (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()


def test_a_build_that_fails_warns_and_training_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import torch.utils.cpp_extension as cpp

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error building extension 'x'\nc++: error: no compiler here\nninja: build stopped")

    monkeypatch.setattr(cpp, "load", broken)
    monkeypatch.setattr(native, "_KERNELS", native._Kernels())
    monkeypatch.setenv("ARCHSEARCH_KERNEL_CACHE", str(tmp_path / "empty"))  # nothing cached: it must build
    with pytest.warns(RuntimeWarning, match="are not used.*no compiler here.*PyTorch's own kernels"):
        assert native.ensure_built() is None
    assert "no compiler here" in (native.unavailable_reason() or "")
    conv = DepthwiseConv2d(16, 5, 1, 2)
    x = _batch(16, 8).requires_grad_()
    out = conv(x)
    assert type(out.grad_fn).__name__ != "_DepthwiseConvBackward"
    assert native.batch_norm(x, [nn.BatchNorm2d(16, affine=False)]).shape == x.shape
    monkeypatch.setattr(native, "_KERNELS", native._Kernels())
    monkeypatch.setenv("ARCHSEARCH_NATIVE", "0")
    assert native.kernels() is None and native.unavailable_reason() == "turned off by ARCHSEARCH_NATIVE=0"


def test_the_alpha_step_freezes_the_weights_only_while_it_builds_its_graph() -> None:
    from archsearch.oneshot.darts import _frozen

    params = [nn.Parameter(torch.ones(2)), nn.Parameter(torch.ones(2), requires_grad=False)]
    with pytest.raises(KeyError), _frozen(params):
        assert not any(p.requires_grad for p in params)
        raise KeyError
    assert [p.requires_grad for p in params] == [True, False]

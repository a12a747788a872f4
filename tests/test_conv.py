"""The phase-decomposed dilated depthwise convolution computes exactly what ``F.conv2d`` computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.nn.conv import DepthwiseConv2d
from archsearch.nn.ops import DilConv

CL = torch.channels_last


def _same_gradients(out: torch.Tensor, ref: torch.Tensor, params: tuple[torch.Tensor, ...]) -> None:
    """``out`` and ``ref`` send the same gradient to each of ``params`` (float64, to rounding)."""
    grad = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(ref, params, grad)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [16, 15, 7])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation"), [(3, 1, 2, 2), (5, 1, 4, 2), (3, 2, 2, 2), (5, 2, 4, 2), (3, 1, 3, 3)]
)
def test_dilated_depthwise_matches_conv2d(size: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
    torch.manual_seed(0)
    conv = DepthwiseConv2d(6, kernel, stride, padding, dilation).double()
    assert conv._phase_padding() is not None  # the rewrite is what runs here
    x = torch.randn(3, 6, size, size, dtype=torch.float64).to(memory_format=CL).requires_grad_()
    out = conv(x)
    ref = F.conv2d(x, conv.weight, None, stride, padding, dilation, 6)
    assert out.shape == ref.shape
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    _same_gradients(out, ref, (x, conv.weight))


def test_rewrite_skips_what_it_does_not_cover() -> None:
    assert DepthwiseConv2d(4, 3, 1, 1, 1)._phase_padding() is None  # undilated
    assert DepthwiseConv2d(4, 3, 3, 2, 2)._phase_padding() is None  # stride neither 1 nor the dilation
    assert DepthwiseConv2d(4, 3, 1, 3, 2)._phase_padding() is None  # padding not a multiple of the dilation
    conv = DepthwiseConv2d(4, 3, 1, 3, 2)
    x = torch.randn(2, 4, 9, 9).to(memory_format=CL)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, None, 1, 3, 2, 4))
    conv = DepthwiseConv2d(4, 3, 1, 2, 2)
    x = torch.randn(2, 4, 9, 9)  # contiguous: plain nn.Conv2d
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight, None, 1, 2, 2, 4))


def test_same_parameters_as_conv2d() -> None:
    conv = DepthwiseConv2d(8, 5, 2, 4, 2)
    plain = nn.Conv2d(8, 8, 5, 2, 4, 2, groups=8, bias=False)
    assert conv.state_dict().keys() == plain.state_dict().keys()
    assert conv.weight.shape == plain.weight.shape
    plain.load_state_dict(conv.state_dict())
    op = DilConv(8, 8, 3, 1, 2, 2, affine=False)
    assert isinstance(op.op[1], DepthwiseConv2d) and isinstance(op.op[1], nn.Conv2d)


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("h", "w"), [(1, 1), (2, 2), (3, 2), (4, 4), (7, 7)])
def test_a_kernel_wider_than_the_image_is_cropped_with_the_same_outputs_and_gradients(
    kernel: int, stride: int, h: int, w: int
) -> None:
    from archsearch.nn.conv import _kernel_crop

    torch.manual_seed(0)
    conv = DepthwiseConv2d(6, kernel, stride, kernel // 2).double()
    x = torch.randn(2, 6, h, w, dtype=torch.float64).to(memory_format=CL).requires_grad_()
    out = conv(x)
    ref = F.conv2d(x, conv.weight, None, stride, kernel // 2, 1, 6)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    _same_gradients(out, ref, (x, conv.weight))
    crop = _kernel_crop(h, w, kernel, stride, kernel // 2)
    # a tap is kept exactly when some output reads the image through it
    reach = [any(0 <= stride * o - kernel // 2 + i < size for size in (h, w)
                 for o in range((size + 2 * (kernel // 2) - kernel) // stride + 1)) for i in range(kernel)]  # fmt: skip
    assert crop == min(reach.index(True), kernel - 1 - max(i for i, r in enumerate(reach) if r))
    if (kernel, h, w) == (7, 2, 2):
        assert crop == 2  # a 7x7 kernel on a 2x2 image: its central 3x3 taps


def test_a_small_pointwise_batch_runs_as_a_matrix_product_with_conv2ds_sums() -> None:
    from archsearch.nn.conv import MATMUL_PIXELS, PointwiseConv2d

    torch.manual_seed(0)
    for batch, size, stride, bias in ((4, 3, 1, True), (16, 1, 1, False), (4, 8, 2, True), (64, 28, 1, False)):
        conv = PointwiseConv2d(8, 12, stride, bias=bias).double()
        x = torch.randn(batch, 8, size, size, dtype=torch.float64).to(memory_format=CL).requires_grad_()
        out = conv(x)
        small = batch * (-(-size // stride)) ** 2 <= MATMUL_PIXELS
        assert (type(out.grad_fn).__name__ != "ConvolutionBackward0") == small
        ref = F.conv2d(x, conv.weight, conv.bias, stride)
        assert out.is_contiguous(memory_format=CL)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        _same_gradients(out, ref, (x, conv.weight) + ((conv.bias,) if bias else ()))

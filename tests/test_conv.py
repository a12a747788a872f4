"""The phase-decomposed dilated depthwise convolution computes exactly what ``F.conv2d`` computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.nn.conv import DepthwiseConv2d
from archsearch.nn.ops import DilConv

CL = torch.channels_last


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
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, (x, conv.weight), grad)
    want = torch.autograd.grad(ref, (x, conv.weight), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


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

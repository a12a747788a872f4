"""The depthwise convolution of the DARTS ops, with a faster CPU path for dilated ones (same math).

On the CPU (oneDNN, channels-last tensors) a *dilated* depthwise convolution is slow, its backward pass above all:
forward and backward of a 3x3, dilation-2 one on a 64x16x32x32 batch take about 30 ms where the undilated one takes
6 ms. A dilation-``d`` convolution at stride 1 only ever combines pixels of the same phase ``(h mod d, w mod d)``, so
it equals the undilated convolution applied to the ``d*d`` phase sub-images (stacked on the batch axis) and
interleaved back; at stride ``d`` it reads phase ``(0, 0)`` only. :class:`DepthwiseConv2d` computes it that way: the
same sums, outputs and gradients equal to float rounding, 4-10x faster forward and backward (``tests/test_conv.py``).

It is an ``nn.Conv2d`` with the same parameters and state-dict keys, and it runs as ``nn.Conv2d`` on other devices
(cuDNN has no such gap), other memory formats and settings the rewrite does not cover.

:class:`PointwiseConv2d` routes around a PyTorch bug instead: the CPU backward of a *strided* 1x1 convolution on a
channels-last input with few channels (e.g. 4 in, 2 out) writes past its buffer (heap corruption, a crash or a hang;
``tests/scripts/conv_sweep.py`` finds the shapes). A strided 1x1 convolution only reads every ``s``-th pixel, so it
equals a stride-1 1x1 convolution over the subsampled input, which is what it runs: the same sums on every device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


def _channels_last_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise (``groups == channels``) convolution; dilated ones run on the CPU as undilated convolutions over
    the input's phase sub-images (see the module docstring)."""

    #: the undilated convolution ``(x, weight, stride, padding)`` used while training, when one is installed
    #: (``archsearch.nn.native``'s, whose weight gradient runs on a compiled CPU kernel); ``None``: ``F.conv2d``
    training_conv: ClassVar[Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor] | None] = None
    #: drop the taps that only ever reach the zero padding (:func:`_kernel_crop`); off only to measure its gain
    crop_kernels: ClassVar[bool] = True

    def __init__(
        self, channels: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1, bias: bool = False
    ) -> None:
        super().__init__(
            channels, channels, kernel, stride=stride, padding=padding, dilation=dilation, groups=channels, bias=bias
        )

    def _phase_padding(self) -> int | None:
        """The padding of the undilated convolution on phase images, when the rewrite applies."""
        (d, d_w), (s, s_w), (p, p_w) = self.dilation, self.stride, self.padding  # type: ignore[misc]
        if d == 1 or (d, s, p) != (d_w, s_w, p_w) or s not in (1, d) or p % d or self.padding_mode != "zeros":
            return None
        return p // d

    def _undilated(
        self, x: torch.Tensor, stride: int, padding: int, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        weight = self.weight if weight is None else weight
        conv = type(self).training_conv
        if conv is not None and self.bias is None:
            return conv(x, weight, stride, padding)
        return F.conv2d(x, weight, self.bias, stride, padding, 1, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self._phase_padding()
        if pad is None or not _channels_last_cpu(x):
            (s, s_w), (p, p_w) = self.stride, self.padding  # type: ignore[misc]
            if self.dilation == (1, 1) and s == s_w and p == p_w and self.padding_mode == "zeros":
                crop = 0
                if self.crop_kernels and not _tracing(x):
                    crop = _kernel_crop(x.shape[-2], x.shape[-1], self.kernel_size[0], s, p)
                if crop:
                    return self._undilated(x, s, p - crop, self.weight[:, :, crop:-crop, crop:-crop])
                return self._undilated(x, s, p)
            return super().forward(x)
        d = self.dilation[0]
        if self.stride[0] == d:  # a stride-d dilated conv reads phase (0, 0) only
            phase = x[:, :, ::d, ::d].contiguous(memory_format=torch.channels_last)
            return self._undilated(phase, 1, pad)
        B, C, H, W = x.shape
        Hp, Wp = -(-H // d), -(-W // d)
        if (Hp * d, Wp * d) != (H, W):  # rows/columns past the edge are zeros, as the padding would be
            x = F.pad(x, (0, Wp * d - W, 0, Hp * d - H))
        # channels-last memory is (B, H, W, C): split H and W into (Hp, d) and (Wp, d) and stack the d*d phase
        # images on the batch axis, keeping C innermost (one copy each way)
        pixels = x.permute(0, 2, 3, 1).reshape(B, Hp, d, Wp, d, C)
        phases = pixels.permute(2, 4, 0, 1, 3, 5).reshape(d * d * B, Hp, Wp, C).permute(0, 3, 1, 2)
        out = self._undilated(phases, 1, pad)
        out = out.permute(0, 2, 3, 1).reshape(d, d, B, Hp, Wp, C).permute(2, 3, 0, 4, 1, 5)
        out = out.reshape(B, Hp * d, Wp * d, C)[:, :H, :W].permute(0, 3, 1, 2)
        return out.contiguous(memory_format=torch.channels_last)


#: up to this many pixels in a batch (batch x height x width) a channels-last 1x1 convolution on the CPU runs as a
#: matrix product (see :meth:`PointwiseConv2d._pointwise`)
MATMUL_PIXELS = 1024


def _kernel_crop(h: int, w: int, kernel: int, stride: int, padding: int) -> int:
    """How many rows and columns of taps on each side of a square kernel never reach the ``h x w`` image (only the
    zero padding): dropping them, with as much less padding, gives the same outputs and gradients for less work (a
    7x7 depthwise convolution of a 2x2 image is a 3x3 one, of a 1x1 image a per-channel scale). 0 when every tap
    reaches the image. The caller passes one stride and padding for both axes."""
    crop = kernel
    for size in (h, w):
        out = (size + 2 * padding - kernel) // stride + 1
        # tap i reads pixels stride*o - padding + i for o < out: never one of the image when it lies left of the
        # first one for the last output or right of the last one for the first output
        crop = min(crop, padding - stride * (out - 1), kernel - size - padding)
    return max(0, crop)


def _tracing(x: torch.Tensor) -> bool:
    """Whether ``x`` is being traced, exported or compiled (or is not a plain tensor: ``torch.export``'s fake and
    functional tensors): the graph keeps the plain convolution, valid for every input size."""
    exporting = getattr(torch.compiler, "is_exporting", None)
    return (type(x) is not torch.Tensor or torch.jit.is_tracing() or torch.compiler.is_compiling()
            or bool(exporting and exporting()))  # fmt: skip


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution that runs a strided one as a stride-1 one over the subsampled input (see the module
    docstring); same parameters and state-dict keys as ``nn.Conv2d``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, padding: int = 0, bias: bool = False) -> None:
        super().__init__(c_in, c_out, 1, stride=stride, padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (s, s_w), (p, p_w) = self.stride, self.padding  # type: ignore[misc]
        if self.padding_mode != "zeros" or x.dim() != 4 or self.groups != 1:
            return super().forward(x)
        if (s, s_w, p, p_w) == (1, 1, 0, 0):
            return self._pointwise(x)
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        if p or p_w:
            x = F.pad(x, (p_w, p_w, p, p))
        return self._pointwise(x[:, :, ::s, ::s_w].contiguous(memory_format=layout))

    def _pointwise(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-1 1x1 convolution; a small channels-last batch on the CPU as one matrix product (the same
        sums), which skips oneDNN's per-call cost: 1.5-2x faster forward and backward below ~1,000 pixels in all
        (a supernet's late layers, a test's tiny batches), slower above (``benchmarks/mobile_training.py``)."""
        B, C, H, W = x.shape
        if _tracing(x) or not _channels_last_cpu(x) or B * H * W > MATMUL_PIXELS:
            return F.conv2d(x, self.weight, self.bias)
        out = F.linear(x.permute(0, 2, 3, 1).reshape(B * H * W, C), self.weight.view(self.out_channels, C), self.bias)
        return out.view(B, H, W, self.out_channels).permute(0, 3, 1, 2)


def conv2d(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> nn.Conv2d:
    """A bias-free convolution; a 1x1 one is a :class:`PointwiseConv2d` (safe at any stride)."""
    if kernel == 1:
        return PointwiseConv2d(c_in, c_out, stride, padding)
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False)

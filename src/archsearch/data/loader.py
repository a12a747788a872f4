"""Batches on the device: an in-memory split, a seeded shuffling loader, and batched tensor augmentation.

Augmentation works on whole batches with tensor ops (random crop with padding, horizontal flip, cutout); no
per-sample Python runs in the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Split:
    """Images ``x`` (N x C x H x W; uint8 0..255 or float) and labels ``y`` (N, int64) of one split."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            shapes = f"{tuple(self.x.shape)}, {tuple(self.y.shape)}"
            raise ValueError(f"a split needs x of N x C x H x W and y of N; got {shapes}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0) -> Split:
        """A seeded random subset of ``n`` examples (all of them when ``n >= len(self)``)."""
        if n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.x[idx], self.y[idx])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1] (uint8 is divided by 255; floats are taken as they are)."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


@dataclass(frozen=True)
class Augment:
    """Batched augmentation: random crop after zero padding, horizontal flip, cutout of a square (0 = off)."""

    crop_padding: int = 0
    flip: bool = False
    cutout: int = 0

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip or self.cutout > 0

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Augment a normalised float batch; random draws come from ``gen`` (a CPU generator)."""
        b, _, h, w = x.shape
        dev = x.device
        if self.crop_padding > 0:
            p = self.crop_padding
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (b,), generator=gen).to(dev)
            dx = torch.randint(0, 2 * p + 1, (b,), generator=gen).to(dev)
            rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
            batch = torch.arange(b, device=dev)[:, None, None, None]
            chans = torch.arange(x.shape[1], device=dev)[None, :, None, None]
            x = padded[batch, chans, rows, cols]
        if self.flip:
            flip = (torch.rand(b, generator=gen) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.cutout > 0:
            cy = torch.randint(0, h, (b,), generator=gen).to(dev)
            cx = torch.randint(0, w, (b,), generator=gen).to(dev)
            top = cy - self.cutout // 2
            left = cx - self.cutout // 2
            ys = torch.arange(h, device=dev)[None, :, None]
            xs = torch.arange(w, device=dev)[None, None, :]
            rows = (ys >= top[:, None, None]) & (ys < top[:, None, None] + self.cutout)
            cols = (xs >= left[:, None, None]) & (xs < left[:, None, None] + self.cutout)
            inside = rows & cols
            x = x * (~inside)[:, None].to(x.dtype)
        return x


class BatchLoader:
    """Yields normalised ``(x, y)`` batches on ``device`` from a split held in memory.

    Each epoch's order comes from a generator seeded with ``seed + epoch``, so a run is reproducible and an epoch
    can be replayed on resume. Normalisation (mean/std per channel) and augmentation run on the device.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        mean: torch.Tensor,
        std: torch.Tensor,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.split = split.to(self.device)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.mean = mean.to(self.device).view(1, -1, 1, 1)
        self.std = std.to(self.device).view(1, -1, 1, 1)
        self.augment = augment if augment is not None and augment.active else None
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose which epoch's shuffle and augmentation draws the next iteration uses."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen).to(self.device) if self.shuffle else None
        self.epoch += 1
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            sel = order[idx] if order is not None else idx
            x = (to_float(self.split.x[sel]) - self.mean) / self.std
            if self.augment is not None:
                x = self.augment(x, gen)
            yield x, self.split.y[sel]

"""Trainer throughput for the baseline CNN: archsearch's batched on-device augmentation against a per-sample
transform loader (a ``torch.utils.data.DataLoader`` over a Dataset that pads, crops, flips and normalises one image at
a time in Python, as torchvision-style pipelines do), measured in the same run.

    python benchmarks/train_throughput.py --data-dir ../shared/data

Prints images per second for loading alone and for loading + training, and the ratios. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from archsearch.data import Augment, load_dataset
from archsearch.data.loader import Split
from archsearch.nn.baseline import build_model
from archsearch.trainer import TrainConfig, make_optimizer


class PerSampleDataset(torch.utils.data.Dataset):
    """The baseline: every image transformed on its own in Python (pad, random crop, random flip, normalise)."""

    def __init__(
        self, split: Split, mean: torch.Tensor, std: torch.Tensor, padding: int, flip: bool, seed: int
    ) -> None:
        self.x, self.y, self.padding, self.flip = split.x, split.y, padding, flip
        self.mean, self.std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.x[i].float() / 255.0
        img = (img - self.mean) / self.std
        p = self.padding
        h, w = img.shape[1:]
        padded = F.pad(img, (p, p, p, p))
        dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=self.gen))
        img = padded[:, dy : dy + h, dx : dx + w]
        if self.flip and torch.rand(1, generator=self.gen).item() < 0.5:
            img = img.flip(2)
        return img, self.y[i]


def measure(batches: Iterable[tuple[torch.Tensor, torch.Tensor]], steps: int, step_fn=None) -> float:
    """Images per second over ``steps`` batches after two warm-up batches."""
    it = iter(batches)
    for _ in range(2):
        x, y = next(it)
        if step_fn:
            step_fn(x, y)
    seen, start = 0, time.perf_counter()
    for _ in range(steps):
        x, y = next(it)
        if step_fn:
            step_fn(x, y)
        seen += len(y)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--load-steps", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir)
    augment = Augment(crop_padding=data.crop_padding, flip=data.flip)

    def ours():
        while True:
            yield from data.loader("train", args.batch_size, shuffle=True, augment=augment, drop_last=True)

    def per_sample():
        ds = PerSampleDataset(data.train, data.mean, data.std, data.crop_padding, data.flip, 0)
        loader = torch.utils.data.DataLoader(
            ds, batch_size=args.batch_size, shuffle=True, num_workers=0, drop_last=True
        )
        while True:
            yield from loader

    c = data.in_channels
    model = build_model("baseline", c, data.num_classes, seed=0).train()
    optimizer = make_optimizer(model, TrainConfig())

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    rows = {
        "load_only": (measure(ours(), args.load_steps), measure(per_sample(), args.load_steps)),
        "load_and_train": (measure(ours(), args.train_steps, step), measure(per_sample(), args.train_steps, step)),
    }
    print(f"{args.dataset}, baseline CNN, batch {args.batch_size}, {torch.get_num_threads()} CPU threads")
    print(f"{'':<16} {'batched (img/s)':>16} {'per-sample (img/s)':>19} {'ratio':>7}")
    for name, (a, b) in rows.items():
        print(f"{name:<16} {a:>16.0f} {b:>19.0f} {a / b:>6.2f}x")
    print(
        json.dumps(
            {
                k: {"batched": round(a, 1), "per_sample": round(b, 1), "ratio": round(a / b, 3)}
                for k, (a, b) in rows.items()
            }
        )
    )


if __name__ == "__main__":
    main()

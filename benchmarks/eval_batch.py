"""Evaluation speed by batch size, memory layout and batch-norm folding on a CPU: what ``trainer.eval_batch_size``
picks, and what ``trainer.evaluate``'s folding of batch norms into convolutions gains.

    python benchmarks/eval_batch.py --data-dir ../shared/data              # ~2 min on one core, Fashion-MNIST
    python benchmarks/eval_batch.py --dataset digits --threads 2

Times ``trainer.evaluate`` over the validation split (6,000 Fashion-MNIST images) for a small DARTS network
(DARTS_V2, 8 channels, 3 cells) and the hand-designed baseline CNN, for each batch size, channels-first and
channels-last, after one untimed pass, with the batch norms as they are; then, at a batch of 128 channels-last, with
them folded into the convolutions (``archsearch.nn.folding``). Printed: images/s and the ratio against a batch of 512
(the old default) in the same layout, and folded against not, measured in the same run. Run it alone: another torch
job on the same cores skews every row.
"""

from __future__ import annotations

import argparse
import time

import torch

from archsearch.api.tools import check_build, genotypes
from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.data import load_dataset
from archsearch.trainer import evaluate

BATCHES = (64, 128, 256, 512, 1024)


def _networks(data) -> dict[str, torch.nn.Module]:
    c, size, _ = data.input_shape
    ((space, genotype),) = genotypes(["DARTS_V2"], None)
    darts = model_spec(
        c, data.num_classes, size, genotype=genotype, build=check_build(space, {"channels": 8, "cells": 3})
    )
    baseline = model_spec(c, data.num_classes, size, model="baseline")
    return {"DARTS_V2 C=8 N=3": build_from_spec(darts), "baseline CNN": build_from_spec(baseline)}


def _speed(net: torch.nn.Module, data, batch: int, channels_last: bool, fold: bool) -> float:
    evaluate(net, data, "val", batch, channels_last=channels_last, fold_norms=fold)
    start = time.perf_counter()
    evaluate(net, data, "val", batch, channels_last=channels_last, fold_norms=fold)
    return len(data.val) / (time.perf_counter() - start)


def _with_statistics(model: torch.nn.Module, data) -> torch.nn.Module:
    """``model`` with batch-norm statistics of real batches (folding an untrained norm would be a no-op)."""
    model.train()
    with torch.no_grad():
        for x, _ in data.loader("train", 128):
            model(x)
            break
    return model.eval()


def main() -> None:
    """Print images/s per network, layout and batch size, with the ratio against a batch of 512."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset}: {len(data.val)} validation images, {args.threads} thread(s)\n")
    print("| network | layout | batch | images/s | vs batch 512 |")
    print("| --- | --- | --- | --- | --- |")
    for name, model in _networks(data).items():
        for channels_last in (False, True):
            net = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            speed = {}
            for batch in BATCHES:
                speed[batch] = _speed(net, data, batch, channels_last, fold=False)
            layout = "channels-last" if channels_last else "channels-first"
            for batch in BATCHES:
                print(f"| {name} | {layout} | {batch} | {speed[batch]:.0f} | {speed[batch] / speed[512]:.2f}x |")
    print("\n| network (batch 128, channels-last) | norms as they are, images/s | folded, images/s | folded vs not |")
    print("| --- | --- | --- | --- |")
    for name, model in _networks(data).items():
        net = _with_statistics(model, data).to(memory_format=torch.channels_last)
        plain, folded = _speed(net, data, 128, True, fold=False), _speed(net, data, 128, True, fold=True)
        print(f"| {name} | {plain:.0f} | {folded:.0f} | {folded / plain:.2f}x |")


if __name__ == "__main__":
    main()

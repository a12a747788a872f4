"""Train the hand-designed baseline, a small DARTS_V2 network and the best NAS-Bench-201 cell on Fashion-MNIST with
the same budget, on the CPU, and print one table (test accuracy, parameters, wall time).

    python benchmarks/train_fashion.py --data-dir ../shared/data --epochs 4

The best NB201 cell is the one with the highest 200-epoch CIFAR-10 test accuracy in the NB201 table. The last line
is a JSON object with every row.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import torch

from archsearch.data import load_dataset
from archsearch.data.loader import Augment
from archsearch.nn.baseline import build_model
from archsearch.spaces import NB201Genotype, get_space, published
from archsearch.trainer import TrainConfig, train


def best_nb201_cell(table: Path) -> str:
    with table.open() as f:
        rows = list(csv.DictReader(f))
    return max(rows, key=lambda r: float(r["test_acc_200ep"]))["arch"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="baseline,darts_v2,nb201_best")
    parser.add_argument("--darts-channels", type=int, default=16)
    parser.add_argument("--darts-cells", type=int, default=8)
    parser.add_argument("--nb201-channels", type=int, default=16)
    parser.add_argument("--nb201-cells", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--augment", choices=("crop+flip", "flip", "none"), default="crop+flip", help="batched augmentation"
    )
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set ARCHSEARCH_DATA to the folder holding fashion-mnist/ and nb201/")
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", args.data_dir)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=5e-4,
        lr_warmup_epochs=0.2,
        label_smoothing=0.1,
        augment=Augment(
            crop_padding=data.crop_padding if args.augment == "crop+flip" else 0,
            flip=data.flip and args.augment != "none",
        ),
        evaluate_test=True,
        seed=args.seed,
    )
    c, h, _ = data.input_shape
    builders = {
        "baseline": lambda: build_model("baseline", c, data.num_classes, seed=args.seed),
        "darts_v2": lambda: get_space("darts").build(
            published("DARTS_V2"),
            c,
            data.num_classes,
            h,
            seed=args.seed,
            channels=args.darts_channels,
            cells=args.darts_cells,
            auxiliary=False,
        ),
        "nb201_best": lambda: get_space("nb201").build(
            NB201Genotype.from_string(best_nb201_cell(Path(args.data_dir) / "nb201" / "nb201_cifar10.csv")),
            c,
            data.num_classes,
            h,
            seed=args.seed,
            channels=args.nb201_channels,
            cells_per_stage=args.nb201_cells,
        ),
    }
    sizes = {
        "baseline": "64/128/256 channels",
        "darts_v2": f"C={args.darts_channels}, {args.darts_cells} cells",
        "nb201_best": f"C={args.nb201_channels}, {args.nb201_cells} cells/stage",
    }
    print(
        f"Fashion-MNIST, {len(data.train)} train / {len(data.val)} val / {len(data.test)} test; budget: "
        f"{args.epochs} epochs, batch {args.batch_size}, SGD-Nesterov lr {args.lr} cosine, label smoothing 0.1, "
        f"augment {args.augment}; {torch.get_num_threads()} CPU threads",
        flush=True,
    )
    rows = []
    for name in args.models.split(","):
        model = builders[name]()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(
            model,
            data,
            config,
            on_epoch=lambda r, n=name: print(
                f"  {n} epoch {r.epoch}: train {r.train_acc:.2f}% val {r.val_acc:.2f}% ({r.seconds:.0f}s)", flush=True
            ),
        )
        rows.append(
            {
                "model": name,
                "size": sizes[name],
                "test_acc": result.test_acc,
                "val_acc": result.best_val_acc,
                "params": result.params,
                "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu_start, 1),
                "img_per_s": round(len(data.train) * result.epochs / result.seconds, 1),
            }
        )
        print(f"  {name}: test {result.test_acc:.2f}%  ({result.status})", flush=True)
    header = f"{'model':<11} {'size':<24} {'test acc':>9} {'val acc':>8} {'params':>10} {'seconds':>8} {'cpu s':>7}"
    print(f"\n{header} {'img/s':>7}")
    for r in rows:
        print(
            f"{r['model']:<11} {r['size']:<24} {r['test_acc']:>8.2f}% {r['val_acc']:>7.2f}% {r['params']:>10,} "
            f"{r['seconds']:>8.0f} {r['cpu_seconds']:>7.0f} {r['img_per_s']:>7.1f}"
        )
    print(json.dumps({"epochs": args.epochs, "augment": args.augment, "rows": rows}))


if __name__ == "__main__":
    main()

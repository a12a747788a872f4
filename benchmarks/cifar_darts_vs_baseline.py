"""The mini-DARTS against the hand-designed baseline CNN on CIFAR-10: search, retrain at equal epochs, test.

    python benchmarks/cifar_darts_vs_baseline.py --data-dir ../shared/data --out runs/cifar-darts   # the CPU budget
    python benchmarks/cifar_darts_vs_baseline.py --data-dir ../shared/data --out runs/cifar-darts --paper --device cuda

1. A one-shot search (``--method``, default ``darts``) of the DARTS space (a normal and a reduction cell) on
   CIFAR-10's training split, in halves for the weights and the alphas, into the run directory ``--out``
   (``archsearch report OUT`` draws it, the retraining included).
2. The derived network and the hand-designed baseline CNN retrained from scratch with the same settings (data,
   epochs, schedule, augmentation, seed, arithmetic: ``--precision``, float32 unless told), both tested on
   CIFAR-10's test set; DARTS_V2's published cell retrained at the same budget and build as the reference a found
   cell should reach.
3. A table of the three: parameters and multiply-adds (one image; the auxiliary head left out), test
   accuracy, training wall time; the search's wall time above it.

The budget is printed with the table beside the papers' settings (``--paper``: search C=16, 8 cells, 50 epochs,
batch 64 on 25k/25k; retraining C=36, 20 cells, 600 epochs, batch 96, cutout 16, auxiliary head, drop-path 0.2, for
a GPU). A figure at the CPU budget is not the paper's experiment. Each setting can be overridden
(``--search-epochs`` ...). The images are the official batches or the JPEG folders under ``--data-dir`` (JPEG
re-encoding costs a little accuracy). Run it alone: it uses every thread it is given.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from archsearch import options
from archsearch.api.oneshot_search import oneshot
from archsearch.api.retraining import RETRAINING, retrain
from archsearch.data import load_dataset
from archsearch.mixed_precision import PRECISIONS
from archsearch.nn.baseline import build_model
from archsearch.nn.counting import count_flops, count_params
from archsearch.spaces import get_space
from archsearch.trainer import train

CPU = {"search_channels": 8, "search_cells": 5, "search_epochs": 10, "search_images": 5_000, "search_batch": 64,
       "channels": 16, "cells": 8, "epochs": 10, "images": 10_000, "batch": 128, "cutout": 0}  # fmt: skip
PAPER = {"search_channels": 16, "search_cells": 8, "search_epochs": 50, "search_images": 45_000, "search_batch": 64,
         "channels": 36, "cells": 20, "epochs": 600, "images": 45_000, "batch": 96, "cutout": 16}  # fmt: skip


def _settings(args: argparse.Namespace) -> dict[str, int]:
    base = dict(PAPER if args.paper else CPU)
    for name in base:
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    return base


def _row(name: str, model: torch.nn.Module, shape: tuple[int, ...], result: Any, seconds: float) -> dict[str, Any]:
    return {"network": name, "params": count_params(model), "macs": count_flops(model, shape),
            "test_acc": result.test_acc, "epochs": result.epochs, "seconds": round(seconds, 1)}  # fmt: skip


def main() -> None:
    """Search, retrain the three networks, print the table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--out", required=True, help="the search's run directory (a new one)")
    parser.add_argument("--method", default="darts", help="the one-shot method (darts, darts2, pcdarts, betadarts)")
    parser.add_argument("--paper", action="store_true", help="the papers' settings (for a GPU)")
    for name in CPU:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"override the budget's {name}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS,
                        help="the retrainings' arithmetic (default float32: the same for the three networks; "
                             "auto lets each take its fastest type, see archsearch.mixed_precision)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = _settings(args)
    data = load_dataset(args.dataset, args.data_dir)
    budget = "the papers' settings" if args.paper else "a CPU budget, not the papers'"
    print(f"{args.method} in the DARTS space on {args.dataset}, {budget}: search C={s['search_channels']}, "
          f"{s['search_cells']} cells, {s['search_epochs']} epochs, batch {s['search_batch']}, "
          f"{min(s['search_images'], len(data.train))} images in halves (paper: C=16, 8 cells, 50 epochs, 25k/25k); "
          f"retraining C={s['channels']}, {s['cells']} cells, {s['epochs']} epochs, batch {s['batch']}, "
          f"{min(s['images'], len(data.train))} images, cutout {s['cutout']} (paper: C=36, 20 cells, 600 epochs, "
          f"batch 96, cutout 16, auxiliary head, drop-path 0.2); {torch.get_num_threads()} thread(s); retraining in "
          f"{args.precision}\n")  # fmt: skip

    search_data = data.with_train_subset(s["search_images"], seed=args.seed) if s["search_images"] < len(
        data.train) else data  # fmt: skip
    start = time.perf_counter()
    found = oneshot(args.method, "darts", search_data, args.out, device=args.device, seed=args.seed,
                    supernet_options={"channels": s["search_channels"], "cells": s["search_cells"]},
                    epochs=s["search_epochs"], batch_size=s["search_batch"])  # fmt: skip
    search_seconds = time.perf_counter() - start
    print(f"search: {search_seconds:.0f} s, derived {found.genotype}\n")

    train_data = data.with_train_subset(s["images"], seed=args.seed) if s["images"] < len(data.train) else data
    paper = args.paper
    build = {"channels": s["channels"], "cells": s["cells"], "auxiliary": paper, "drop_path": 0.2 if paper else 0.0}
    config = replace(options.make(options.group("training"), RETRAINING, "the retraining", epochs=s["epochs"],
                                  batch_size=s["batch"], cutout=s["cutout"], drop_path=build["drop_path"],
                                  device=args.device, seed=args.seed, precision=args.precision),
                     evaluate_test=True)  # fmt: skip
    space = get_space("darts")
    shape = tuple(data.input_shape)
    c, size, classes = shape[0], shape[1], data.num_classes
    rows = []
    both = retrain(found.genotype, train_data, "darts", build, config=config, run_dir=args.out)
    for name, label, model in (
        ("winner", f"found by {args.method}", space.build(found.genotype, c, classes, size, **build)),
        ("baseline", "the hand-designed baseline CNN", build_model("baseline", c, classes)),
    ):
        r = both.models[name].result
        rows.append(_row(label, model, shape, r, r.seconds))
    reference = space.parse("DARTS_V2")
    model = space.build(reference, c, classes, size, seed=args.seed, **build)
    result = train(model, train_data, config)
    rows.append(_row("DARTS_V2 (published)", model, shape, result, result.seconds))

    print("| network | params | multiply-adds | test accuracy | epochs | training seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['network']} | {r['params'] / 1e6:.2f} M | {r['macs'] / 1e6:.0f} M | {r['test_acc']:.2f}% | "
              f"{r['epochs']} | {r['seconds']:.0f} |")  # fmt: skip
    print(json.dumps({"settings": s, "method": args.method, "genotype": str(found.genotype),
                      "search_seconds": round(search_seconds, 1), "rows": rows, "run": str(Path(args.out))}))


if __name__ == "__main__":
    main()

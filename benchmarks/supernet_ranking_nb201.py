"""How well weight sharing ranks NB201 cells trained on CIFAR-10, judged by the table, against counting parameters and
the zero-cost proxies: one-shot SPOS beside few-shot supernets.

    python benchmarks/supernet_ranking_nb201.py --data-dir ../shared/data

Protocol (printed):

1. The ``--n`` (50) NB201 cells of ``benchmarks/spos_ranking.py`` (sampled with its seed), their truth the table's
   ``valid_acc_12ep`` and ``test_acc_200ep`` (``<data-dir>/nb201/nb201_cifar10.csv``).
2. Per supernet of ``--supernets`` (``oneshot``: SPOS with fair path sampling; ``fewshot-E``: the same supernet
   split on edge E's op, one sub-supernet per op trained apart from epoch ``--split-epoch``, default half the
   epochs, :mod:`archsearch.oneshot.few_shot`), trained for ``--epochs`` on a seeded ``--subset`` of CIFAR-10's
   training split at ``--channels`` channels and 1 cell per stage; each cell is then scored with inherited weights
   (batch norms recalibrated on 8 batches) on the validation split, and Kendall tau against each truth is printed.
3. The same tau for every zero-cost proxy (the cells built at the table's settings, 16 channels and 5 cells per
   stage, scored on one seeded batch of 64 CIFAR-10 training images) and for the parameter count: the bar weight
   sharing must clear.

The last line is one JSON object with every number. Run it alone: it uses every thread it is given.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from archsearch.api.oneshot_search import oneshot
from archsearch.data import load_dataset
from archsearch.evaluators.supernet import SupernetEvaluator
from archsearch.evaluators.zero_cost import PROXIES, first_batch, score_model
from archsearch.oneshot import default_config
from archsearch.spaces import NB201Genotype, get_space

TRUTHS = ("valid_acc_12ep", "test_acc_200ep")


def sample_cells(n: int, seed: int) -> list[NB201Genotype]:
    """The cells of ``benchmarks/spos_ranking.py``: distinct cells drawn from ``default_rng(seed + 1)``."""
    space, rng, seen = get_space("nb201"), np.random.default_rng(seed + 1), {}
    while len(seen) < n:
        g = space.sample(rng)
        seen.setdefault(g.key, g)
    return list(seen.values())


def taus(scores: list[float], truth: dict[str, list[float]]) -> dict[str, float]:
    """Kendall tau of ``scores`` with each truth column."""
    return {t: float(kendalltau(scores, truth[t])[0]) for t in TRUTHS}


def supernet_scores(args: argparse.Namespace, name: str, data: Any, cells: list[NB201Genotype]) -> dict[str, Any]:
    """Train the supernet ``name`` (``oneshot`` or ``fewshot-E``) and score every cell with inherited weights."""
    build: dict[str, Any] = {"channels": args.channels, "cells_per_stage": 1}
    settings: dict[str, Any] = {}
    if name.startswith("fewshot-"):
        build["few_shot_edge"] = int(name.removeprefix("fewshot-"))
        settings["few_shot_epoch"] = args.split_epoch if args.split_epoch is not None else args.epochs // 2
    elif name != "oneshot":
        raise SystemExit(f"a supernet is oneshot or fewshot-EDGE (0-5), got {name!r}")
    config = default_config("spos", epochs=args.epochs, seed=args.seed, **settings)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = oneshot("spos", "nb201", data.with_train_subset(args.subset, args.seed), Path(tmp) / "run", config,
                         build, subnetwork_trials=1, plots=False)  # fmt: skip
    seconds = time.perf_counter() - start
    evaluator = SupernetEvaluator(result.supernet, data, calibration_batches=8)
    scores = [evaluator.evaluate(g)["val_acc"] for g in cells]
    return {"supernet": name, "train_seconds": round(seconds, 1), "scores": scores, **settings}


def proxy_scores(data: Any, cells: list[NB201Genotype], seed: int) -> dict[str, list[float]]:
    """Every zero-cost proxy and the parameter count of each cell at the table's build settings."""
    space = get_space("nb201")
    batch = first_batch(data, 64, seed)
    out: dict[str, list[float]] = {p: [] for p in PROXIES}
    for g in cells:
        net = space.build(g, 3, 10, 32, seed=seed)
        for p in out:
            out[p].append(score_model(net, p, batch, seed))
    return out


def main() -> None:
    """Train the supernets, score the cells, print tau against the table beside the proxies'."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--supernets", default="oneshot,fewshot-3", help="oneshot and/or fewshot-EDGE, comma-separated")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--split-epoch", type=int, help="few-shot: the epoch from which the parts train apart")
    parser.add_argument("--subset", type=int, default=10000, help="training images for the supernets")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    if args.threads:
        torch.set_num_threads(args.threads)
    with (Path(args.data_dir) / "nb201" / "nb201_cifar10.csv").open() as f:
        table = {r["arch"]: r for r in csv.DictReader(f)}
    data = load_dataset("cifar10", args.data_dir)
    cells = sample_cells(args.n, args.seed)
    truth = {t: [float(table[str(g)][t]) for g in cells] for t in TRUTHS}
    print(f"NB201 on CIFAR-10: {len(cells)} cells (those of benchmarks/spos_ranking.py), truth from the table; "
          f"supernets at {args.channels} channels, 1 cell per stage, {args.epochs} epochs on {args.subset:,} images, "
          f"SPOS with fair path sampling; proxies at the table's build (16 channels, 5 cells per stage) on one batch "
          f"of 64; {torch.get_num_threads()} thread(s)\n", flush=True)  # fmt: skip

    rows: list[dict[str, Any]] = []
    for name in args.supernets.split(","):
        found = supernet_scores(args, name, data, cells)
        found["tau"] = taus(found["scores"], truth)
        rows.append(found)
        print(f"  {name}: tau {found['tau']} ({found['train_seconds']:.0f} s)", flush=True)
    baselines = {p: taus(s, truth) for p, s in proxy_scores(data, cells, args.seed).items()}

    print("\n| scored by | Kendall tau with valid_acc_12ep | with test_acc_200ep | supernet training seconds |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        label = r["supernet"] + (f" (split at epoch {r['few_shot_epoch']})" if "few_shot_epoch" in r else "")
        print(f"| {label} | {r['tau']['valid_acc_12ep']:.3f} | {r['tau']['test_acc_200ep']:.3f} | "
              f"{r['train_seconds']:.0f} |")  # fmt: skip
    for p, t in sorted(baselines.items(), key=lambda kv: -kv[1]["test_acc_200ep"]):
        print(f"| {p} (no training) | {t['valid_acc_12ep']:.3f} | {t['test_acc_200ep']:.3f} | - |")
    print(json.dumps({"n": len(cells), "settings": vars(args), "supernets": rows, "baselines": baselines,
                      "cells": [str(g) for g in cells]}))  # fmt: skip


if __name__ == "__main__":
    main()

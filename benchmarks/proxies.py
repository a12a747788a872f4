"""How well zero-cost proxies and learned predictors rank architectures, and how fast the proxies score.

    python benchmarks/proxies.py --data-dir ../shared/data --threads 2

Sections (``--sections``, default all):

- ``table``: ``--n`` (default 1,000) NB201 cells sampled with a seed, each built as the NB201 CIFAR-10 network
  (16 channels, 5 cells per stage, 3x32x32 input, 10 classes) and scored by the data-independent proxies
  (synflow, params, flops); Spearman rho of each with the table's 200-epoch test accuracy.
- ``fashion``: ``--trained`` (default 50) NB201 cells trained briefly on Fashion-MNIST (protocol printed: a seeded
  subset of the training split, a few epochs, a narrow network; accuracy on the 6,000-image validation split), then
  every proxy computed on the same networks (one seeded batch of 64 training images); Spearman rho of each proxy
  with the trained accuracy.
- ``speed``: proxies per second for the NB201 CIFAR-10 network (batch 64 of 3x32x32), per proxy.
- ``predictors``: Kendall tau between predicted and true 12-epoch validation accuracy on the rest of the space after
  fitting on 20, 50, 100 and 200 cells, per predictor, mean over ``--predictor-seeds`` seeds.

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from archsearch.data import load_dataset
from archsearch.evaluators import TrainEvaluator
from archsearch.evaluators.zero_cost import PROXIES, first_batch, score_model
from archsearch.spaces import NB201Genotype, get_space
from archsearch.strategies.predictors import ENCODINGS, PREDICTORS, features, make_predictor

DATA_INDEPENDENT = [p for p in PROXIES if not PROXIES.get(p).needs_data]


def read_table(data_dir: Path) -> dict[str, dict[str, float]]:
    with (data_dir / "nb201" / "nb201_cifar10.csv").open() as f:
        return {r["arch"]: {k: float(v) for k, v in r.items() if k not in ("arch", "index")} for r in csv.DictReader(f)}


def sample_cells(n: int, seed: int) -> list[NB201Genotype]:
    space, rng, seen = get_space("nb201"), np.random.default_rng(seed), {}
    while len(seen) < n:
        g = space.sample(rng)
        seen.setdefault(g.key, g)
    return list(seen.values())


def table_section(table: dict[str, dict[str, float]], n: int, seed: int) -> dict[str, Any]:
    space = get_space("nb201")
    cells = sample_cells(n, seed)
    batch = (torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long))
    scores: dict[str, list[float]] = {p: [] for p in DATA_INDEPENDENT}
    for i, g in enumerate(cells):
        net = space.build(g, 3, 10, 32, seed=seed)
        for p in scores:
            scores[p].append(score_model(net, p, batch, seed))
        if (i + 1) % 100 == 0:
            print(f"  scored {i + 1}/{n}", flush=True)
    test = [table[str(g)]["test_acc_200ep"] for g in cells]
    valid = [table[str(g)]["valid_acc_12ep"] for g in cells]
    rho = {p: float(spearmanr(v, test)[0]) for p, v in scores.items()}
    rho_valid = {p: float(spearmanr(v, valid)[0]) for p, v in scores.items()}
    print(f"\nNB201 CIFAR-10 table, {n} sampled cells: Spearman rho with 200-epoch test accuracy (12-epoch valid)")
    for p in scores:
        print(f"  {p:<10} {rho[p]:6.3f}  ({rho_valid[p]:6.3f})")
    return {"n": n, "spearman_test_200ep": rho, "spearman_valid_12ep": rho_valid}


def fashion_section(data_dir: Path, n: int, seed: int, subset: int, epochs: int, channels: int) -> dict[str, Any]:
    space = get_space("nb201")
    data = load_dataset("fashion-mnist", str(data_dir))
    build = {"channels": channels, "cells_per_stage": 1}
    trainer = TrainEvaluator(
        space, data, epochs=epochs, subset=subset, patience=None, build=build, augment=False, seed=seed
    )
    print(
        f"\nFashion-MNIST protocol: {n} NB201 cells ({channels} channels, 1 cell per stage), each trained {epochs} "
        f"epochs on a seeded {subset:,}-image subset (SGD, cosine, batch 128), accuracy on the 6,000-image "
        "validation split; proxies on one seeded batch of 64 training images"
    )
    batch = first_batch(data, 64, seed)
    cells = sample_cells(n, seed + 1)
    accs, scores = [], {p: [] for p in PROXIES}
    for i, g in enumerate(cells):
        start = time.perf_counter()
        accs.append(trainer.evaluate(g)["val_acc"])
        net = space.build(g, 1, 10, 28, seed=seed, **build)
        for p in scores:
            scores[p].append(score_model(net, p, batch, seed))
        print(f"  {i + 1}/{n} val {accs[-1]:5.2f}%  {time.perf_counter() - start:5.1f}s  {g}", flush=True)
    rho = {p: float(spearmanr(v, accs)[0]) for p, v in scores.items()}
    print(f"Spearman rho with the trained accuracy over {n} cells:")
    for p in scores:
        print(f"  {p:<10} {rho[p]:6.3f}")
    return {
        "n": n,
        "subset": subset,
        "epochs": epochs,
        "channels": channels,
        "spearman": rho,
        "cells": [str(g) for g in cells],
        "val_acc": accs,
    }


def speed_section(n: int, seed: int) -> dict[str, float]:
    space = get_space("nb201")
    cells = sample_cells(n, seed + 2)
    gen = torch.Generator().manual_seed(seed)
    batch = (torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen))
    nets = [space.build(g, 3, 10, 32, seed=seed) for g in cells]
    score_model(nets[0], "flops", batch)  # the first FLOP count pays a one-off set-up
    rates = {}
    for p in PROXIES:
        start = time.perf_counter()
        for net in nets:
            score_model(net, p, batch, seed)
        rates[p] = n / (time.perf_counter() - start)
    print(f"\nScoring speed, NB201 CIFAR-10 network (batch 64 of 3x32x32), {torch.get_num_threads()} threads:")
    for p, r in rates.items():
        print(f"  {p:<10} {r:7.2f} networks/s")
    return rates


def predictor_section(table: dict[str, dict[str, float]], seeds: int) -> dict[str, dict[int, float]]:
    space = get_space("nb201")
    archs = list(table)
    genotypes = [NB201Genotype.from_string(a) for a in archs]
    y = np.array([table[a]["valid_acc_12ep"] for a in archs])
    out: dict[str, dict[int, float]] = {}
    print("\nPredictors: Kendall tau with 12-epoch validation accuracy on the rest of the space")
    for encoding in ENCODINGS:
        x = features(space, genotypes, encoding=encoding)
        for name in PREDICTORS:
            row = out[f"{name}/{encoding}"] = {}
            for n in (20, 50, 100, 200):
                taus = []
                for s in range(seeds):
                    perm = np.random.default_rng(s).permutation(len(y))
                    model = make_predictor(name, seed=s).fit(x[perm[:n]], y[perm[:n]])
                    taus.append(float(kendalltau(model.predict(x[perm[n:]])[0], y[perm[n:]])[0]))
                row[n] = float(np.mean(taus))
            print(f"  {name:<4} {encoding:<7} " + "  ".join(f"n={n}: {t:.3f}" for n, t in row.items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--sections", default="table,fashion,speed,predictors")
    parser.add_argument("--n", type=int, default=1000, help="cells scored against the table")
    parser.add_argument("--trained", type=int, default=50, help="cells trained on Fashion-MNIST")
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--speed-n", type=int, default=10)
    parser.add_argument("--predictor-seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir)
    sections = set(args.sections.split(","))
    table = read_table(data_dir)
    result: dict[str, Any] = {"threads": args.threads}
    if "table" in sections:
        result["table"] = table_section(table, args.n, args.seed)
    if "fashion" in sections:
        result["fashion"] = fashion_section(data_dir, args.trained, args.seed, args.subset, args.epochs, args.channels)
    if "speed" in sections:
        result["speed"] = speed_section(args.speed_n, args.seed)
    if "predictors" in sections:
        result["predictors"] = predictor_section(table, args.predictor_seeds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

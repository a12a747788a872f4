"""How well SPOS's inherited weights rank NB201 sub-networks, against how well a second stand-alone training does.

    python benchmarks/spos_ranking.py --data-dir ../shared/data --threads 1 --cache spos_cache

Protocol (printed):

1. ``--n`` distinct NB201 cells sampled with a seed are each trained alone twice, with seeds 0 and 1, under every
   stand-alone protocol of ``--protocols`` (``EPOCHSxIMAGES``: that many epochs on a seeded subset of that many
   images of Fashion-MNIST's training split; a network of ``--channels`` channels, 1 cell per stage; accuracy on the
   6,000-image validation split). Per protocol, Kendall tau between the two seeds is the **noise ceiling**: no
   evaluator can agree with a stand-alone training better than another stand-alone training does. ``--cache DIR``
   keeps these numbers between runs (one JSON file per protocol).
2. For each path sampling (``fair``: FairNAS's strict fairness, ``uniform``: one path per step), an NB201 supernet of
   the same width is trained by SPOS for ``--epochs`` epochs on a seeded ``--subset``-image subset. After each epoch
   in ``--budgets`` the cells are scored with inherited weights (batch norms recalibrated on 8 batches), and Kendall
   tau and Spearman rho against the mean of the two stand-alone accuracies of every protocol are printed.
3. After the last epoch of the fair supernet, regularized evolution scores ``--search-trials`` sub-networks with
   inherited weights; its winner is trained alone under every protocol (both seeds) and compared with the median of
   the ``--n`` cells.

The last line is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from archsearch.api.oneshot_search import oneshot, subnetwork_search
from archsearch.data import load_dataset
from archsearch.evaluators import TrainEvaluator
from archsearch.evaluators.supernet import SupernetEvaluator
from archsearch.oneshot import build_supernet, default_config
from archsearch.oneshot.checkpoint import load_checkpoint
from archsearch.spaces import NB201Genotype, get_space
from archsearch.store import Store

SEEDS = (0, 1)


def parse_protocol(text: str) -> tuple[int, int]:
    """``"4x10000"`` -> (4 epochs, 10,000 images)."""
    epochs, _, images = text.partition("x")
    if not (epochs.isdigit() and images.isdigit()) or int(epochs) < 1 or int(images) < 1:
        raise SystemExit(f"a stand-alone protocol is EPOCHSxIMAGES, e.g. 2x5000; got {text!r}")
    return int(epochs), int(images)


def standalone(
    args: argparse.Namespace, protocol: str, space: Any, data: Any, cells: list[Any]
) -> dict[str, list[float]]:
    """Each cell's stand-alone validation accuracy under ``protocol`` for both seeds (read from ``--cache`` where
    present)."""
    epochs, images = parse_protocol(protocol)
    cache = Path(args.cache) / f"standalone_{protocol}.json" if args.cache else None
    known: dict[str, dict[str, float]] = json.loads(cache.read_text()) if cache and cache.exists() else {}
    for seed in SEEDS:
        build = {"channels": args.channels, "cells_per_stage": 1}
        trainer = TrainEvaluator(space, data, epochs=epochs, subset=images, patience=None, build=build,
                                 augment=False, seed=seed)  # fmt: skip
        for i, g in enumerate(cells):
            entry = known.setdefault(g.key, {})
            if str(seed) not in entry:
                entry[str(seed)] = trainer.evaluate(g, seed=seed)["val_acc"]
                print(f"  {protocol} seed {seed} {i + 1}/{len(cells)}: {entry[str(seed)]:.2f}%  {g}", flush=True)
                if cache:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    cache.write_text(json.dumps(known))
    return {str(s): [known[g.key][str(s)] for g in cells] for s in SEEDS}


def ranking(a: list[float], b: list[float]) -> dict[str, float]:
    """Kendall tau and Spearman rho of two score lists."""
    return {"tau": float(kendalltau(a, b)[0]), "rho": float(spearmanr(a, b)[0])}


def train_supernet(args: argparse.Namespace, space: Any, data: Any, cells: list[Any],
                   targets: dict[str, list[float]], sampling: str) -> tuple[list[dict[str, Any]], Any]:  # fmt: skip
    """Train one SPOS supernet; at each budget score the cells with inherited weights, against every protocol's
    target. Returns the rows (one per budget and protocol) and the trained supernet."""
    budgets = {int(b) for b in args.budgets.split(",")} | {args.epochs}
    rows: list[dict[str, Any]] = []
    shadow = build_supernet("nb201", data.in_channels, data.num_classes, channels=args.channels,
                           cells_per_stage=1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:

        def on_epoch(record: dict[str, Any]) -> None:
            epoch = record["epoch"]  # 1-based
            print(f"  {sampling} supernet epoch {epoch}: train acc {record['train_acc']:.1f}%", flush=True)
            if epoch not in budgets:
                return
            seconds = time.perf_counter() - start
            shadow.load_state_dict(load_checkpoint(Path(tmp) / "oneshot.pt")["method"]["net"])
            evaluator = SupernetEvaluator(shadow, data, calibration_batches=8)
            inherited = [evaluator.evaluate(g)["val_acc"] for g in cells]
            for protocol, target in targets.items():
                row = {"sampling": sampling, "epochs": epoch, "protocol": protocol, "train_seconds": seconds,
                       **ranking(inherited, target), "inherited": inherited}  # fmt: skip
                rows.append(row)
                print(f"    after {epoch} epochs ({seconds:.0f}s), against {protocol}: tau {row['tau']:.3f}, "
                      f"rho {row['rho']:.3f}", flush=True)  # fmt: skip

        config = default_config("spos", epochs=args.epochs, seed=args.seed, path_sampling=sampling)
        build = {"channels": args.channels, "cells_per_stage": 1}
        result = oneshot("spos", space, data.with_train_subset(args.subset, args.seed), tmp, config, build,
                         on_epoch=on_epoch, subnetwork_trials=1)  # fmt: skip
    return rows, result.supernet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=20, help="supernet training epochs")
    parser.add_argument("--budgets", default="5,10", help="epochs after which the supernet is also scored")
    parser.add_argument("--subset", type=int, default=10000, help="training images for the supernet")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--protocols", default="2x5000,4x10000",
                        help="stand-alone protocols, EPOCHSxIMAGES, comma-separated")  # fmt: skip
    parser.add_argument("--samplings", default="fair,uniform", help='comma-separated; "" for the stand-alone part only')
    parser.add_argument("--search-trials", type=int, default=100)
    parser.add_argument("--cache", help="folder keeping the stand-alone accuracies between runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    torch.set_num_threads(args.threads)
    space = get_space("nb201")
    data = load_dataset("fashion-mnist", args.data_dir)
    rng, seen = np.random.default_rng(args.seed + 1), {}
    while len(seen) < args.n:
        g = space.sample(rng)
        seen.setdefault(g.key, g)
    cells: list[NB201Genotype] = list(seen.values())

    protocols = args.protocols.split(",")
    for protocol in protocols:
        parse_protocol(protocol)
    alone = {p: standalone(args, p, space, data, cells) for p in protocols}
    targets = {p: [float(np.mean(v)) for v in zip(*alone[p].values())] for p in protocols}
    ceilings = {p: ranking(alone[p]["0"], alone[p]["1"]) for p in protocols}
    for p, c in ceilings.items():
        print(f"noise ceiling of {p} (seed 0 against seed 1): tau {c['tau']:.3f}, rho {c['rho']:.3f}", flush=True)
    agreement = {
        f"{a} vs {b}": ranking(targets[a], targets[b]) for i, a in enumerate(protocols) for b in protocols[i + 1 :]
    }
    for pair, r in agreement.items():
        print(f"stand-alone protocols against each other ({pair}, means of the seeds): tau {r['tau']:.3f}, "
              f"rho {r['rho']:.3f}", flush=True)  # fmt: skip

    rows: list[dict[str, Any]] = []
    search: dict[str, Any] = {}
    for sampling in filter(None, args.samplings.split(",")):  # --samplings "": the stand-alone numbers only
        got, supernet = train_supernet(args, space, data, cells, targets, sampling)
        rows += got
        if sampling == "fair" and args.search_trials:
            with tempfile.TemporaryDirectory() as tmp:
                store = Store(tmp, durable=False)
                run = subnetwork_search(data, args.search_trials, "cpu")
                winner = run(supernet, space, store, default_config("spos", seed=args.seed)).genotype
                store.close()
            search = {"winner": str(winner)}
            for p in protocols:
                acc = standalone(args, p, space, data, [winner])
                mean = float(np.mean([acc[s][0] for s in acc]))
                search[p] = {"standalone": mean, "median_of_cells": float(np.median(targets[p])),
                             "rank_among_cells": int(sum(t > mean for t in targets[p])) + 1}  # fmt: skip

    print(f"\nNB201 on Fashion-MNIST, {args.channels} channels, 1 cell per stage; {len(cells)} cells; supernet on "
          f"{args.subset:,} images; stand-alone protocols (epochs x images): {', '.join(protocols)}")  # fmt: skip
    for p, c in ceilings.items():
        print(f"noise ceiling of {p}: tau {c['tau']:.3f}, rho {c['rho']:.3f} (two stand-alone seeds)")
    print(f"{'sampling':<9} {'epochs':>6} {'seconds':>8} {'against':>9} {'tau':>6} {'rho':>6} {'tau/ceiling':>11}")
    for r in rows:
        ceiling = ceilings[r["protocol"]]["tau"]
        share = r["tau"] / ceiling if ceiling > 0 else float("nan")
        print(f"{r['sampling']:<9} {r['epochs']:>6} {r['train_seconds']:>8.0f} {r['protocol']:>9} {r['tau']:>6.3f} "
              f"{r['rho']:>6.3f} {share:>10.0%}")  # fmt: skip
    if search:
        print(f"search: {args.search_trials} sub-networks by evolution on the fair supernet; winner {search['winner']}")
        for p in protocols:
            got = search[p]
            print(f"  trained alone ({p}): {got['standalone']:.2f}% against the cells' median "
                  f"{got['median_of_cells']:.2f}% (rank {got['rank_among_cells']} of {len(cells) + 1})")  # fmt: skip
    summary = {"n": len(cells), "ceilings": ceilings, "protocol_agreement": agreement, "standalone": alone,
               "rows": rows, "search": search, "cells": [str(g) for g in cells]}  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""How well SPOS's inherited weights rank NB201 sub-networks: Kendall tau between each sub-network's accuracy with
the weights it inherits from a trained single-path supernet (after batch-norm recalibration) and its accuracy when
trained alone for a short budget, on Fashion-MNIST, on the CPU.

    python benchmarks/spos_ranking.py --data-dir ../shared/data --threads 2
    python benchmarks/spos_ranking.py --data-dir ../shared/data --reuse proxies.json   # stand-alone numbers of
                                                                                         # benchmarks/proxies.py

Protocol (printed): the supernet (NB201 space, ``--channels`` channels, 1 cell per stage) is trained by SPOS with
uniform path sampling for ``--epochs`` epochs on a seeded ``--subset``-image subset of the training split (all of it:
SPOS has no architecture step to hold data back for); ``--n`` distinct cells are sampled with a seed; the stand-alone
accuracy is benchmarks/proxies.py's protocol (same cells, same network width, ``--train-epochs`` epochs on a seeded
``--train-subset`` subset); both accuracies are on the 6,000-image validation split. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from archsearch.api.oneshot import oneshot
from archsearch.data import load_dataset
from archsearch.evaluators import TrainEvaluator
from archsearch.evaluators.supernet import SupernetEvaluator
from archsearch.oneshot import default_config
from archsearch.spaces import NB201Genotype, get_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=10, help="supernet training epochs")
    parser.add_argument("--subset", type=int, default=10000, help="training images for the supernet")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--reuse", help="JSON line of benchmarks/proxies.py with a 'fashion' section (cells, val_acc)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    torch.set_num_threads(args.threads)
    space = get_space("nb201")
    data = load_dataset("fashion-mnist", args.data_dir)
    build = {"channels": args.channels, "cells": 1}

    if args.reuse:
        fashion = json.loads(Path(args.reuse).read_text().strip().splitlines()[-1])["fashion"]
        cells = [NB201Genotype.from_string(c) for c in fashion["cells"]][: args.n]
        standalone = list(fashion["val_acc"])[: args.n]
        print(f"stand-alone accuracies of {len(cells)} cells from {args.reuse}")
    else:
        rng, seen = np.random.default_rng(args.seed + 1), {}
        while len(seen) < args.n:
            g = space.sample(rng)
            seen.setdefault(g.key, g)
        cells = list(seen.values())
        trainer = TrainEvaluator(
            space,
            data,
            epochs=args.train_epochs,
            subset=args.train_subset,
            patience=None,
            build=build,
            augment=False,
            seed=args.seed,
        )
        standalone = []
        for i, g in enumerate(cells):
            standalone.append(trainer.evaluate(g)["val_acc"])
            print(f"  stand-alone {i + 1}/{len(cells)}: {standalone[-1]:.2f}%  {g}", flush=True)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = oneshot(
            "spos",
            space,
            data.with_train_subset(args.subset, args.seed),
            tmp,
            default_config("spos", epochs=args.epochs, seed=args.seed),
            {"channels": args.channels, "cells": 1},
            on_epoch=lambda r: print(f"  supernet epoch {r['epoch']}: train acc {r['train_acc']:.1f}%", flush=True),
            subnetwork_trials=1,
        )
    train_s = time.perf_counter() - start
    assert result.supernet is not None
    evaluator = SupernetEvaluator(result.supernet, data, calibration_batches=8)
    inherited = [evaluator.evaluate(g)["val_acc"] for g in cells]
    tau = float(kendalltau(inherited, standalone)[0])
    rho = float(spearmanr(inherited, standalone)[0])
    print(
        f"\nSPOS supernet: NB201, {args.channels} channels, 1 cell per stage, {args.epochs} epochs on {args.subset:,} "
        f"Fashion-MNIST images ({train_s:.0f}s)\n{'inherited':>10} {'alone':>7}  cell"
    )
    for a, b, g in zip(inherited, standalone, cells):
        print(f"{a:>10.2f} {b:>7.2f}  {g}")
    print(f"\nKendall tau {tau:.3f}, Spearman rho {rho:.3f} over {len(cells)} sub-networks")
    print(
        json.dumps(
            {
                "n": len(cells),
                "kendall_tau": tau,
                "spearman_rho": rho,
                "inherited": inherited,
                "standalone": standalone,
                "supernet_epochs": args.epochs,
                "supernet_seconds": train_s,
            }
        )
    )


if __name__ == "__main__":
    main()

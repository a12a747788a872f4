"""Latency-aware one-shot search against latency-constrained multi-trial search, on the ``mobile`` space.

    python benchmarks/latency_oneshot.py --data-dir ../shared/data --out runs/lat1s        # both datasets
    python benchmarks/latency_oneshot.py --data-dir ../shared/data --out runs/lat1s --datasets fashion-mnist \
        --subset 1500 --epochs 5 --trial-epochs 2 --retrain-epochs 3 --retrain-subset 3000 --val-subset 500
        # the README's table: ~50 minutes alone on a 2-core machine
    python benchmarks/latency_oneshot.py ... --method spos --multi-trial-factors 3   # SPOS, evolution at 3x its time

Per dataset (``--datasets``: Fashion-MNIST at 1x28x28, CIFAR-10 at 3x32x32 from its JPEG folders) a latency table of
the networks searched (``mobile`` at ``--width`` 0.25, ONNX Runtime, batch 1, 1 thread) and three limits: the 25th,
50th and 75th percentile of 200 random networks' predicted latency. Per limit and seed (``--seeds``):

1. one-shot: ``--method`` on the supernet for ``--epochs`` on ``--subset`` training images, with
   ``--latency-target-ms`` the limit. GDAS (one path per step, so the supernet trains at one network's cost): the
   derived network is the most probable one the table predicts within it. SPOS (``--method spos``, one uniformly
   drawn path per step): evolution over ``--subnetwork-trials`` sub-networks the table predicts within the limit,
   scored with inherited weights on ``--val-subset`` validation images. Either is measured on ONNX Runtime;
2. multi-trial: regularized evolution with ``--constraint latency_ms<=limit --latency-table`` (trials of
   ``--trial-epochs`` on ``--subset`` images, validated on ``--val-subset``) for the one-shot run's wall time, and
   for three times as long (``--multi-trial-factors``);
3. each winner retrained alike (``--retrain-epochs`` on the whole training split or ``--retrain-subset`` of it,
   tested on the whole test split; a network two searches found is retrained once) and its latency measured as a
   search checks a limit (the lowest median of 50 calls in each of five sessions, again after a pause while over).

It prints one row per run, a table per dataset, limit and search (limits met, measured latency, test accuracy
mean ± std over the seeds, wall time) and one JSON line with everything. Run it alone: it uses every thread it is
given (the latency measurements one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import archsearch
from archsearch.costs.lookup import LatencyTable
from archsearch.costs.runtime import verified_ms
from archsearch.data import as_data, load_dataset
from archsearch.oneshot import METHODS
from archsearch.spaces import get_space

SHAPES = {"fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def limits(table: LatencyTable, seed: int = 7) -> list[float]:
    """The 25th, 50th and 75th percentile of 200 random networks' predicted latency (ms)."""
    space, rng = get_space("mobile"), np.random.default_rng(seed)
    predicted = [table.predict(space.sample(rng)) for _ in range(200)]
    return [round(float(np.percentile(predicted, q)), 4) for q in (25, 50, 75)]


def measured(genotype: Any, table: LatencyTable, limit: float) -> float:
    """The genotype's network on the table's runtime, as the search's own check measures a limit: the lowest median
    of 50 calls in each of five sessions, measured again after a pause while that is over the limit (one session's
    median was up to 60% high when the host ran slow for a while; five back to back 45% high once)."""
    model = table.network(genotype, get_space("mobile")).eval()
    return verified_ms(model, table.input_shape, table.target, 1, 1, limit, repeats=50)


def retrained(genotype: Any, dataset: str, args: argparse.Namespace, table: LatencyTable,
              done: dict[str, float]) -> float:  # fmt: skip
    """Test accuracy (whole test split) of the genotype retrained from scratch with the benchmark's retraining
    settings; a network two searches found is retrained once (``done``, by dataset and genotype)."""
    key = f"{dataset} {genotype}"
    if key not in done:
        record = archsearch.train(str(genotype), space="mobile", dataset=dataset, data_dir=args.data_dir,
                                  build=dict(table.build), epochs=args.retrain_epochs, subset=args.retrain_subset,
                                  val_subset=args.val_subset, seed=0)  # fmt: skip
        done[key] = float(record.test_acc)
    return done[key]


def one_run(dataset: str, limit: float, seed: int, lut: Path, table: LatencyTable, args: argparse.Namespace,
            out: Path, done: dict[str, float]) -> list[dict[str, Any]]:  # fmt: skip
    """The one-shot search at ``limit`` and the two multi-trial searches at its wall time and three times it."""
    rows = []
    start = time.perf_counter()
    data = as_data(dataset, args.data_dir)
    if args.val_subset:  # what a method that searches sub-networks scores them on
        data = data.with_val_subset(args.val_subset, seed=seed)
    subnetworks = {"subnetwork_trials": args.subnetwork_trials, "path_sampling": args.path_sampling}
    found = archsearch.oneshot(args.method, "mobile", data, out / f"oneshot_{limit}_{seed}",
                               supernet_options=dict(table.build), subset=args.subset, epochs=args.epochs, seed=seed,
                               latency_table=lut, latency_target_ms=limit, plots=False,
                               **(subnetworks if METHODS.get(args.method).searches_subnetworks else {}))  # fmt: skip
    seconds = time.perf_counter() - start
    rows.append({"search": f"one-shot {args.method}", "genotype": str(found.genotype), "seconds": round(seconds, 1),
                 "notes": found.notes})  # fmt: skip
    for factor in (float(f) for f in args.multi_trial_factors.split(",") if f.strip()):
        start = time.perf_counter()
        result = archsearch.search("mobile", "evolution", dataset, seconds=factor * seconds, seed=seed,
                                   out=out / f"evolution{factor:g}x_{limit}_{seed}",
                                   constraints=[f"latency_ms<={limit}"],
                                   latency_table=str(lut), evaluator_options={"data_dir": args.data_dir,
                                   "subset": args.subset, "val_subset": args.val_subset,
                                   "epochs": args.trial_epochs, **table.build, "patience": None})  # fmt: skip
        rows.append({"search": f"evolution, {factor:g}x the time", "genotype": str(result.best[0].genotype),
                     "seconds": round(time.perf_counter() - start, 1), "trials": result.trials})  # fmt: skip
    for row in rows:
        g = get_space("mobile").parse(row["genotype"])
        accuracy = retrained(g, dataset, args, table, done)
        row.update(dataset=dataset, limit_ms=limit, seed=seed, predicted_ms=round(table.predict(g), 4),
                   measured_ms=round(measured(g, table, limit), 4), test_acc=round(accuracy, 2))
        row["met"] = row["measured_ms"] <= limit
        print(f"{dataset:<13} limit {limit:.3f} ms seed {seed}  {row['search']:<22} measured {row['measured_ms']:.3f} "
              f"ms ({'met' if row['met'] else 'BROKEN'})  test {row['test_acc']:.2f}%  {row['seconds']:.0f} s",
              flush=True)  # fmt: skip
    return rows


def summary(rows: list[dict[str, Any]]) -> None:
    """Per dataset, limit and search: limits met (measured), mean and std of the test accuracy, mean wall time."""
    print("| dataset | limit (ms) | search | met, measured | measured ms, mean (max) | test acc. | wall time |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["limit_ms"], row["search"]), []).append(row)
    for (dataset, limit, search), group in groups.items():
        acc = [r["test_acc"] for r in group]
        ms = [r["measured_ms"] for r in group]
        spread = f" ± {statistics.stdev(acc):.2f}" if len(acc) > 1 else ""
        print(f"| {dataset} | {limit:.3f} | {search} | {sum(r['met'] for r in group)}/{len(group)} | "
              f"{statistics.fmean(ms):.3f} ({max(ms):.3f}) | {statistics.fmean(acc):.2f}{spread} | "
              f"{statistics.fmean(r['seconds'] for r in group):.0f} s |")  # fmt: skip


def main() -> None:
    """Tables, limits, then every dataset x limit x seed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", default="fashion-mnist,cifar10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--method", default="gdas")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=10, help="one-shot search epochs")
    parser.add_argument("--trial-epochs", type=int, default=3, help="epochs of each multi-trial trial")
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--retrain-subset", type=int, help="retrain on a seeded subset of the training split "
                        "(default: all of it)")
    parser.add_argument("--val-subset", type=int, help="trials and retraining validate on a seeded subset of the "
                        "validation split (the test split stays whole)")
    parser.add_argument("--subnetwork-trials", type=int, help="a method that searches sub-networks (spos): how many "
                        "it scores (default 50)")  # fmt: skip
    parser.add_argument("--path-sampling", choices=("fair", "uniform"), help="spos: its path sampling (default "
                        "uniform: one path per step, the cost of one network; fair trains 13 per step here)")
    parser.add_argument("--multi-trial-factors", default="1,3", help="the multi-trial searches' wall times, as "
                        "multiples of the one-shot run's ('' for none: a second method beside an earlier run's rows "
                        "at the same limits, given the same --out)")  # fmt: skip
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    if METHODS.get(args.method).searches_subnetworks:
        args.subnetwork_trials = args.subnetwork_trials or 50
        args.path_sampling = args.path_sampling or "uniform"
    elif args.subnetwork_trials is not None or args.path_sampling is not None:
        parser.error(f"--subnetwork-trials and --path-sampling set a search over sub-networks, which {args.method} "
                     "does not run (spos does)")
    rows: list[dict[str, Any]] = []
    done: dict[str, float] = {}
    for dataset in args.datasets.split(","):
        shape = SHAPES[dataset]
        load_dataset(dataset, args.data_dir)  # decoded once into the cache before anything is timed
        lut = args.out / f"lut_{dataset}.json"
        if not lut.exists():
            archsearch.latency_table("mobile", lut, target="onnxruntime", input_shape=shape, num_classes=10,
                                     build={"width": args.width}, threads=1, repeats=30)  # fmt: skip
        table = LatencyTable.load(lut)
        for limit in limits(table):
            for seed in (int(s) for s in args.seeds.split(",")):
                rows += one_run(dataset, limit, seed, lut, table, args, args.out, done)
    summary(rows)
    print(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows}))


if __name__ == "__main__":
    main()

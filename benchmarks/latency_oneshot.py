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
mean ± std over the seeds, wall time) and one JSON line with everything. Each row is stored in ``--out/rows.jsonl``
as it is done: run the same command again after a kill and it goes on where it stopped (a search the kill cut off
starts again from scratch, in a new folder); other settings with the same ``--out`` are refused. Run it alone: it
uses every thread it is given (the latency measurements one).
"""

from __future__ import annotations

import argparse
import fcntl
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
from archsearch.outputs import write_file
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


def retrained(genotype: Any, dataset: str, args: argparse.Namespace, table: LatencyTable, store: RowStore) -> float:
    """Test accuracy (whole test split) of the genotype retrained from scratch with the benchmark's retraining
    settings; a network two searches found is retrained once (the store knows every stored row's)."""
    known = store.test_acc(dataset, str(genotype))
    if known is not None:
        return known
    record = archsearch.train(str(genotype), space="mobile", dataset=dataset, data_dir=args.data_dir,
                              build=dict(table.build), epochs=args.retrain_epochs, subset=args.retrain_subset,
                              val_subset=args.val_subset, seed=0)  # fmt: skip
    return float(record.test_acc)


class RowStore:
    """The rows of ``--out``, one JSON line each in ``rows.jsonl``, so a killed benchmark run again with the same
    ``--out`` goes on where it stopped. ``settings.json`` holds the settings every row shares; a run with others is
    refused, naming them. One process at a time (an OS lock on ``rows.lock``)."""

    SHARED = ("width", "subset", "epochs", "trial_epochs", "retrain_epochs", "retrain_subset", "val_subset")

    def __init__(self, out: Path, args: argparse.Namespace) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self._lock = open(out / "rows.lock", "a")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another benchmark process is writing {out}") from None
        settings = {name: getattr(args, name) for name in self.SHARED}
        stored_path = out / "settings.json"
        if stored_path.exists():
            stored = json.loads(stored_path.read_text())
            differ = [f"--{k.replace('_', '-')} {stored.get(k)} (stored) against {v}" for k, v in settings.items()
                      if stored.get(k) != v]  # fmt: skip
            if differ:
                raise SystemExit(f"{out} holds rows measured with other settings: {'; '.join(differ)}; give "
                                 "another --out or the stored settings")  # fmt: skip
        else:
            write_file(json.dumps(settings, indent=1) + "\n", stored_path)
        self.path = out / "rows.jsonl"
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            lines = self.path.read_text().splitlines(keepends=True)
            complete = [line for line in lines if line.endswith("\n")]
            if len(complete) < len(lines):  # a row cut off by a kill: dropped, so the next append starts a line
                print(f"{self.path}: the last row was cut off; it is run again", flush=True)
                write_file("".join(complete), self.path)
            self.rows = [json.loads(line) for line in complete if line.strip()]

    def get(self, **key: Any) -> dict[str, Any] | None:
        """The stored row whose fields equal ``key``'s, or None."""
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def test_acc(self, dataset: str, genotype: str) -> float | None:
        """The retrained test accuracy of a network a stored row holds, or None."""
        row = self.get(dataset=dataset, genotype=genotype)
        return None if row is None else float(row["test_acc"])

    def add(self, row: dict[str, Any]) -> None:
        """Append one row (flushed to disk before it counts as done)."""
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)


def fresh_dir(path: Path) -> Path:
    """``path``, or ``path`` with the first free ``-N`` suffix where a killed run left it: a search restarted from
    scratch, so its wall time is a whole run's."""
    n, candidate = 1, path
    while candidate.exists():
        n, candidate = n + 1, path.with_name(f"{path.name}-{n + 1}")
    return candidate


def one_run(dataset: str, limit: float, seed: int, lut: Path, table: LatencyTable, args: argparse.Namespace,
            out: Path, store: RowStore) -> None:  # fmt: skip
    """The one-shot search at ``limit`` and the multi-trial searches at multiples of its wall time; each row is
    retrained, measured and stored before the next search starts, and a row the store holds is not run again."""
    key = {"dataset": dataset, "limit_ms": limit, "seed": seed}
    options = ({"subnetwork_trials": args.subnetwork_trials, "path_sampling": args.path_sampling}
               if METHODS.get(args.method).searches_subnetworks else {})  # fmt: skip
    oneshot = store.get(**key, search=f"one-shot {args.method}")
    if oneshot is not None and oneshot.get("options", {}) != options:
        raise SystemExit(f"{out} holds {args.method}'s run at {limit} ms, seed {seed} with {oneshot.get('options')}, "
                         f"not {options}: give another --out or the stored options")  # fmt: skip
    if oneshot is None:
        start = time.perf_counter()
        data = as_data(dataset, args.data_dir)
        if args.val_subset:  # what a method that searches sub-networks scores them on
            data = data.with_val_subset(args.val_subset, seed=seed)
        run_dir = fresh_dir(out / f"oneshot_{args.method}_{limit}_{seed}")
        found = archsearch.oneshot(args.method, "mobile", data, run_dir, supernet_options=dict(table.build),
                                   subset=args.subset, epochs=args.epochs, seed=seed, latency_table=lut,
                                   latency_target_ms=limit, plots=False, **options)  # fmt: skip
        row = {"search": f"one-shot {args.method}", "genotype": str(found.genotype), "options": options,
               "seconds": round(time.perf_counter() - start, 1), "notes": found.notes}  # fmt: skip
        oneshot = finish(row, key, table, args, store)
    for factor in (float(f) for f in args.multi_trial_factors.split(",") if f.strip()):
        search = f"evolution, {factor:g}x {args.method}'s time"
        if store.get(**key, search=search) is not None:
            continue
        start = time.perf_counter()
        result = archsearch.search("mobile", "evolution", dataset, seconds=factor * oneshot["seconds"], seed=seed,
                                   out=fresh_dir(out / f"evolution{factor:g}x_{args.method}_{limit}_{seed}"),
                                   constraints=[f"latency_ms<={limit}"],
                                   latency_table=str(lut), evaluator_options={"data_dir": args.data_dir,
                                   "subset": args.subset, "val_subset": args.val_subset,
                                   "epochs": args.trial_epochs, **table.build, "patience": None})  # fmt: skip
        row = {"search": search, "genotype": str(result.best[0].genotype),
               "seconds": round(time.perf_counter() - start, 1), "trials": result.trials}  # fmt: skip
        finish(row, key, table, args, store)


def finish(row: dict[str, Any], key: dict[str, Any], table: LatencyTable, args: argparse.Namespace,
           store: RowStore) -> dict[str, Any]:  # fmt: skip
    """The row's winner retrained and measured, printed and stored."""
    g = get_space("mobile").parse(row["genotype"])
    row.update(key, test_acc=round(retrained(g, key["dataset"], args, table, store), 2),
               predicted_ms=round(table.predict(g), 4), measured_ms=round(measured(g, table, key["limit_ms"]), 4))
    row["met"] = row["measured_ms"] <= key["limit_ms"]
    print(f"{key['dataset']:<13} limit {key['limit_ms']:.3f} ms seed {key['seed']}  {row['search']:<22} measured "
          f"{row['measured_ms']:.3f} ms ({'met' if row['met'] else 'BROKEN'})  test {row['test_acc']:.2f}%  "
          f"{row['seconds']:.0f} s", flush=True)  # fmt: skip
    store.add(row)
    return row


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
    store = RowStore(args.out, args)
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
                one_run(dataset, limit, seed, lut, table, args, args.out, store)
    summary(store.rows)
    print(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rows": store.rows}))


if __name__ == "__main__":
    main()

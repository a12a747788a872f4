"""Latency on devices archsearch cannot run on, predicted from k networks timed there.

    python benchmarks/device_latency.py --data-dir ../shared/data          # ~1 min on one core
    python benchmarks/device_latency.py --data-dir ../shared/data --search # + a constrained search per device

For every device column of ``nb201/nb201_latency_devices.csv`` (Pixel 3, Raspberry Pi 4, an FPGA, a Xeon Gold 6226),
``--draws`` times: k networks drawn at random are the "measured" ones; ``archsearch.costs.device_model.fit`` builds a
model from them (op counts, params and FLOPs, and the other three devices' columns as a reference table: the device
being predicted is never among its own references, as HELP's meta-learning never sees the test device); the model
predicts the other 15,625 - k networks. Printed per device and k: Spearman's rho and the share within +-10% of the
measured latency (mean over the draws), beside the same model without references (op counts and size only), and
FLOPs' and params' own Spearman over all networks (the baselines, computed in the same run). The noise ceiling: a
gradient-boosted model fitted on half the table, scored on the other half.

``--search``: for every device, a model fitted on 10 random networks (the measured CSV and the reference table are
written as files and read back through ``archsearch.fit_latency_model``, as a user would), then an evolution search
of ``--trials`` queries on the NB201 table with ``--constraint latency_ms<=L`` (L: the device's median latency)
and ``--latency-model``; the winner's latency on the device's own column says whether the limit was met.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from archsearch.costs.device_model import LatencyModel, fit, raw_features
from archsearch.spaces import get_space

DEVICES = ("pixel3_ms", "raspi4_ms", "fpga_ms", "xeon_gold6226_ms")


def _score(model: LatencyModel, raws: list, truth: np.ndarray) -> tuple[float, float]:
    predicted = np.array(model.predict_features(raws))
    within = np.abs(predicted - truth) <= 0.1 * truth
    return float(spearmanr(predicted, truth).statistic), float(within.mean())


def _ceiling(features: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=300, random_state=0).fit(features[::2], y[::2])
    predicted, truth = model.predict(features[1::2]), y[1::2]
    return float(spearmanr(predicted, truth).statistic), float(np.mean(np.abs(predicted - truth) <= 0.1 * truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA", "../shared/data"))
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--k", default="10,20")
    parser.add_argument("--search", action="store_true", help="also run a latency-constrained search per device")
    parser.add_argument("--trials", type=int, default=200, help="queries of each --search")
    args = parser.parse_args()
    space = get_space("nb201")
    with (Path(args.data_dir) / "nb201" / "nb201_latency_devices.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    genotypes = [space.parse(r["arch"]) for r in rows]
    columns = {d: np.array([float(r[d]) for r in rows]) for d in DEVICES}
    counts = [space.counts(g) for g in genotypes]
    flops, params = np.array([c["flops"] for c in counts]), np.array([c["params"] for c in counts])
    onehot = np.array([[float(op == o) for op in g.ops for o in space.ops()] for g in genotypes])
    print(f"{len(rows)} networks, {args.draws} draws of k measured networks each; Spearman rho and share within "
          "+-10% on the others (mean over draws)")  # fmt: skip
    print("| device | k | rho | within +-10% | rho, no reference | within, no reference | FLOPs rho | params rho |"
          " ceiling rho / within |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    summary: dict[int, list[float]] = {}
    start = time.perf_counter()
    for device in DEVICES:
        y = columns[device]
        others = [d for d in DEVICES if d != device]
        reference = {"columns": others, "rows": {g.key: [float(columns[d][i]) for d in others]
                                                 for i, g in enumerate(genotypes)}}  # fmt: skip
        base = (spearmanr(flops, y).statistic, spearmanr(params, y).statistic)
        raws = [raw_features(g, space, "ops+size+reference", reference) for g in genotypes]
        ceiling = _ceiling(np.hstack([onehot, np.stack([columns[d] for d in others], 1)]), y)
        for k in (int(v) for v in args.k.split(",")):
            rng = np.random.default_rng(k)
            with_ref, without = [], []
            for _ in range(args.draws):
                chosen = rng.choice(len(rows), k, replace=False)
                rest = np.setdiff1d(np.arange(len(rows)), chosen)
                measured = [(genotypes[i], float(y[i])) for i in chosen]
                test = [raws[i] for i in rest]
                with_ref.append(_score(fit(measured, space, reference), test, y[rest]))
                without.append(_score(fit(measured, space), test, y[rest]))
            rho, within = (statistics.fmean(v) for v in zip(*with_ref))
            rho0, within0 = (statistics.fmean(v) for v in zip(*without))
            summary.setdefault(k, []).append(rho)
            print(f"| {device} | {k} | {rho:.3f} | {100 * within:.1f}% | {rho0:.3f} | {100 * within0:.1f}% | "
                  f"{base[0]:.3f} | {base[1]:.3f} | {ceiling[0]:.3f} / {100 * ceiling[1]:.1f}% |", flush=True)
    for k, values in sorted(summary.items()):
        print(f"k = {k}: mean rho over the devices {statistics.fmean(values):.3f}")
    print(f"{time.perf_counter() - start:.0f} s")
    if args.search:
        constrained_searches(Path(args.data_dir), rows, columns, args.trials)


def constrained_searches(data: Path, rows: list[dict[str, str]], columns: dict[str, np.ndarray], trials: int) -> None:
    """A table search under a latency limit predicted by a model of 10 measured networks, per device."""
    import tempfile

    import archsearch

    with (data / "nb201" / "nb201_cifar10.csv").open(newline="") as f:
        test_acc = np.array([float(r["test_acc_200ep"]) for r in csv.DictReader(f)])  # row for row with rows
    print("| device | limit (median) | winner predicted | winner on the device | met | winner test_acc_200ep | best "
          "within the limit |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for device in DEVICES:
            chosen = rng.choice(len(rows), 10, replace=False)
            measured, reference = Path(tmp) / f"{device}.csv", Path(tmp) / f"{device}_reference.csv"
            others = [d for d in DEVICES if d != device]
            with measured.open("w", newline="") as f:
                csv.writer(f).writerows([("arch", "latency_ms")] + [(rows[i]["arch"], rows[i][device]) for i in chosen])
            with reference.open("w", newline="") as f:
                csv.writer(f).writerows([("arch", *others)] + [(r["arch"], *(r[d] for d in others)) for r in rows])
            model = archsearch.fit_latency_model("nb201", measured, Path(tmp) / f"{device}.json", reference=reference)
            limit = float(np.median(columns[device]))
            result = archsearch.search(space="nb201", strategy="evolution", table=str(data / "nb201" /
                                       "nb201_cifar10.csv"), budget=trials, constraints=[f"latency_ms<={limit}"],
                                       latency_model=model.path, out=Path(tmp) / f"run_{device}")  # fmt: skip
            winner = result.winner
            assert winner is not None
            actual = float(next(r[device] for r in rows if r["arch"] == str(winner.genotype)))
            print(f"| {device} | {limit:.3f} ms | {winner.metrics['latency_ms']:.3f} ms | {actual:.3f} ms | "
                  f"{'yes' if actual <= limit else 'no'} | {winner.metrics['test_acc']:.2f} | "
                  f"{test_acc[columns[device] <= limit].max():.2f} |", flush=True)


if __name__ == "__main__":
    main()

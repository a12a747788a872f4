"""Hardware-aware search, measured: the latency predictor against measured latency, a latency-constrained search
beside an unconstrained one, and the exported winner on ONNX Runtime against PyTorch eager.

    python benchmarks/hardware_aware.py predictor                      # ~6 min, alone on the machine
    python benchmarks/hardware_aware.py search --data-dir ../shared/data  # ~10 min
    python benchmarks/hardware_aware.py export --run runs/hw/constrained

``predictor``: latency tables of the ``mobile`` space (224x224, 1,000 classes, width 1, batch 1, 1 thread) are
built and timed for ONNX Runtime, for PyTorch eager (blocks also timed inside 30 networks) and for eager with blocks
timed alone (``profile=0``); ``--n`` networks sampled with seed 1 (calibration and profiling use other seeds) are
measured whole once per target (median of 30 calls after 10) and compared with each table's prediction: Kendall
tau, mean absolute relative error, and the share within +-10%.

``search``: a table for the search's networks (Fashion-MNIST 1x28x28, width 0.25, ONNX Runtime, 1 thread); the
limit is the median predicted latency of 200 random networks (about half violate it). Two regularized-evolution
searches of ``--trials`` trials (``--subset`` training images, ``--epochs`` epochs), one with ``--constraint
latency_ms<=LIMIT --latency-table``, one without (latency measured on ONNX Runtime for every trial), each with
``--objectives val_acc,latency_ms`` so the run's report draws the Pareto front (``report --png``). Each winner's
latency is then measured on ONNX Runtime and set against the limit.

``export``: a run's winner exported to ONNX, and its latency on ONNX Runtime and PyTorch eager at batch 1 and 64.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

import archsearch
from archsearch.costs.lookup import LatencyTable
from archsearch.costs.runtime import measure
from archsearch.spaces import get_space


def predictor(n: int, out: Path) -> dict[str, Any]:
    space, shape, results = get_space("mobile"), (3, 224, 224), {}
    variants = (("onnxruntime", "onnxruntime", 30), ("eager", "eager", 30), ("eager, blocks alone", "eager", 0))
    measured: dict[str, np.ndarray] = {}
    for name, target, profile in variants:
        written = archsearch.latency_table("mobile", out / f"lut_{target}_{profile}.json", target=target,
                                           input_shape=shape, num_classes=1000, threads=1, repeats=30,
                                           profile=profile)  # fmt: skip
        table = LatencyTable.load(written.path)
        rng = np.random.default_rng(1)
        genotypes = [space.sample(rng) for _ in range(n)]
        if target not in measured:  # the same 100 networks, measured once per target
            measured[target] = np.array([measure(space.build(g, 3, 1000, 224, seed=0), shape, target, 1, 1,
                                                 warmup=10, repeats=30).median_ms for g in genotypes])  # fmt: skip
        p, m = np.array([table.predict(g) for g in genotypes]), measured[target]
        rel = np.abs(p - m) / m
        r = results[name] = {"blocks": written.blocks, "build_seconds": round(written.built_seconds, 1),
                             "scale": round(written.scale, 3), "kendall_tau": round(float(kendalltau(p, m)[0]), 3),
                             "mean_abs_rel_error": round(float(rel.mean()), 4),
                             "within_10pct": round(float((rel <= 0.10).mean()), 3),
                             "measured_ms_range": [round(float(m.min()), 2), round(float(m.max()), 2)]}  # fmt: skip
        print(f"{name:<20} table: {written.blocks} blocks in {written.built_seconds:.1f} s (scale {r['scale']}); "
              f"{n} networks {m.min():.1f}-{m.max():.1f} ms: tau {r['kendall_tau']}, mean |rel. error| "
              f"{100 * rel.mean():.1f}%, within +-10%: {100 * (rel <= 0.1).mean():.0f}%", flush=True)  # fmt: skip
    return results


def search(data_dir: str, trials: int, subset: int, epochs: int, out: Path) -> dict[str, Any]:
    space, width = get_space("mobile"), 0.25
    lut = out / "lut_fashion_ort.json"
    archsearch.latency_table("mobile", lut, target="onnxruntime", input_shape=(1, 28, 28), num_classes=10,
                             build={"width": width}, threads=1, repeats=30)  # fmt: skip
    table = LatencyTable.load(lut)
    rng = np.random.default_rng(7)
    limit = round(float(np.median([table.predict(space.sample(rng)) for _ in range(200)])), 3)
    print(f"limit: latency_ms <= {limit} (median predicted latency of 200 random networks)", flush=True)
    common: dict[str, Any] = {"space": "mobile", "strategy": "evolution", "dataset": "fashion-mnist",
                              "budget": trials, "objectives": "val_acc,latency_ms", "seed": 0,
                              "evaluator_options": {"data_dir": data_dir, "subset": subset, "epochs": epochs,
                                                    "width": width, "patience": None}}  # fmt: skip
    rows = {}
    for name, extra in (("constrained", {"constraints": [f"latency_ms<={limit}"], "latency_table": str(lut)}),
                        ("unconstrained", {"latency_target": "onnxruntime"})):  # fmt: skip
        run = out / name
        result = archsearch.search(out=run, **common, **extra)
        winner = result.best[0]
        measured = archsearch.latency(run, "onnxruntime", repeats=50)[0].median_ms
        report = archsearch.report(run, run / "report.html", png=run / "png")
        rows[name] = {"winner": str(winner.genotype), "val_acc": round(winner.metrics["val_acc"], 2),
                      "measured_ms": round(measured, 3), "limit_ms": limit,
                      "infeasible": result.infeasible,
                      "pngs": sorted(str(p) for p in Path(report.png or run / "png").glob("*pareto*"))}  # fmt: skip
        print(
            f"{name:<14} winner val_acc {rows[name]['val_acc']:.2f}%  measured {measured:.3f} ms (limit {limit}); "
            f"{rows[name]['infeasible']} of {trials} trials broke the limit; {rows[name]['winner']}",
            flush=True,
        )
    return {"limit_ms": limit, **rows}


def export(run: Path, out: Path) -> dict[str, Any]:
    exported = archsearch.export(run, "onnx", out / "export")
    rows = {}
    for batch in (1, 64):
        for record in archsearch.latency(run, "eager,onnxruntime", batch_size=batch, threads=1, repeats=30):
            rows[f"{record.target}_batch{batch}"] = round(record.median_ms, 3)
        ratio = rows[f"eager_batch{batch}"] / rows[f"onnxruntime_batch{batch}"]
        print(
            f"batch {batch:>2}: eager {rows[f'eager_batch{batch}']:.3f} ms, onnxruntime "
            f"{rows[f'onnxruntime_batch{batch}']:.3f} ms ({ratio:.2f}x)",
            flush=True,
        )
    return {"onnx": exported.files[0], **rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("predictor", "search", "export"))
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA", "../shared/data"))
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--subset", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--run", type=Path, help="export: the run directory")
    p.add_argument("--out", type=Path, default=Path("runs/hw"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part == "predictor":
        result = predictor(args.n, args.out)
    elif args.part == "search":
        result = search(args.data_dir, args.trials, args.subset, args.epochs, args.out)
    else:
        result = export(args.run or args.out / "constrained", args.out)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

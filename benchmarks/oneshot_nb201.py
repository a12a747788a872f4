"""One-shot methods judged by the NAS-Bench-201 protocol: search CIFAR-10, look the derived cell up in the table.

    python benchmarks/oneshot_nb201.py --data-dir ../shared/data                  # the CPU budget below
    python benchmarks/oneshot_nb201.py --data-dir ../shared/data --paper --device cuda   # the paper's settings

Each method (``--methods``: DARTS first and second order, PC-DARTS, beta-DARTS, GDAS, SPOS with its evolution over
sub-networks, and a random cell as the floor) searches the NB201 supernet on CIFAR-10 for every seed of ``--seeds``,
with ``archsearch.oneshot(..., table=...)`` looking the cell derived after every epoch up in the table. Printed per
method: the mean ± std over seeds of the final derived cell's ``test_acc_200ep``, its share of parameter-free ops
(``none``, ``skip_connect``, ``avg_pool_3x3``: 1.0 is DARTS's collapse to an all-skip cell), the wall time per seed,
and the NB201 paper's figure for the method. The CPU budget (default) and the paper's settings (``--paper``: C=16,
N=5, 50 epochs, batch 64, all 45,000 training images of the loader's split in halves, where the paper splits 50,000
25k/25k) are printed above the table; a figure at the
CPU budget is not the paper's experiment and is labelled with its budget. The last line is one JSON object with
every run's per-epoch table figures.

The images are CIFAR-10's (``--dataset``, default ``cifar10``: the official batches, or its JPEG folders under
``--data-dir``); the table is ``<data-dir>/nb201/nb201_cifar10.csv``. Run it alone: it uses every thread it is given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.api.oneshot_search import oneshot
from archsearch.data import load_dataset
from archsearch.evaluators.table import lookup_table
from archsearch.spaces import get_space

#: CIFAR-10 test accuracy of the derived cell as the NAS-Bench-201 paper reports it (Table 5, mean ± std); beta-DARTS
#: is not in that paper: its figure is its own paper's (Ye et al. 2022, Table 1)
PAPER = {"darts": "54.30", "darts2": "54.30", "gdas": "93.61 ± 0.09", "spos": "87.66 (RSPS, its nearest)",
         "pcdarts": "-", "betadarts": "94.36 ± 0.00 (the beta-DARTS paper, same protocol)",
         "random": "- (a random cell: the table's mean cell is 87.06)"}  # fmt: skip
PARAMETER_FREE = ("none", "skip_connect", "avg_pool_3x3")
CPU = {"channels": 8, "cells_per_stage": 1, "epochs": 10, "batch_size": 64, "images": 10_000}
GPU = {"channels": 16, "cells_per_stage": 5, "epochs": 50, "batch_size": 64, "images": 45_000}


def _settings(args: argparse.Namespace) -> dict[str, int]:
    base = dict(GPU if args.paper else CPU)
    for name in base:
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    return base


def _run(method: str, seed: int, data: Any, table: Path, settings: dict[str, int], args: argparse.Namespace,
         root: Path) -> dict[str, Any]:  # fmt: skip
    """One search: the derived cell, its table row, the per-epoch figures and the wall time."""
    space = get_space("nb201")
    start = time.perf_counter()
    if method == "random":
        cell = space.sample(np.random.default_rng(seed))
        return {"cell": str(cell), "row": lookup_table(table, space).find(cell), "epochs": [], "seconds": 0.0}
    supernet = {"channels": settings["channels"], "cells_per_stage": settings["cells_per_stage"]}
    result = oneshot(method, "nb201", data, root / f"{method}-{seed}", device=args.device, plots=False, table=table,
                     supernet_options=supernet, epochs=settings["epochs"], batch_size=settings["batch_size"], seed=seed,
                     subnetwork_trials=args.spos_trials)  # fmt: skip
    per_epoch = [{"epoch": r["epoch"], **(r.get("table") or {})} for r in result.history if "table" in r]
    return {"cell": str(result.genotype), "row": result.table, "epochs": per_epoch,
            "seconds": time.perf_counter() - start}  # fmt: skip


def _finished(path: str | None, key: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs ``--results`` already holds at these settings (``key``), by (method, seed); a line cut short is
    skipped."""
    if not path or not Path(path).exists():
        return {}
    found = {}
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a run killed while writing it
        if all(record.get(k) == v for k, v in key.items()):
            found[(record["method"], record["seed"])] = {k: record[k] for k in ("cell", "row", "epochs", "seconds")}
    return found


def _append(path: str, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _parameter_free(cell: str) -> float:
    ops = get_space("nb201").parse(cell).ops
    return sum(op in PARAMETER_FREE for op in ops) / len(ops)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f} (one seed)"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    """Run every method for every seed and print the table beside the paper's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--methods", default="darts,darts2,pcdarts,betadarts,gdas,spos,random")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--paper", action="store_true", help="the NB201 paper's settings (for a GPU)")
    for name in CPU:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"override the budget's {name}")
    parser.add_argument("--spos-trials", type=int, default=100, help="SPOS: sub-networks its evolution scores")
    parser.add_argument("--results", help="a JSON-lines file: each finished run is appended; a rerun with the same "
                        "settings takes the runs it holds instead of searching again (a long table in several goes)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = _settings(args)
    table = Path(args.data_dir) / "nb201" / "nb201_cifar10.csv"
    data = load_dataset(args.dataset, args.data_dir)  # 45,000 training images; the searches use no other split
    if settings["images"] < len(data.train):
        data = data.with_train_subset(settings["images"], seed=0)
    budget = "the NB201 paper's settings" if args.paper else "a CPU budget, not the paper's"
    print(f"NAS-Bench-201 protocol on {args.dataset}: {budget}: supernet C={settings['channels']}, "
          f"N={settings['cells_per_stage']} cells per stage, {settings['epochs']} epochs, batch "
          f"{settings['batch_size']}, {len(data.train)} training images split in halves for weights and alphas "
          f"(paper: C=16, N=5, 50 epochs, batch 64, 25k/25k); seeds {args.seeds}; {torch.get_num_threads()} "
          "thread(s)\n")  # fmt: skip
    key = {"settings": settings, "dataset": args.dataset, "spos_trials": args.spos_trials}
    done = _finished(args.results, key)
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            runs[method] = []
            for seed in (int(s) for s in args.seeds.split(",")):
                run = done.get((method, seed)) or _run(method, seed, data, table, settings, args, Path(tmp))
                if args.results and (method, seed) not in done:
                    _append(args.results, {**key, "method": method, "seed": seed, **run})
                runs[method].append(run)
    print("| method | test_acc_200ep of the derived cell | parameter-free ops | seconds per seed | NB201 paper |")
    print("| --- | --- | --- | --- | --- |")
    for method, found in runs.items():
        accs = [r["row"]["test_acc_200ep"] for r in found if r["row"]]
        free = [_parameter_free(r["cell"]) for r in found]
        seconds = statistics.fmean(r["seconds"] for r in found)
        print(f"| {method} | {_mean_std(accs)} | {statistics.fmean(free):.2f} | {seconds:.0f} | "
              f"{PAPER.get(method, '-')} |")  # fmt: skip
    print(json.dumps({"settings": settings, "dataset": args.dataset, "runs": runs}))


if __name__ == "__main__":
    main()

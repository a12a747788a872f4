"""Throughput of training-bound trials with 1 and 2 workers, local worker processes and Ray, on this machine.

    python benchmarks/parallel_trials.py [--trials 24] [--epochs 6]

Each trial trains a small NB201 network (8 channels, 1 cell per stage) on scikit-learn's digits for ``--epochs``
epochs with one torch thread, a few seconds of CPU. Every configuration runs the same seeded random search, so the
same architectures are trained. Wall time counts everything from building the executor to the last result (worker
start-up included) except the executor's own start-up (``ray.init`` of a local Ray instance), which is shown
alone: throughput is trials / (wall - start-up). The ratio is the throughput with 2 workers over 1 worker of the
same executor. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from archsearch.api import build_experiment, make_config


def run(kind: str, workers: int, trials: int, epochs: int) -> dict[str, float]:
    """One search; returns wall seconds, trials per second and the executor's start-up seconds."""
    config = make_config(
        space="nb201",
        strategy="random",
        dataset="digits",
        trials=trials,
        workers=workers,
        executor=kind,
        trial_timeout=3600,  # a timeout makes one process worker a real worker process, like two
        evaluator_options={
            "epochs": epochs,
            "batch_size": 64,
            "patience": epochs,
            "build": {"channels": 8, "cells_per_stage": 1},
        },
    )
    with tempfile.TemporaryDirectory(prefix="archsearch-parallel-") as out:
        start = time.perf_counter()
        experiment = build_experiment(config, out)
        startup = float(getattr(experiment.executor, "startup_seconds", 0.0))
        result = experiment.run()
        wall = time.perf_counter() - start
        experiment.store.close()
    assert result.trials == trials and result.failed == 0, f"{kind}/{workers}: {result.failed} failed trials"
    return {"wall_s": wall, "trials_per_s": trials / (wall - startup), "startup_s": startup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--executors", default="process,ray")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    print(f"{args.trials} trials of {args.epochs} epochs on digits per run")
    print(f"{'executor':<10}{'workers':>8}{'wall s':>9}{'trials/s':>10}{'start-up s':>12}{'ratio':>8}")
    for kind in args.executors.split(","):
        one = run(kind, 1, args.trials, args.epochs)
        two = run(kind, 2, args.trials, args.epochs)
        ratio = two["trials_per_s"] / one["trials_per_s"]
        for workers, r in ((1, one), (2, two)):
            shown = f"{ratio:.2f}x" if workers == 2 else ""
            print(
                f"{kind:<10}{workers:>8}{r['wall_s']:>9.1f}{r['trials_per_s']:>10.3f}{r['startup_s']:>12.2f}{shown:>8}"
            )
        rows.append({"executor": kind, "one_worker": one, "two_workers": two, "ratio": ratio})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

"""Per-trial overhead of each strategy on the NB201 table, and how much of the Bayesian strategy's is Optuna's.

    python benchmarks/strategy_overhead.py --data-dir ../shared/data [--seeds 10] [--queries 100]

For every strategy: strategy + store milliseconds per evaluated trial (table lookups counted out), as
``archsearch benchmark`` measures them. For ``bayes`` the same run's sampler is also driven bare, in a plain Optuna
ask/tell loop over the same six categorical parameters with the same settings and the table's accuracy as value,
so the table shows which part of its cost is TPE itself and which part is archsearch's. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

from archsearch.comparison.strategies import benchmark_run, tabular_strategies
from archsearch.evaluators.table import Table
from archsearch.spaces import get_space


def bare_optuna_ms(table: Table, seed: int, queries: int) -> float:
    """Milliseconds per distinct architecture of a plain Optuna TPE ask/tell loop over the NB201 decisions."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("nb201")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen: dict[str, float] = {}  # a repeat is told its known value, as archsearch's store answers it
    lookup = 0.0
    start = time.perf_counter()
    while len(seen) < queries:
        trial = study.ask()
        genotype = space.decide(lambda name, choices, trial=trial: trial.suggest_categorical(name, list(choices)))
        tic = time.perf_counter()
        if genotype.key not in seen:
            seen[genotype.key] = table.lookup(genotype.key)["valid_acc_12ep"]
        lookup += time.perf_counter() - tic
        study.tell(trial, seen[genotype.key])
    return (time.perf_counter() - start - lookup) / queries * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA"))
    parser.add_argument("--strategies", default="all")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("give --data-dir or set ARCHSEARCH_DATA")
    table = Table(Path(args.data_dir) / "nb201" / "nb201_cifar10.csv")
    names = tabular_strategies() if args.strategies == "all" else args.strategies.split(",")
    rows = []
    print(f"{'strategy':<18}{'ms/trial':>10}{'bare library':>14}{'archsearch own':>16}")
    for name in names:
        benchmark_run(name, 0, 10, table)  # warm-up: imports, first allocations
        ms = (
            float(np.mean([benchmark_run(name, seed, args.queries, table).overhead for seed in range(args.seeds)]))
            / args.queries
            * 1e3
        )
        bare = None
        if name == "bayes":
            bare = float(np.mean([bare_optuna_ms(table, seed, args.queries) for seed in range(args.seeds)]))
        own = ms - bare if bare is not None else ms
        rows.append(
            {
                "strategy": name,
                "ms_per_trial": round(ms, 3),
                "bare_library_ms": bare and round(bare, 3),
                "own_ms": round(own, 3),
            }
        )
        bare_text = f"{bare:.3f}" if bare is not None else "-"
        print(f"{name:<18}{ms:>10.3f}{bare_text:>14}{own:>16.3f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

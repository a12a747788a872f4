"""Multi-objective strategies scored exactly: accuracy against each device's measured latency on NAS-Bench-201.

    python benchmarks/table_pareto.py --data-dir ../shared/data            # ~2 min on 2 cores
    python benchmarks/table_pareto.py --data-dir ../shared/data --report pareto.html --png figures/

For every device column of ``nb201/nb201_latency_devices.csv`` (joined to ``nb201_cifar10.csv`` on the
architecture) each strategy searches ``valid_acc_12ep`` against ``<device>:min`` for ``--queries`` distinct
architectures, ``--seeds`` seeds each, through ``archsearch.benchmark``. A run's front (non-dominated by the
search's objectives) is scored on ``test_acc_200ep`` and the device column by its hypervolume as a share of the
table's true front's, from the true front's nadir. The table prints the mean ± std share at 50, 100, 150 and 200
queries (and on the searched columns at the last budget), beside a "run" that evaluated every architecture (the
most a front chosen by the signal can score), and checks the goals: the best strategy >= 98% at 200 queries on
every device, and NSGA-II ahead of random search at every budget from 50 queries. NSGA-II runs with its default
population (20) and with ``--population`` (10). The random strategy is the baseline, measured in the same run;
``ms/trial`` is the strategy's and the store's own time per trial (table lookups counted out).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from types import SimpleNamespace

import archsearch

DEVICES = ("pixel3_ms", "raspi4_ms", "fpga_ms", "xeon_gold6226_ms")
STRATEGIES = "nsga2,motpe,random,evolution,local,bayes"


def _ceiling(tables: list[Path], objectives: str) -> tuple[float, float]:
    """The shares (reported, searched) of a "run" that evaluated every architecture of the table."""
    from archsearch.comparison.pareto import TrueFront, run_front
    from archsearch.comparison.strategies import BenchmarkSetup
    from archsearch.spaces import get_space

    setup = BenchmarkSetup("nb201", tuple(map(str, tables)), objectives=objectives)
    table, objective, space = setup.table(), setup.objective(), get_space("nb201")
    keys = list(table.rows)
    points = [[table.rows[k][o] for o in objective.objectives] for k in keys]
    everything = SimpleNamespace(evaluated=keys, points=points)
    return tuple(TrueFront.of(table, objective, space, on).share(run_front(everything, table, objective, space,
                                                                             len(keys), on))
                 for on in ("reported", "searched"))  # type: ignore[return-value]  # fmt: skip


def _row(device: str, label: str, score: object, budgets: list[int]) -> list[float]:
    shares = [score.shares.get(b, score.shares[max(score.shares)]) for b in budgets]  # type: ignore[attr-defined]
    searched = score.searched[max(score.searched)]  # type: ignore[attr-defined]
    cells = " | ".join(f"{statistics.fmean(v):.2f} ± {statistics.pstdev(v):.2f}" for v in shares)
    print(f"| {device} | {label} | {cells} | {statistics.fmean(searched):.2f} | "
          f"{score.ms_per_trial:.2f} |", flush=True)  # type: ignore[attr-defined]  # fmt: skip
    return [statistics.fmean(v) for v in shares]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("ARCHSEARCH_DATA", "../shared/data"))
    parser.add_argument("--strategies", default=STRATEGIES)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2, help="seeds in parallel processes (one thread each)")
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--population", type=int, default=10, help="NSGA-II also run with this population size")
    parser.add_argument("--report", help="the report of the first device's benchmark (fronts against the true one)")
    parser.add_argument("--png", help="with --report: its figures as PNGs in this folder")
    args = parser.parse_args()
    root = Path(args.data_dir) / "nb201"
    tables = [root / "nb201_cifar10.csv", root / "nb201_latency_devices.csv"]
    print(f"{args.queries} queries, {args.seeds} seeds; hypervolume share (%) of the true front on test_acc_200ep "
          "and the device's latency, mean ± std; 'searched': the share on valid_acc_12ep and the latency at the "
          "last budget")  # fmt: skip
    budgets = [b for b in (50, 100, 150, 200) if b <= args.queries]
    print(f"| device | strategy | {' | '.join(f'{b} queries' for b in budgets)} | searched | ms/trial |")
    print(f"| --- | --- | {' | '.join('---' for _ in budgets)} | --- | --- |")
    verdicts = []
    for n, device in enumerate(args.devices.split(",")):
        objectives = f"valid_acc_12ep,{device}:min"
        common = {"queries": args.queries, "seeds": args.seeds, "jobs": args.jobs, "objectives": objectives}
        result = archsearch.benchmark(tables, args.strategies, report=args.report if n == 0 else None,
                                      png=args.png if n == 0 else None, force=True, **common)  # fmt: skip
        means = {s.strategy: _row(device, s.strategy, s, budgets) for s in result.scores}
        label = f"nsga2 (population {args.population})"
        options = {"nsga2": {"population_size": args.population}}
        (small,) = archsearch.benchmark(tables, "nsga2", strategy_options=options, **common).scores
        means[label] = _row(device, label, small, budgets)
        reported, searched = _ceiling(tables, objectives)
        print(f"| {device} | every architecture evaluated | {' | '.join('' for _ in budgets[:-1])} | {reported:.2f} | "
              f"{searched:.2f} | |", flush=True)  # fmt: skip
        best = max(means, key=lambda k: means[k][-1])
        verdicts.append(f"{device}: best {best} {means[best][-1]:.2f}% at {budgets[-1]} queries "
                        f"({'meets' if means[best][-1] >= 98 else 'misses'} >= 98%; evaluating all: {reported:.2f}%)")
        for name in ("nsga2", label):
            ahead = [b for b, a, r in zip(budgets, means[name], means["random"]) if a > r]
            verdicts.append(f"{device}: {name} ahead of random at {ahead} of {budgets}")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()

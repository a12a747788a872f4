"""The strategy benchmark: every strategy against a tabular benchmark, many seeds, through the real experiment and
store, as NAS researchers compare algorithms (cf. NASLib).

Each run spends ``queries`` evaluations; the architecture a run picks is the one with the best search signal
(``valid_acc_12ep``); what is reported is that architecture's ``test_acc_200ep``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from archsearch.evaluators import Table, TableEvaluator
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.spaces import get_space
from archsearch.store import Store
from archsearch.strategies import STRATEGIES, get_strategy


@dataclass
class StrategyScore:
    """One strategy's results over its seeds."""

    strategy: str
    picks: list[float]  # the reported figure of each run's pick
    ms_per_trial: float  # strategy + store time per evaluated trial (table lookups are counted out)
    repeats: float  # mean answers from the store per run
    runs: list[BenchmarkRun] = field(default_factory=list)  # each seed's run, for anytime curves

    @property
    def mean(self) -> float:
        return statistics.fmean(self.picks)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.picks) if len(self.picks) > 1 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "mean": round(self.mean, 4),
            "std": round(self.std, 4),
            "runs": len(self.picks),
            "ms_per_trial": round(self.ms_per_trial, 4),
            "repeats_per_run": round(self.repeats, 2),
        }


def tabular_strategies() -> list[str]:
    """Every registered single-objective strategy that can run against a table."""
    return [name for name in STRATEGIES if STRATEGIES.get(name).tabular and not STRATEGIES.get(name).multi_objective]


class _TimedTable(TableEvaluator):
    def __init__(self, table: Table) -> None:
        super().__init__(table)
        self.seconds = 0.0

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return super().evaluate(genotype, fidelity, seed)
        finally:
            self.seconds += time.perf_counter() - start


_WORKER_TABLE: Table | None = None


def _init_worker(path: str) -> None:
    global _WORKER_TABLE
    _WORKER_TABLE = Table(path)
    import torch

    torch.set_num_threads(1)  # one core per job: the jobs are the parallelism


@dataclass
class BenchmarkRun:
    """One seeded run of a strategy against the table."""

    pick: str | None  # the architecture with the best search signal among those evaluated
    reported: float  # the pick's reported figure (nan if nothing was evaluated)
    overhead: float  # strategy + store seconds (table lookups counted out)
    evaluated: list[str]  # the distinct architectures evaluated, in order (each one query)
    repeats: int  # proposals answered from the store (not queries)
    queries: int  # table lookups made


def benchmark_run(name: str, seed: int, queries: int, table: Table | None = None) -> BenchmarkRun:
    """One seeded run of strategy ``name`` with a budget of ``queries`` distinct architectures."""
    tab = table if table is not None else _WORKER_TABLE
    if tab is None:
        raise RuntimeError("benchmark_run needs a table (or a worker initialised with one)")
    space = get_space("nb201")
    evaluator = _TimedTable(tab)
    with tempfile.TemporaryDirectory(prefix="archsearch-bench-") as tmp:
        store = Store(tmp, durable=False)  # a throw-away store: no sync to disk per trial
        start = time.perf_counter()
        result = Experiment(
            space,
            get_strategy(name, space, seed=seed),
            evaluator,
            Objective(),
            Budget(trials=queries),
            store,
            seed=seed,
        ).run()
        overhead = time.perf_counter() - start - evaluator.seconds
        evaluated = [t.key for t in sorted(result.best, key=lambda t: t.number)]
        store.close()
    winner = result.winner
    return BenchmarkRun(
        pick=None if winner is None else str(winner.genotype),
        reported=winner.metrics["test_acc"] if winner else float("nan"),
        overhead=overhead,
        evaluated=evaluated,
        repeats=result.repeats,
        queries=evaluator.queries,
    )


def run_benchmark(
    table: str | Table,
    strategies: Sequence[str],
    queries: int = 100,
    seeds: int = 100,
    on_run: Callable[[str, int, float], None] | None = None,
    jobs: int = 1,
) -> list[StrategyScore]:
    """Run every strategy for ``seeds`` seeds of ``queries`` evaluations each against ``table``; ``jobs`` > 1 runs
    seeds in that many processes (each seed is an independent run, so the picks are the same)."""
    tab = table if isinstance(table, Table) else Table(table)
    scores = []
    for name in strategies:
        STRATEGIES.get(name)
        runs: list[BenchmarkRun] = []
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, context, _init_worker, (str(tab.path),)) as pool:
                futures = [pool.submit(benchmark_run, name, seed, queries) for seed in range(seeds)]
                for seed, future in enumerate(futures):
                    runs.append(future.result())
                    if on_run is not None:
                        on_run(name, seed, runs[-1].reported)
        else:
            for seed in range(seeds):
                runs.append(benchmark_run(name, seed, queries, tab))
                if on_run is not None:
                    on_run(name, seed, runs[-1].reported)
        picks = [r.reported for r in runs]
        evaluated = sum(len(r.evaluated) for r in runs)
        overhead = sum(r.overhead for r in runs)
        scores.append(
            StrategyScore(
                name, picks, 1000.0 * overhead / max(1, evaluated), sum(r.repeats for r in runs) / seeds, runs
            )
        )
    return scores

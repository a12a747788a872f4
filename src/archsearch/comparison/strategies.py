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
from archsearch.spaces import DEFAULT_SPACE, get_space
from archsearch.store import Store
from archsearch.strategies import STRATEGIES, get_strategy


class OverSeeds:
    """Mean and spread of a strategy's figure over its seeds (``picks``: one per seed)."""

    picks: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.picks)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.picks) if len(self.picks) > 1 else 0.0


@dataclass
class StrategyScore(OverSeeds):
    """One strategy's results over its seeds."""

    strategy: str
    picks: list[float]  # the reported figure of each run's pick
    ms_per_trial: float  # strategy + store time per evaluated trial (table lookups are counted out)
    repeats: float  # mean answers from the store per run
    runs: list[BenchmarkRun] = field(default_factory=list)  # each seed's run, for anytime curves

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "mean": round(self.mean, 4),
            "std": round(self.std, 4),
            "runs": len(self.picks),
            "ms_per_trial": round(self.ms_per_trial, 4),
            "repeats_per_run": round(self.repeats, 2),
        }


def tabular_strategies(multi_objective: bool = False) -> list[str]:
    """Every registered strategy that can run against a table: the single-objective ones, or with
    ``multi_objective`` all of them (a multi-objective benchmark scores random and single-objective strategies, which
    follow the first objective, beside the multi-objective ones)."""
    return [n for n in STRATEGIES
            if STRATEGIES.get(n).tabular and (multi_objective or not STRATEGIES.get(n).multi_objective)]  # fmt: skip


class _TimedTable(TableEvaluator):
    def __init__(self, table: Table, space: str = DEFAULT_SPACE) -> None:
        super().__init__(table, space=space)
        self.seconds = 0.0

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return super().evaluate(genotype, fidelity, seed)
        finally:
            self.seconds += time.perf_counter() - start


@dataclass(frozen=True)
class BenchmarkSetup:
    """What every run of a benchmark shares: the space, the table(s) and its columns, the objective."""

    space: str = DEFAULT_SPACE
    tables: tuple[str, ...] = ()
    signal: str = "valid_acc_12ep"
    report: str = "test_acc_200ep"
    objectives: str = ""  # two or more: a multi-objective benchmark scored by hypervolume
    constraints: tuple[str, ...] = ()
    strategy_options: tuple[tuple[str, str, Any], ...] = ()  # (strategy, option, value)

    def options(self, strategy: str) -> dict[str, Any]:
        """The options given for ``strategy``."""
        return {key: value for name, key, value in self.strategy_options if name == strategy}

    def table(self) -> Table:
        return TableEvaluator(self.tables[0], self.signal, self.report, self.space, self.tables[1:]).table

    def objective(self) -> Objective:
        return Objective.from_strings("val_acc", self.constraints, self.objectives)


_WORKER: tuple[Table, BenchmarkSetup] | None = None


def _init_worker(setup: BenchmarkSetup) -> None:
    global _WORKER
    _WORKER = (setup.table(), setup)
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
    points: list[list[float]] = field(default_factory=list)  # multi-objective: each evaluated one's objectives


def benchmark_run(name: str, seed: int, queries: int, table: Table | None = None,
                  setup: BenchmarkSetup | None = None) -> BenchmarkRun:  # fmt: skip
    """One seeded run of strategy ``name`` with a budget of ``queries`` distinct architectures."""
    if table is None:
        if _WORKER is None:
            raise RuntimeError("benchmark_run needs a table (or a worker initialised with one)")
        table, setup = _WORKER
    setup = setup or BenchmarkSetup(space=table.space.name if table.space is not None else DEFAULT_SPACE)
    space = get_space(setup.space)
    evaluator = _TimedTable(table, space=setup.space)
    objective = setup.objective()
    options = setup.options(name)
    if STRATEGIES.get(name).multi_objective:
        options["objectives"] = objective.specs()
    with tempfile.TemporaryDirectory(prefix="archsearch-bench-") as tmp:
        store = Store(tmp, durable=False)  # a throw-away store: no sync to disk per trial
        start = time.perf_counter()
        result = Experiment(
            space, get_strategy(name, space, seed=seed, **options), evaluator, objective, Budget(trials=queries),
            store, seed=seed,
        ).run()  # fmt: skip
        overhead = time.perf_counter() - start - evaluator.seconds
        done = sorted(result.best, key=lambda t: t.number)
        store.close()
    winner = result.winner
    return BenchmarkRun(
        pick=None if winner is None else str(winner.genotype),
        reported=winner.metrics["test_acc"] if winner else float("nan"),
        overhead=overhead,
        evaluated=[t.key for t in done],
        repeats=result.repeats,
        queries=evaluator.queries,
        points=[[t.metrics[o] for o in objective.objectives] for t in done] if objective.objectives else [],
    )


def run_benchmark(
    table: str | Table,
    strategies: Sequence[str],
    queries: int = 100,
    seeds: int = 100,
    on_run: Callable[[str, int, float], None] | None = None,
    jobs: int = 1,
    setup: BenchmarkSetup | None = None,
) -> list[StrategyScore]:
    """Run every strategy for ``seeds`` seeds of ``queries`` evaluations each against ``table``; ``jobs`` > 1 runs
    seeds in that many processes (each seed is an independent run, so the picks are the same). ``setup``: the
    space, joined tables, columns and objectives (default: NB201's table as given)."""
    tab = table if isinstance(table, Table) else Table(table)
    setup = setup or BenchmarkSetup(tables=(str(tab.path),))
    if not setup.tables:
        setup = BenchmarkSetup(setup.space, (str(tab.path), *map(str, tab.joined)), tab.signal, tab.report,
                               setup.objectives, setup.constraints, setup.strategy_options)  # fmt: skip
    scores = []
    for name in strategies:
        STRATEGIES.get(name)
        runs: list[BenchmarkRun] = []
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, context, _init_worker, (setup,)) as pool:
                futures = [pool.submit(benchmark_run, name, seed, queries) for seed in range(seeds)]
                for seed, future in enumerate(futures):
                    runs.append(future.result())
                    if on_run is not None:
                        on_run(name, seed, runs[-1].reported)
        else:
            for seed in range(seeds):
                runs.append(benchmark_run(name, seed, queries, tab, setup))
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

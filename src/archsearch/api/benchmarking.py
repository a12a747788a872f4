"""Strategies compared on a tabular benchmark over many seeds (the same protocol as NAS-Bench-201's papers), on any
space's table; with several objectives, scored by the hypervolume of each run's front against the table's true
front."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch.api.multitrial import make_config
from archsearch.api.results import BenchmarkResult
from archsearch.comparison.strategies import BenchmarkSetup, run_benchmark, tabular_strategies
from archsearch.errors import ArchsearchError
from archsearch.outputs import check_output, check_png_dir
from archsearch.spaces import DEFAULT_SPACE
from archsearch.strategies import STRATEGIES


def benchmark(
    table: str | Path | Sequence[str | Path],
    strategies: str | Sequence[str] = "all",
    queries: int = 100,
    seeds: int = 100,
    jobs: int = 1,
    space: str = DEFAULT_SPACE,
    table_signal: str = "valid_acc_12ep",
    table_report: str = "test_acc_200ep",
    objectives: str = "",
    constraints: Sequence[str] = (),
    strategy_options: dict[str, dict[str, Any]] | None = None,
    report: str | Path | None = None,
    png: str | Path | None = None,
    on_score: Callable[[Any], None] | None = None,
    force: bool = False,
) -> BenchmarkResult:
    """Run each strategy (``"all"``: every one that runs on a table) for ``seeds`` seeds of ``queries`` distinct
    architectures against ``table`` (several: joined on the architecture) in ``space``. Each run's pick is the best
    by ``table_signal`` and is reported by ``table_report``. With two ``objectives`` (e.g.
    ``"valid_acc_12ep,pixel3_ms:min"``) each run is scored by the hypervolume of its front as a share of the
    table's true front, at several budgets. ``constraints`` limit any column (``pixel3_ms<=5``);
    ``strategy_options`` set a strategy's options by its name (``{"nsga2": {"population_size": 10}}``).
    ``report`` writes the anytime curves (and fronts) as a page (``png``: its figures as PNGs too; an existing
    report is replaced only with ``force``); ``jobs`` runs seeds in that many processes."""
    if png and not report:
        raise ArchsearchError("png writes the report's figures; it needs a report file (report=FILE.html)")
    if report:  # refused before the benchmark runs, not after
        check_output(report, force, "the report")
        check_png_dir(png)
    tables = [table] if isinstance(table, (str, Path)) else list(table)
    multi = len([o for o in objectives.split(",") if o.strip()]) >= 2
    if objectives and not multi:
        raise ArchsearchError("objectives takes two or more metrics (a Pareto front); one metric is the signal "
                              "(table_signal)")  # fmt: skip
    names = _strategies(strategies, multi, strategy_options or {})
    for name in names:  # every strategy checked against the setting, before the first runs
        make_config(space, name, table=tables, table_signal=table_signal, table_report=table_report,
                    objectives=objectives, constraints=constraints, trials=queries,
                    strategy_options=dict((strategy_options or {}).get(name, {})))  # fmt: skip
    given = tuple((n, k, v) for n, opts in (strategy_options or {}).items() for k, v in opts.items())
    setup = BenchmarkSetup(space, tuple(str(Path(t).resolve()) for t in tables), table_signal, table_report,
                           objectives, tuple(constraints), given)  # fmt: skip
    tab = setup.table()
    truth = None
    scores = []
    for name in names:
        (result,) = run_benchmark(tab, [name], queries, seeds, jobs=jobs, setup=setup)
        if multi:
            from archsearch.comparison.pareto import pareto_scores
            from archsearch.spaces import get_space

            truth, (result,) = pareto_scores([result], tab, setup.objective(), get_space(space), queries)
        scores.append(result)
        if on_score is not None:
            on_score(result)
    out = BenchmarkResult(queries, seeds, scores)
    if report:
        from archsearch.reporting.run_report import build_benchmark_report

        out.report = build_benchmark_report(scores, tab, queries, report, png, truth)
    return out


def _strategies(strategies: str | Sequence[str], multi: bool, options: dict[str, dict[str, Any]]) -> list[str]:
    """The strategies a benchmark runs (``"all"``: every one that runs on a table with this many objectives),
    each able to run in this setting, and every strategy option given for one of them."""
    if isinstance(strategies, str):
        names = tabular_strategies(multi) if strategies == "all" else [s.strip() for s in strategies.split(",")]
    else:
        names = list(strategies)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ArchsearchError(f"strategy options for {', '.join(unknown)}, which the benchmark does not run "
                              f"(strategies: {', '.join(names)})")  # fmt: skip
    for name in names:
        if STRATEGIES.get(name).multi_objective and not multi:
            raise ArchsearchError(f"{name} is multi-objective; compare it with two or more objectives "
                                  "(--objectives valid_acc_12ep,pixel3_ms:min)")  # fmt: skip
    return names

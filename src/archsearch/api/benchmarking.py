"""Strategies compared on a tabular benchmark over many seeds (the same protocol as NAS-Bench-201's papers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch.api.results import BenchmarkResult
from archsearch.benchmarking import run_benchmark, tabular_strategies
from archsearch.errors import ArchsearchError
from archsearch.outputs import check_output, check_png_dir
from archsearch.strategies import STRATEGIES


def benchmark(
    table: str | Path,
    strategies: str | Sequence[str] = "all",
    queries: int = 100,
    seeds: int = 100,
    jobs: int = 1,
    space: str = "nb201",
    report: str | Path | None = None,
    png: str | Path | None = None,
    on_score: Callable[[Any], None] | None = None,
    force: bool = False,
) -> BenchmarkResult:
    """Run each strategy (``"all"``: every one that runs on a table) for ``seeds`` seeds of ``queries`` distinct
    architectures against ``table``; each run's pick is the best by the table's 12-epoch validation accuracy and
    is reported by its 200-epoch test accuracy. ``report`` writes the anytime curves and distributions as a page
    (``png``: its figures as PNGs too; an existing report is replaced only with ``force``); ``jobs`` runs
    seeds in that many processes."""
    if space != "nb201":
        raise ArchsearchError(f"the benchmark runs on the nb201 table; the space must be nb201, not {space}")
    if png and not report:
        raise ArchsearchError("png writes the report's figures; it needs a report file (report=FILE.html)")
    if report:  # refused before the benchmark runs, not after
        check_output(report, force, "the report")
        check_png_dir(png)
    if isinstance(strategies, str):
        names = tabular_strategies() if strategies == "all" else [s.strip() for s in strategies.split(",")]
    else:
        names = list(strategies)
    for name in names:
        if STRATEGIES.get(name).multi_objective:
            raise ArchsearchError(f"{name} is multi-objective; the benchmark compares strategies at finding the most "
                                  "accurate architecture by one signal (search with --objectives instead)")  # fmt: skip
    scores = []
    for name in names:
        (result,) = run_benchmark(table, [name], queries, seeds, jobs=jobs)
        scores.append(result)
        if on_score is not None:
            on_score(result)
    out = BenchmarkResult(queries, seeds, scores)
    if report:
        from archsearch.evaluators import Table
        from archsearch.reporting.run_report import build_benchmark_report

        out.report = build_benchmark_report(scores, Table(table), queries, report, png)
    return out

"""``archsearch search``, ``show`` and ``benchmark``: run a search, look at a run, compare strategies."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from archsearch import api
from archsearch.cli.common import emit, latency_text, table_text, visible
from archsearch.cli.options import given_with_config
from archsearch.cli.search_options import (
    check_search_options,
    key_values,
    resume_search,
    search_arguments,
    search_kwargs,
)
from archsearch.errors import ArchsearchError
from archsearch.experiment import Experiment
from archsearch.objectives import Objective
from archsearch.options import positive_int
from archsearch.run_summary import SearchResult
from archsearch.spaces import DEFAULT_SPACE, SPACES
from archsearch.trial import Trial


class _Progress:
    """A live bar on stderr: trials, best so far, elapsed and remaining budget."""

    def __init__(self, total: int, seconds: float | None, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.seconds = seconds
        self.progress = Progress(
            TextColumn("[bold]search"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("search", total=total, info="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, trial: Trial, experiment: Experiment) -> None:
        if not self.enabled:
            return
        best = max((t.score for t in experiment.finished.values() if t.score is not None), default=None)
        left = "" if self.seconds is None else f", {max(0.0, self.seconds - experiment.elapsed):.0f}s left"
        info = f"best {best:.3f}" if best is not None else "best -"
        self.progress.update(
            self.task, completed=experiment.done, info=f"{info}, last #{trial.number} {trial.status}{left}"
        )


STOP_REASONS = {
    "trials": "the trial budget",
    "seconds": "the time budget",
    "repeats": "the strategy proposing only architectures already evaluated",
    "interrupted": "an interrupt (Ctrl-C); --resume continues it",
}


def _print_result(args: argparse.Namespace, result: SearchResult, objective: Objective, top: int) -> None:
    if args.json:
        for record in result.to_json(top):
            print(json.dumps(record))
        return
    # a run being written (or killed) has no stop cause yet: then the line says nothing of one
    cause = STOP_REASONS.get(result.stop_reason, result.stop_reason)
    stop = f"; stopped by {visible(cause)}" if result.stop_reason else ""
    print(
        f"{result.trials} trials ({result.failed} failed, {result.infeasible} infeasible, {result.repeats} answered "
        f"from the store) in {result.seconds:.1f}s{stop}"
    )
    if result.failures:
        print("failed trials by error:")
        for error, n in result.failures:
            print(f"  {n:>5} x {visible(error, newlines=False)}")
    if result.best:
        _trial_table(result.best[:top], [objective.metric, *objective.objectives], "top trials")
    if result.front:
        hv = "" if result.hypervolume is None else f" (hypervolume {result.hypervolume:.4g})"
        title = f"Pareto front over {', '.join(objective.objectives)}{hv}"
        _trial_table(result.front, list(objective.objectives), title)


#: the columns of the trial table, in order, for the metrics a run recorded (the search metric comes first)
COLUMNS = ("val_acc", "test_acc", "zc_score", "params", "flops", "latency_ms", "forward_peak_mb", "train_peak_mb",
           "epochs")  # fmt: skip


def _trial_table(trials: list[Trial], first: list[str], title: str) -> None:
    """A table of trials: one column per recorded metric (numbers aligned, 58.1k, 1.18M), fidelity, seconds and
    status, each trial's architecture whole on its own line under its row (an architecture is longer than a terminal
    column could hold: folded into one, a row took 5-15 lines)."""
    from archsearch.reporting.html import readable

    recorded = {k for t in trials for k in t.metrics}
    names = list(dict.fromkeys(first)) + [c for c in COLUMNS if c in recorded and c not in first]
    fidelity = any(t.fidelity is not None for t in trials)
    header = ["rank", "trial", *("MACs" if n == "flops" else visible(n, False) for n in names),
              *(["epochs@rung"] if fidelity else []), "seconds", "status"]  # fmt: skip
    rows = []
    for rank, t in enumerate(trials, start=1):
        values = [readable(float(t.metrics[n])) if n in t.metrics else "-" for n in names]
        extra = [f"{t.fidelity:g}" if t.fidelity is not None else "-"] if fidelity else []
        rows.append([str(rank), str(t.number), *values, *extra, f"{t.seconds:.1f}", visible(t.status, False)])
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]

    def line(cells: list[str]) -> str:  # numbers right-aligned, the status (last) left-aligned
        return "  ".join(c.rjust(w) for c, w in zip(cells[:-1], widths)) + "  " + cells[-1].ljust(widths[-1])

    print(visible(title, False))
    print(line(header).rstrip())
    print("      architecture")
    print("-" * len(line(header).rstrip()))
    for cells, t in zip(rows, trials):
        print(line(cells).rstrip())
        print(f"      {visible(t.genotype, False)}")


def _no_winner(result: SearchResult) -> str | None:
    """Why a finished search has no winner (it then exits non-zero), or ``None``."""
    if result.best or not result.trials:
        return None
    parts = [f"{result.failed} failed"] if result.failed else []
    if result.infeasible:
        parts.append(f"{result.infeasible} broke a constraint")
    common = f"; most common error: {result.failures[0][0]}" if result.failures else ""
    return f"no trial completed ({', '.join(parts)}){common}"


def cmd_search(args: argparse.Namespace) -> None:
    """Run (or resume) a search and print the best architectures; with --retrain, retrain the winner."""
    given = given_with_config(args, ("training",))
    if "export_dir" in given and not args.export:
        raise ArchsearchError("--export-dir says where --export writes; it needs --export FORMAT")
    if args.resume:
        options = resume_search(args, given)
    else:
        check_search_options(args, given)
        options = search_kwargs(args, given)
    progress = _Progress(args.trials, args.time, enabled=(not args.json and sys.stderr.isatty()) or args.progress)
    with progress:
        result = api.search(**options, on_trial=progress.update)
    objective = Objective.from_json(result.config["objective"]) if result.config else Objective()
    _print_result(args, result, objective, args.top)
    failure = _no_winner(result)
    if failure:
        raise ArchsearchError(failure)
    if args.retrain:
        from archsearch.cli.retrain import retrain_winner

        retrain_winner(args, result, given)
    if args.export:  # the winner (retrained, when it was) for deployment
        from archsearch.export.formats import describe

        exported = api.export(args.out, args.export, args.export_dir or str(Path(args.out) / "export"))
        emit(args, {"export": exported.to_json()}, describe(exported))


def cmd_show(args: argparse.Namespace) -> None:
    """Print what a run directory holds: a search's top trials, failures and Pareto front, or a one-shot search's
    result. Reads only."""
    view = api.show(args.run)
    running = " (a process is writing it now)" if view.busy else ""
    if view.oneshot is not None:
        o = view.oneshot
        state = f"derived {o.genotype}\n  {o.stopped}" if o.genotype else "no genotype derived yet"
        if o.table is not None:
            state += f"\n  table: {table_text(o.table)}"
        if o.latency is not None:
            state += "\n  " + latency_text(o.latency)
        emit(args, o.to_json(), f"{args.run}: a one-shot search ({o.method} on {o.space}, {o.epochs} epochs)"
             f"{running}\n  {state}")  # fmt: skip
        return
    config = view.config or {}
    if not args.json:
        what = f"{config['strategy']} on {config['space']} with the {config['evaluator']} evaluator"
        print(visible(f"{args.run}: {what}{running}"))
    _print_result(args, view.result, view.objective, args.top)


def cmd_benchmark(args: argparse.Namespace) -> None:
    """Every strategy against a tabular benchmark, many seeds: mean and std of the reported figure of each pick, or
    with several objectives the hypervolume share of each run's front."""
    multi = bool(args.objectives)
    if not args.json:
        if multi:
            print(f"{args.queries} queries, {args.seeds} seeds; hypervolume of each run's front as % of the table's "
                  f"true front ({visible(args.objectives)}), mean ± std by queries")  # fmt: skip
        else:
            print(f"{args.queries} queries, {args.seeds} seeds; reported: {visible(args.table_report)} of the pick "
                  f"by {visible(args.table_signal)}")  # fmt: skip
            print(f"{'strategy':<12} {'mean':>7} {'std':>6} {'runs':>5} {'ms/trial':>9} {'repeats/run':>12}")

    def row(score: Any) -> None:
        r = score.to_json()
        if multi:
            by = "  ".join(f"{b}: {statistics.fmean(v):6.2f} ± {statistics.pstdev(v):5.2f}"
                           for b, v in sorted(score.shares.items()))  # fmt: skip
            emit(args, r, f"{r['strategy']:<12} {by}")
            return
        emit(args, r, f"{r['strategy']:<12} {r['mean']:>7.2f} {r['std']:>6.2f} {r['runs']:>5} "
             f"{r['ms_per_trial']:>9.3f} {r['repeats_per_run']:>12.1f}")  # fmt: skip

    result = api.benchmark(args.table, args.strategies, queries=args.queries, seeds=args.seeds, jobs=args.jobs,
                           space=args.space, table_signal=args.table_signal, table_report=args.table_report,
                           objectives=args.objectives or "", constraints=args.constraint or (),
                           strategy_options=strategy_options(args.strategy_option or []), report=args.report,
                           png=args.png, on_score=row, force=args.force)  # fmt: skip
    if result.report is not None:
        emit(args, result.to_json()[-1], f"wrote {result.report}")


def strategy_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``['nsga2.population_size=10']`` -> ``{'nsga2': {'population_size': 10}}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, dot, rest = item.partition(".")
        if not dot or not name:
            raise ArchsearchError(f"expected STRATEGY.NAME=VALUE (e.g. nsga2.population_size=10), got {item!r}")
        out.setdefault(name, {}).update(key_values([rest]))
    return out


def add_search_commands(command: Any) -> None:
    """Register search, show and benchmark with the ``command`` factory of the main parser."""
    p = command("search", cmd_search, "search for an architecture under a budget of trials and seconds")
    search_arguments(p)

    p = command("show", cmd_show, "print the top trials and the Pareto front of a run")
    p.add_argument("run", help="a run directory written by `archsearch search --out`")
    p.add_argument("--top", type=positive_int, default=10)

    p = command("benchmark", cmd_benchmark, "compare strategies on a tabular benchmark over many seeds")
    p.add_argument("--space", default=DEFAULT_SPACE, choices=SPACES.names(),
                   help=f"the table's space (default {DEFAULT_SPACE})")
    p.add_argument("--table", required=True, action="append", metavar="CSV",
                   help="a table of the space (arch, the signal and reported columns); repeat to join further "
                   "tables on the architecture (e.g. device latencies)")  # fmt: skip
    p.add_argument("--table-signal", default="valid_acc_12ep", help="the column searched (default valid_acc_12ep)")
    p.add_argument("--table-report", default="test_acc_200ep",
                   help="the column reported for each pick, never searched (default test_acc_200ep)")  # fmt: skip
    p.add_argument("--objectives", help="two metrics for a multi-objective benchmark scored by hypervolume, e.g. "
                   "valid_acc_12ep,pixel3_ms:min (a column's direction as :min or :max)")  # fmt: skip
    p.add_argument("--constraint", action="append", help="a limit on a metric or column, e.g. pixel3_ms<=5")
    p.add_argument("--strategy-option", action="append", metavar="STRATEGY.NAME=VALUE",
                   help="an option of one strategy, e.g. nsga2.population_size=10 (repeatable)")  # fmt: skip
    p.add_argument("--strategies", default="all", help="comma-separated names, or all")
    p.add_argument("--queries", type=positive_int, default=100)
    p.add_argument("--seeds", type=positive_int, default=100)
    p.add_argument("--jobs", type=positive_int, default=1, help="seeds run in this many processes (one thread each)")
    p.add_argument("--report", metavar="FILE.html", help="also write the anytime curves and distributions as a page")
    p.add_argument("--png", metavar="DIR", help="with --report: every figure as a PNG in DIR too")
    p.add_argument("--force", action="store_true", help="replace --report if it exists")

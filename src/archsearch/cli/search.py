"""``archsearch search``, ``show`` and ``benchmark``: run a search, look at a run, compare strategies."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archsearch.api import build_experiment, make_config, resume_config, summarize_run
from archsearch.benchmarking import run_benchmark, tabular_strategies
from archsearch.cli.common import emit, positive_int
from archsearch.cli.options import apply_config_file
from archsearch.cli.search_options import (
    check_search_options,
    evaluator_options,
    key_values,
    multifidelity_options,
    resume_search,
    run_options,
    search_arguments,
    search_parser,
)
from archsearch.errors import ArchsearchError
from archsearch.experiment import Experiment, SearchResult
from archsearch.objectives import Objective
from archsearch.rundir import DB_NAME, describe, is_busy
from archsearch.spaces import get_space
from archsearch.strategies import STRATEGIES
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
        for t in result.best[:top]:
            print(json.dumps({"rank": result.best.index(t) + 1, **t.summary()}))
        for t in result.front:
            print(json.dumps({"front": True, **t.summary()}))
        summary = {
            "summary": True,
            "trials": result.trials,
            "complete": len(result.best),
            "failed": result.failed,
            "infeasible": result.infeasible,
            "repeats": result.repeats,
            "seconds": result.seconds,
            "stop_reason": result.stop_reason,
            "hypervolume": result.hypervolume,
            "failures": [{"error": e, "trials": n} for e, n in result.failures],
        }
        print(json.dumps(summary))
        return
    stop = STOP_REASONS.get(result.stop_reason, result.stop_reason or "nothing yet (no trial recorded)")
    print(
        f"{result.trials} trials ({result.failed} failed, {result.infeasible} infeasible, {result.repeats} answered "
        f"from the store) in {result.seconds:.1f}s; stopped by {stop}"
    )
    if result.failures:
        print("failed trials by error:")
        for error, n in result.failures:
            print(f"  {n:>5} x {error}")
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
    """A table of trials fitted to the terminal: one column per recorded metric (numbers aligned, 58.1k, 1.18M),
    fidelity, seconds, status, and the architecture last, folded rather than cut."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from archsearch.report.html import readable

    recorded = {k for t in trials for k in t.metrics}
    names = list(dict.fromkeys(first)) + [c for c in COLUMNS if c in recorded and c not in first]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("rank", justify="right")
    table.add_column("trial", justify="right")
    for name in names:
        table.add_column("MACs" if name == "flops" else name, justify="right", no_wrap=True)
    fidelity = any(t.fidelity is not None for t in trials)
    if fidelity:
        table.add_column("epochs@rung", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("status")
    table.add_column("architecture", overflow="fold", ratio=1)
    for rank, t in enumerate(trials, start=1):
        values = [readable(float(t.metrics[n])) if n in t.metrics else "-" for n in names]
        extra = [f"{t.fidelity:g}"] if fidelity else []
        table.add_row(str(rank), str(t.number), *values, *extra, f"{t.seconds:.1f}", t.status, str(t.genotype))
    Console(soft_wrap=False).print(table)


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
    """Run (or resume) a search and print the best architectures."""
    given = set(getattr(args, "given", set()))
    if args.config:
        given |= apply_config_file(args, search_parser(), given)
    if args.resume:
        config = resume_search(args, given)
    else:
        check_search_options(args, given)
        config = make_config(
            space=args.space,
            strategy=args.strategy,
            dataset=args.dataset,
            evaluator=args.evaluator,
            table=args.table,
            trials=args.trials,
            seconds=args.time,
            metric=args.metric,
            constraints=args.constraint or (),
            objectives=args.objectives or "",
            seed=args.seed,
            workers=args.workers,
            executor=args.executor,
            trial_timeout=args.trial_timeout,
            retries=args.retries,
            ray_address=args.ray_address,
            cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial,
            evaluator_options=None if args.table else evaluator_options(args, given),
            strategy_options=key_values(args.strategy_option or []),
            multifidelity=multifidelity_options(args),
        )
        config["cli_options"] = run_options(args)
    progress = _Progress(
        config["budget"]["trials"],
        config["budget"]["seconds"],
        enabled=(not args.json and sys.stderr.isatty()) or args.progress,
    )
    with progress:
        experiment = build_experiment(config, args.out, on_trial=progress.update)
        try:
            result = experiment.run(resume=args.resume)
        finally:
            experiment.store.close()
    _print_result(args, result, experiment.objective, args.top)
    failure = _no_winner(result)
    if failure:
        raise ArchsearchError(failure)
    if args.retrain:
        from archsearch.cli.retrain import retrain_winner

        retrain_winner(args, config, result)


def cmd_show(args: argparse.Namespace) -> None:
    """Print what a run directory holds: a search's top trials, failures and Pareto front, or a one-shot search's
    result. Reads only."""
    kind, meta = describe(args.run)
    running = " (a process is writing it now)" if is_busy(args.run) else ""
    if kind == "nothing":
        raise ArchsearchError(f"{args.run}: no run here (no {DB_NAME} and no one-shot checkpoint)")
    if kind == "empty":
        raise ArchsearchError(f"{args.run}: the store holds no run yet (no config and no trial recorded){running}")
    if kind == "oneshot":
        _show_oneshot(args, meta, running)
        return
    config = resume_config(args.run, evaluator=meta["config"].get("evaluator"))  # shown, never built
    objective, result = summarize_run(args.run, config)
    if not args.json:
        print(
            f"{args.run}: {config['strategy']} on {config['space']} with the {config['evaluator']} evaluator{running}"
        )
    _print_result(args, result, objective, args.top)


def _show_oneshot(args: argparse.Namespace, meta: dict[str, Any], running: str) -> None:
    info = meta.get("oneshot") or {}
    found = meta.get("oneshot_result")
    genotype = None if not found else str(get_space(found["genotype"]["space"]).from_json(found["genotype"]))
    record = {
        "oneshot": True,
        "method": info.get("method"),
        "space": info.get("space"),
        "epochs": (info.get("config") or {}).get("epochs"),
        "genotype": genotype,
        "stopped": None if not found else found.get("stopped"),
        "trials": meta.get("_trials", 0),
    }
    state = f"derived {genotype}\n  {record['stopped']}" if genotype else "no genotype derived yet"
    emit(
        args,
        record,
        f"{args.run}: a one-shot search ({record['method']} on {record['space']}, {record['epochs']} epochs)"
        f"{running}\n  {state}",
    )


def cmd_benchmark(args: argparse.Namespace) -> None:
    """Every strategy against a tabular benchmark, many seeds: mean and std of the reported figure of each pick."""
    if args.space != "nb201":
        raise ArchsearchError(f"the benchmark runs on the nb201 table; --space must be nb201, not {args.space}")
    names = tabular_strategies() if args.strategies == "all" else [s.strip() for s in args.strategies.split(",")]
    for name in names:
        STRATEGIES.get(name)
    if not args.json:
        print(f"{args.queries} queries, {args.seeds} seeds; reported: test_acc_200ep of the pick by valid_acc_12ep")
        print(f"{'strategy':<12} {'mean':>7} {'std':>6} {'runs':>5} {'ms/trial':>9} {'repeats/run':>12}")
    if args.png and not args.report:
        raise ArchsearchError("--png writes the report's figures; it needs --report FILE.html")
    scores = []
    for name in names:
        (score,) = run_benchmark(args.table, [name], args.queries, args.seeds, jobs=args.jobs)
        scores.append(score)
        row = score.to_json()
        emit(
            args,
            row,
            f"{name:<12} {row['mean']:>7.2f} {row['std']:>6.2f} {row['runs']:>5} "
            f"{row['ms_per_trial']:>9.3f} {row['repeats_per_run']:>12.1f}",
        )
    if args.report:
        from archsearch.evaluators import Table
        from archsearch.report.run_report import build_benchmark_report

        path = build_benchmark_report(scores, Table(args.table), args.queries, args.report, args.png)
        emit(args, {"report": str(path), "bytes": path.stat().st_size}, f"wrote {path}")


def add_search_commands(command: Any) -> None:
    """Register search, show and benchmark with the ``command`` factory of the main parser."""
    p = command("search", cmd_search, "search for an architecture under a budget of trials and seconds")
    search_arguments(p)

    p = command("show", cmd_show, "print the top trials and the Pareto front of a run")
    p.add_argument("run", help="a run directory written by `archsearch search --out`")
    p.add_argument("--top", type=positive_int, default=10)

    p = command("benchmark", cmd_benchmark, "compare strategies on a tabular benchmark over many seeds")
    p.add_argument("--space", default="nb201")
    p.add_argument("--table", required=True, help="a CSV in the nb201 format (arch, valid_acc_12ep, test_acc_200ep)")
    p.add_argument("--strategies", default="all", help="comma-separated names, or all")
    p.add_argument("--queries", type=positive_int, default=100)
    p.add_argument("--seeds", type=positive_int, default=100)
    p.add_argument("--jobs", type=positive_int, default=1, help="seeds run in this many processes (one thread each)")
    p.add_argument("--report", metavar="FILE.html", help="also write the anytime curves and distributions as a page")
    p.add_argument("--png", metavar="DIR", help="with --report: every figure as a PNG in DIR too")

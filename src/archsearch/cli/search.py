"""``archsearch search``, ``show`` and ``benchmark``: run a search, look at a run, compare strategies."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archsearch.api import build_experiment, make_config, resume_config, with_resumable_changes
from archsearch.benchmarking import run_benchmark, tabular_strategies
from archsearch.cli.common import emit, positive_int
from archsearch.cli.options import NOT_OPTIONS, apply_config_file, flag, option_actions, refuse_unused
from archsearch.cli.train import add_training_arguments
from archsearch.errors import ArchsearchError
from archsearch.experiment import Experiment, SearchResult, summarize
from archsearch.objectives import Objective
from archsearch.rundir import DB_NAME, describe, is_busy
from archsearch.spaces import SPACES, get_space
from archsearch.store import open_existing
from archsearch.strategies import STRATEGIES
from archsearch.trial import Trial

#: options a resume may change (the budget, where trials run, how the result is shown); every other option of a run
#: is taken from the run, and naming it with another value is an error
RESUMABLE = frozenset(
    {
        "trials", "time", "workers", "executor", "ray_address", "cpus_per_trial", "gpus_per_trial", "trial_timeout",
        "retries", "progress", "top", "retrain", "retrain_epochs", "out",
    }
)  # fmt: skip
DATA = {"dataset", "data_dir", "subset", "image_size"}
BUILD = {"channels", "cells", "width"}
TRAINING = {
    "epochs", "batch_size", "optimizer", "lr", "weight_decay", "warmup", "label_smoothing", "drop_path", "cutout",
    "no_augment", "patience", "max_seconds", "compile", "device",
}  # fmt: skip
ALWAYS = {
    "space", "strategy", "strategy_option", "evaluator", "table", "trials", "time", "out", "seed", "workers",
    "executor", "trial_timeout", "constraint", "objectives", "metric", "retrain", "top", "progress", "fidelity",
}  # fmt: skip


def _used_options(args: argparse.Namespace) -> tuple[set[str], str]:
    """The options some part of this search reads, and what the search is (for the message about the rest)."""
    used = set(ALWAYS)
    evaluator = args.evaluator or "train"
    if args.table:
        what = "with --table (a tabular benchmark trains no network)"
    elif evaluator in ("train", "proxy"):
        used |= DATA | BUILD | TRAINING
        what = f"with the {evaluator} evaluator"
    elif evaluator == "zero_cost":
        used |= {"dataset", "data_dir", "image_size", "batch_size", "channels", "cells", "device", "proxy"}
        what = "with the zero_cost evaluator (it scores untrained networks)"
    else:
        used.add("evaluator_option")
        what = f"with the custom evaluator {evaluator} (it takes --evaluator-option only)"
    if args.fidelity:
        used |= {"min_epochs", "eta"}
    if args.executor == "ray":
        used |= {"ray_address", "cpus_per_trial", "gpus_per_trial", "retries"}
    elif args.workers > 1 or args.trial_timeout is not None:
        used.add("retries")  # retries re-run trials whose worker process died
    if args.retrain:  # the winner is retrained beside the baseline with these
        used |= {"retrain_epochs", "dataset", "data_dir", "image_size", "batch_size", "lr", "device"}
    return used, what


def _check_search_options(args: argparse.Namespace, given: set[str]) -> None:
    """Every option given acts on this search, or the search is refused before it starts."""
    used, what = _used_options(args)
    refuse_unused(given, used, what + ("" if args.retrain else " and without --retrain"))
    if args.table and args.retrain and "dataset" not in given:
        raise ArchsearchError(
            "--retrain after a --table search: a tabular benchmark holds no data to retrain on; give --dataset "
            "(and --data-dir) to retrain the winner on a dataset you have"
        )
    if args.no_augment and args.cutout:
        raise ArchsearchError("--cutout is an augmentation; it cannot go with --no-augment")


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a run as the command line gave them (recorded, so a resume takes them from the run)."""
    return {
        dest: getattr(args, dest)
        for dest in option_actions(search_parser())
        if dest not in RESUMABLE and dest not in NOT_OPTIONS
    }


def _resume(args: argparse.Namespace, given: set[str]) -> dict[str, Any]:
    """The run's config, with the changes a resume may make; ``args`` takes the run's settings. An option that
    contradicts the run is an error naming the option and the recorded value."""
    config = resume_config(args.out, args.evaluator if "evaluator" in given else None)
    recorded = config.get("cli_options")
    if recorded is None:  # started from the Python API: compare what the config holds
        recorded = {k: config.get(k) for k in ("space", "strategy", "evaluator", "seed")}
        others = sorted(given - set(recorded) - RESUMABLE - NOT_OPTIONS)
        if others:
            raise ArchsearchError(
                f"{args.out} was started from the Python API; on resume only "
                f"{', '.join(flag(d) for d in sorted(RESUMABLE))} may be given, not {', '.join(map(flag, others))}"
            )
        if config.get("evaluator") == "table":
            recorded["evaluator"] = None
    for dest in sorted(given & set(recorded)):
        if getattr(args, dest) != recorded[dest]:
            raise ArchsearchError(
                f"{flag(dest)} {getattr(args, dest)!r} contradicts the run in {args.out}, which has "
                f"{recorded[dest]!r}: resume takes its settings from the run (drop the option, or start a new run "
                "with another --out)"
            )
    for dest, value in recorded.items():
        if hasattr(args, dest):
            setattr(args, dest, value)
    changes = {d: getattr(args, d) for d in given & RESUMABLE if d in ("trials", "time", "workers")}
    executor = {
        d: getattr(args, d)
        for d in given & {"trial_timeout", "retries", "ray_address", "cpus_per_trial", "gpus_per_trial", "executor"}
    }
    if "executor" in executor:
        executor["kind"] = executor.pop("executor")
    updated = with_resumable_changes(
        config, trials=changes.get("trials"), seconds=changes.get("time"), workers=changes.get("workers"), **executor
    )
    if not args.json:
        before = {"trials": config["budget"]["trials"], "time": config["budget"]["seconds"], "workers":
                  config["workers"]}  # fmt: skip
        for dest, value in sorted({**changes, **executor}.items()):
            was = before.get(dest, config.get("executor", {}).get("kind" if dest == "kind" else dest))
            if value != was:
                print(f"resuming with {flag('executor' if dest == 'kind' else dest)} {value} (the run had {was})")
    return updated


def _evaluator_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.evaluator and ":" in args.evaluator:
        return _key_values(args.evaluator_option or [])
    if args.evaluator_option:
        raise ArchsearchError("--evaluator-option is for a package.module:Class evaluator; built-in ones take flags")
    build = {k: v for k, v in (("channels", args.channels), ("cells", args.cells)) if v is not None}
    if args.evaluator == "zero_cost":
        return {
            "proxy": args.proxy,
            "batch_size": args.batch_size,
            "data_dir": args.data_dir,
            "image_size": args.image_size,
            "build": build,
            "device": args.device,
        }
    options: dict[str, Any] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "patience": args.patience,
        "data_dir": args.data_dir,
        "image_size": args.image_size,
        "build": build,
        "device": args.device,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "warmup_epochs": args.warmup,
        "label_smoothing": args.label_smoothing,
        "drop_path": args.drop_path,
        "augment": not args.no_augment,
        "cutout": args.cutout,
        "max_seconds": args.max_seconds,
        "compile": args.compile,
    }
    if args.subset is not None:
        options["subset"] = args.subset
    if args.width is not None:
        options["width"] = args.width
    return options


def _multifidelity(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.fidelity:
        return None
    return {"kind": args.fidelity, "min": args.min_epochs, "eta": args.eta}


def _key_values(items: list[str]) -> dict[str, Any]:
    """``['population_size=4', 'explore=0.1']`` -> ``{'population_size': 4, 'explore': 0.1}`` (JSON values, else
    the text itself)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ArchsearchError(f"expected NAME=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


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
        print(f"{'rank':>4} {'trial':>5} {objective.metric:>9}  {'other metrics':<40} arch")
    for rank, t in enumerate(result.best[:top], start=1):
        others = ", ".join(f"{k} {v:.4g}" for k, v in t.metrics.items() if k != objective.metric)
        print(f"{rank:>4} {t.number:>5} {t.metrics[objective.metric]:>9.3f}  {others[:40]:<40} {t.genotype}")
    if result.front:
        hv = "" if result.hypervolume is None else f" (hypervolume {result.hypervolume:.4g})"
        print(f"Pareto front over {', '.join(objective.objectives)}{hv}:")
        for t in result.front:
            print("  " + ", ".join(f"{n} {t.metrics[n]:.4g}" for n in objective.objectives) + f"  {t.genotype}")


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
        config = _resume(args, given)
    else:
        _check_search_options(args, given)
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
            evaluator_options=None if args.table else _evaluator_options(args),
            strategy_options=_key_values(args.strategy_option or []),
            multifidelity=_multifidelity(args),
        )
        config["cli_options"] = _run_options(args)
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
    obj = config["objective"]
    objective = Objective(metric=obj["metric"], limits=dict(obj["limits"]), objectives=tuple(obj["objectives"]))
    store = open_existing(args.run)
    try:
        result = summarize(store, get_space(config["space"], **config["space_options"]), objective)
    finally:
        store.close()
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
    for name in names:
        (score,) = run_benchmark(args.table, [name], args.queries, args.seeds, jobs=args.jobs)
        row = score.to_json()
        emit(
            args,
            row,
            f"{name:<12} {row['mean']:>7.2f} {row['std']:>6.2f} {row['runs']:>5} "
            f"{row['ms_per_trial']:>9.3f} {row['repeats_per_run']:>12.1f}",
        )


def search_parser() -> argparse.ArgumentParser:
    """A parser of the search command's options alone (their types, choices and defaults, for config files)."""
    parser = argparse.ArgumentParser(add_help=False)
    _search_arguments(parser)
    return parser


def _search_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default="nb201", choices=SPACES.names())
    p.add_argument("--strategy", default="evolution", choices=STRATEGIES.names())
    p.add_argument(
        "--strategy-option",
        action="append",
        metavar="NAME=VALUE",
        help="a strategy option, e.g. population_size=4 (repeatable)",
    )
    p.add_argument(
        "--evaluator",
        help="train (default), proxy (cheap training knobs), zero_cost (--proxy scores of untrained networks), or "
        "your own as package.module:Class with --evaluator-option; --table selects the tabular evaluator",
    )
    p.add_argument(
        "--evaluator-option",
        action="append",
        help="an option of a package.module:Class evaluator, key=value (JSON value or text); repeatable",
    )
    p.add_argument(
        "--proxy",
        default="synflow",
        help="zero_cost evaluator: a proxy, or several comma-separated for their rank ensemble (default synflow)",
    )
    p.add_argument(
        "--fidelity",
        choices=["sh", "hyperband"],
        help="multi-fidelity over epochs: asynchronous successive halving or Hyperband (max: --epochs)",
    )
    p.add_argument("--min-epochs", type=float, default=1.0, help="lowest rung for --fidelity (default 1)")
    p.add_argument("--eta", type=int, default=3, help="reduction factor for --fidelity (default 3)")
    p.add_argument("--table", help="search a tabular benchmark CSV (nb201 format) instead of training")
    p.add_argument("--trials", type=positive_int, default=50)
    p.add_argument("--time", type=float, help="wall-clock budget in seconds")
    p.add_argument("--out", default="runs/search", help="run directory (the store lives here)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--workers", type=positive_int, default=1, help="trials in flight (worker processes or Ray tasks)")
    p.add_argument(
        "--executor",
        choices=["process", "ray"],
        default="process",
        help="where trials run: local worker processes (default) or Ray tasks on a local or running cluster",
    )
    p.add_argument("--ray-address", help="join a running Ray cluster (auto or HOST:PORT); default: start a local one")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="Ray resources of one trial (default 1 CPU)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="Ray GPUs of one trial (default 0)")
    p.add_argument("--trial-timeout", type=float, help="seconds after which a trial is stopped and recorded failed")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a trial whose worker process died (default 2)")
    p.add_argument("--metric", default="val_acc")
    p.add_argument("--constraint", action="append", help="a limit checked before training, e.g. params<=1M")
    p.add_argument("--objectives", help="several objectives for a Pareto front, e.g. val_acc,params")
    p.add_argument("--channels", type=positive_int)
    p.add_argument("--cells", type=positive_int)
    p.add_argument("--width", type=float, help="channel multiplier of the evaluated networks")
    p.add_argument("--retrain", action="store_true", help="train the winner at full budget beside the baseline")
    p.add_argument("--retrain-epochs", type=positive_int, default=20)
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--config", help="a TOML file with any of these options")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a tty")
    add_training_arguments(p)
    p.set_defaults(epochs=5, patience=3)


def add_search_commands(command: Any) -> None:
    """Register search, show and benchmark with the ``command`` factory of the main parser."""
    p = command("search", cmd_search, "search for an architecture under a budget of trials and seconds")
    _search_arguments(p)

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

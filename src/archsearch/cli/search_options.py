"""The search command's options: their definition (one parser that the command line and TOML config files share),
which of them act in a given setting (the rest are refused), the evaluator options they make, and resuming a run
with the run's own settings."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archsearch.api import RESUME_CHANGES, multitrial, resume_config, retraining, with_resumable_changes
from archsearch.cli.common import finite_float, positive_int
from archsearch.cli.options import NOT_OPTIONS, default_of, flag, option_actions, refuse_unused, take_recorded
from archsearch.cli.train import add_training_arguments
from archsearch.errors import ArchsearchError
from archsearch.export.formats import FORMATS
from archsearch.spaces import DEFAULT_SPACE, SPACES
from archsearch.strategies import STRATEGIES

#: options a resume may change (the budget, where trials run, how the result is shown); every other option of a run
#: is taken from the run, and naming it with another value is an error
RESUMABLE = frozenset(
    {
        "trials", "time", "workers", "executor", "ray_address", "cpus_per_trial", "gpus_per_trial", "trial_timeout",
        "retries", "progress", "top", "retrain", "retrain_epochs", "out", "export", "export_dir",
    }
)  # fmt: skip
DATA = {"dataset", "data_dir", "subset", "image_size"}
RETRAIN_DATA = {"dataset", "data_dir", "image_size", "batch_size", "lr", "device"}  # what --retrain reads
BUILD = {"channels", "cells", "width"}
TRAINING = {
    "epochs", "batch_size", "optimizer", "lr", "weight_decay", "warmup", "label_smoothing", "drop_path", "cutout",
    "no_augment", "patience", "max_seconds", "compile", "device",
}  # fmt: skip
ALWAYS = {
    "space", "strategy", "strategy_option", "evaluator", "table", "trials", "time", "out", "seed", "workers",
    "executor", "trial_timeout", "constraint", "objectives", "metric", "retrain", "top", "progress", "fidelity",
    "export", "export_dir", "latency_table", "latency_target", "latency_threads", "latency_model",
}  # fmt: skip


def _used_options(args: argparse.Namespace) -> tuple[set[str], str]:
    """The options some part of this search reads, and what the search is (for the message about the rest)."""
    used = set(ALWAYS)
    evaluator = args.evaluator or "train"
    if args.table:
        used |= {"table_signal", "table_report"}
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
        used |= {"retrain_epochs", *RETRAIN_DATA}
    return used, what


def check_search_options(args: argparse.Namespace, given: set[str]) -> None:
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


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of a run as the command line gave them (recorded, so a resume takes them from the run)."""
    return {
        dest: getattr(args, dest)
        for dest in option_actions(search_parser())
        if dest not in RESUMABLE and dest not in NOT_OPTIONS
    }


def resume_search(args: argparse.Namespace, given: set[str]) -> dict[str, Any]:
    """The arguments of :func:`archsearch.search` that resume the run in ``--out`` with the changes a resume may
    make; ``args`` takes the run's settings. An option that contradicts the run is an error naming the option and
    the recorded value."""
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
    if config.get("evaluator") == "table":  # the search read no data: what --retrain trains on is free to choose
        recorded = {k: v for k, v in recorded.items() if k not in RETRAIN_DATA}
        if args.retrain and "dataset" not in given:
            raise ArchsearchError(
                "--retrain after a --table search: a tabular benchmark holds no data to retrain on; give --dataset"
            )
    take_recorded(args, given, recorded, RESUMABLE, args.out)
    changes = {d: getattr(args, d) for d in given & RESUMABLE if d in ("trials", "time", *RESUME_CHANGES)}
    with_resumable_changes(config, trials=changes.get("trials"), seconds=changes.get("time"))  # checks the budget
    if not args.json:
        executor = config.get("executor", {})
        before = {"trials": config["budget"]["trials"], "time": config["budget"]["seconds"], **executor,
                  "workers": config["workers"], "executor": executor.get("kind", "process")}  # fmt: skip
        for dest, value in sorted(changes.items()):
            if value != before.get(dest):
                print(f"resuming with {flag(dest)} {value} (the run had {before.get(dest)})")
    args.trials = changes.get("trials", config["budget"]["trials"])
    args.time = changes.get("time", config["budget"]["seconds"])
    kwargs: dict[str, Any] = {"out": args.out, "resume": True, "budget": changes.pop("trials", None),
                              "seconds": changes.pop("time", None), **changes}  # fmt: skip
    if "evaluator" in given:
        kwargs["evaluator"] = args.evaluator
    return kwargs


def search_kwargs(args: argparse.Namespace, given: set[str]) -> dict[str, Any]:
    """The arguments of :func:`archsearch.search` that the command line's options make."""
    return {
        "space": args.space, "strategy": args.strategy, "dataset": args.dataset, "evaluator": args.evaluator,
        "table": args.table, "table_signal": args.table_signal, "table_report": args.table_report,
        "budget": args.trials, "seconds": args.time, "out": args.out, "metric": args.metric,
        "constraints": args.constraint or (), "objectives": args.objectives or "", "seed": args.seed,
        "latency_table": args.latency_table, "latency_target": args.latency_target,
        "latency_threads": args.latency_threads, "latency_model": args.latency_model,
        "workers": args.workers, "executor": args.executor, "trial_timeout": args.trial_timeout,
        "retries": args.retries, "ray_address": args.ray_address, "cpus_per_trial": args.cpus_per_trial,
        "gpus_per_trial": args.gpus_per_trial,
        "evaluator_options": None if args.table else evaluator_options(args, given),
        "strategy_options": key_values(args.strategy_option or []), "multifidelity": multifidelity_options(args),
        "record": run_options(args),
    }  # fmt: skip


def evaluator_options(args: argparse.Namespace, given: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The evaluator's options from the command line (the proxy evaluator keeps its own cheap epochs unless
    ``--epochs`` is given)."""
    if args.evaluator and ":" in args.evaluator:
        return key_values(args.evaluator_option or [])
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
    if args.evaluator == "proxy" and "epochs" not in given and not args.fidelity:  # --fidelity: max is --epochs
        del options["epochs"]  # the search's default of 5 is not a choice the user made
    return options


def multifidelity_options(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.fidelity:
        return None
    return {"kind": args.fidelity, "min": args.min_epochs, "eta": args.eta}


def key_values(items: list[str]) -> dict[str, Any]:
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


def search_parser() -> argparse.ArgumentParser:
    """A parser of the search command's options alone (their types, choices and defaults, for config files)."""
    parser = argparse.ArgumentParser(add_help=False)
    search_arguments(parser)
    return parser


def search_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of ``archsearch search``: what is searched, the budget and where trials run, the objective,
    the networks and outputs, and the training options of its trials."""
    _what_is_searched(p)
    _budget_and_executor(p)
    _objective(p)
    _networks_and_outputs(p)
    add_training_arguments(p)
    from archsearch.evaluators import TrainEvaluator

    # a search's trials train briefly with early stopping: the train evaluator's own defaults
    p.set_defaults(epochs=default_of(TrainEvaluator, "epochs"), patience=default_of(TrainEvaluator, "patience"))


def _what_is_searched(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", default=DEFAULT_SPACE, choices=SPACES.names())
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
    p.add_argument("--min-epochs", type=finite_float, default=1.0, help="lowest rung for --fidelity (default 1)")
    p.add_argument("--eta", type=int, default=3, help="reduction factor for --fidelity (default 3)")
    p.add_argument("--table", action="append", metavar="CSV",
                   help="search a tabular benchmark CSV (an arch column of the space's genotype texts); repeat to "
                   "join further tables on the architecture (e.g. device latencies), whose columns can then be "
                   "objectives and constraints")  # fmt: skip
    p.add_argument(
        "--table-signal",
        default=default_of(multitrial.make_config, "table_signal"),
        help="the table's column the search maximises (default NB201's valid_acc_12ep)",
    )
    p.add_argument(
        "--table-report",
        default=default_of(multitrial.make_config, "table_report"),
        help="the table's column reported for the winner, never searched (default test_acc_200ep)",
    )


def _budget_and_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trials", type=positive_int, default=50)
    p.add_argument("--time", type=finite_float, help="wall-clock budget in seconds")
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
    p.add_argument("--cpus-per-trial", type=finite_float, default=1.0,
                   help="Ray resources of one trial (default 1 CPU)")
    p.add_argument("--gpus-per-trial", type=finite_float, default=0.0, help="Ray GPUs of one trial (default 0)")
    p.add_argument("--trial-timeout", type=finite_float,
                   help="seconds after which a trial is stopped and recorded failed")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a trial whose worker process died (default 2)")


def _objective(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", default="val_acc")
    p.add_argument("--constraint", action="append", help="a limit checked before training, e.g. params<=1M")
    p.add_argument("--objectives", help="several objectives for a Pareto front, e.g. val_acc,params; a table's "
                   "column with its direction, e.g. val_acc,pixel3_ms:min")
    p.add_argument(
        "--latency-table",
        metavar="FILE.json",
        help="predict latency_ms with this table (archsearch latency-table) instead of measuring it",
    )
    p.add_argument(
        "--latency-target",
        choices=("eager", "torchscript", "onnxruntime"),
        help="where latency_ms is measured (default eager; a table's own target)",
    )
    p.add_argument("--latency-threads", type=positive_int, default=1, help="threads when measuring latency_ms")
    p.add_argument("--latency-model", metavar="FILE.json",
                   help="predict latency_ms with a device model (archsearch latency-model fit) instead of measuring")


def _networks_and_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", type=positive_int)
    p.add_argument("--cells", type=positive_int)
    p.add_argument("--width", type=finite_float, help="channel multiplier of the evaluated networks")
    p.add_argument("--retrain", action="store_true", help="train the winner at full budget beside the baseline")
    p.add_argument("--retrain-epochs", type=positive_int, default=default_of(retraining.retrain, "epochs"))
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--export", choices=FORMATS, help="at the end, export the winner (retrained when --retrain) so")
    p.add_argument("--export-dir", help="where --export writes (default OUT/export)")
    p.add_argument("--config", help="a TOML file with any of these options")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a tty")


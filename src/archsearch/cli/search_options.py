"""The search command's options: their definition (one parser that the command line and TOML config files share),
which of them act in a given setting (the rest are refused), the evaluator options they make, and resuming a run
with the run's own settings."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archsearch import options
from archsearch.api import RESUME_CHANGES, resume_config, retraining, with_resumable_changes
from archsearch.cli.common import add_depth_arguments, build_options
from archsearch.cli.options import NOT_OPTIONS, default_of, flag, option_actions, refuse_unused, take_recorded
from archsearch.cli.train import add_training_arguments, training_config
from archsearch.errors import ArchsearchError
from archsearch.export.formats import FORMATS
from archsearch.options import finite_float, positive_int
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
DATA = {"dataset", "data_dir", "subset", "val_subset", "image_size"}
RETRAIN_DATA = {"dataset", "data_dir", "image_size", "batch_size", "lr", "device", "precision"}  # what --retrain reads
BUILD = {"channels", "cells", "cells_per_stage", "width"}
#: options of the search group that act only in some settings (a table; Ray; several workers or a timeout)
ONLY_SOME = {"table_signal", "table_report", "ray_address", "cpus_per_trial", "gpus_per_trial", "retries"}
#: options every search reads, besides the search and latency option groups
ALWAYS = {
    "space", "strategy", "strategy_option", "evaluator", "table", "trials", "time", "out", "constraint", "retrain",
    "top", "progress", "fidelity", "export", "export_dir",
}  # fmt: skip


def _used_options(args: argparse.Namespace) -> tuple[set[str], str]:
    """The options some part of this search reads, and what the search is (for the message about the rest)."""
    groups = options.names(options.group("search")) | options.names(options.group("latency"))
    used = ALWAYS | groups - ONLY_SOME  # those act in the settings below
    evaluator = args.evaluator or "train"
    if args.table:
        used |= {"table_signal", "table_report"}
        what = "with --table (a tabular benchmark trains no network)"
    elif evaluator in ("train", "proxy"):
        used |= DATA | BUILD | options.names(options.group("training"), cli_only=True)
        what = f"with the {evaluator} evaluator"
    elif evaluator == "zero_cost":
        used |= {"dataset", "data_dir", "image_size", "batch_size", "channels", "cells", "cells_per_stage",
                 "device", "proxy"}
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
    if not args.table and (args.evaluator or "train") in ("train", "proxy"):
        training_config(args)  # the training options checked together before anything starts


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
    take_recorded(args, given, options.migrate(recorded, "training"), RESUMABLE, args.out)
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
        **options.values(options.group("search"), args), **options.values(options.group("latency"), args),
        "space": args.space, "strategy": args.strategy, "dataset": args.dataset, "evaluator": args.evaluator,
        "table": args.table, "budget": args.trials, "seconds": args.time, "out": args.out,
        "constraints": args.constraint or (),
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
    build = {k: v for k, v in build_options(args).items() if k in BUILD - {"width"} and v is not None}
    if args.evaluator == "zero_cost":
        return {
            "proxy": args.proxy,
            "batch_size": args.batch_size,
            "data_dir": args.data_dir,
            "image_size": args.image_size,
            "build": build,
            "device": args.device,
        }
    training = options.values(options.group("training"), args)
    training.pop("seed", None)  # the search's seed, which the evaluator is given with it
    settings: dict[str, Any] = {**training, "data_dir": args.data_dir, "image_size": args.image_size, "build": build}
    for name in ("subset", "val_subset"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    if args.width is not None:
        settings["width"] = args.width
    if args.evaluator == "proxy" and "epochs" not in given and not args.fidelity:  # --fidelity: max is --epochs
        del settings["epochs"]  # the search's default of 5 is not a choice the user made
    return settings


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
    options.add_arguments(p, options.group("search"))
    options.add_arguments(p, options.group("latency"))
    from archsearch.evaluators import TrainEvaluator

    # a search's trials train briefly with early stopping: the train evaluator's own defaults; the seed is the
    # search's, which its trials are given
    add_training_arguments(p, {name: default_of(TrainEvaluator, name) for name in ("epochs", "patience")},
                           skip={"seed"})  # fmt: skip


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


def _budget_and_executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trials", type=positive_int, default=50)
    p.add_argument("--time", type=finite_float, help="wall-clock budget in seconds")
    p.add_argument("--out", default="runs/search", help="run directory (the store lives here)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")


def _objective(p: argparse.ArgumentParser) -> None:
    p.add_argument("--constraint", action="append", help="a limit checked before training, e.g. params<=1M")


def _networks_and_outputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channels", type=positive_int)
    add_depth_arguments(p)
    p.add_argument("--width", type=finite_float, help="channel multiplier of the evaluated networks")
    p.add_argument("--retrain", action="store_true", help="train the winner at full budget beside the baseline")
    p.add_argument("--retrain-epochs", type=positive_int, default=retraining.RETRAINING.epochs)
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--export", choices=FORMATS, help="at the end, export the winner (retrained when --retrain) so")
    p.add_argument("--export-dir", help="where --export writes (default OUT/export)")
    p.add_argument("--config", help="a TOML file with any of these options")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a tty")

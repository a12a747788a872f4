"""Multi-trial search from Python: ``archsearch.search(space=..., strategy=..., dataset=..., budget=...)``.

A search is described by a JSON-able config (names and options), which the store records, so ``resume`` rebuilds
the same space, strategy, evaluator and objective by name and continues.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from archsearch import options
from archsearch.api.objective_options import (
    check_columns,
    check_latency_table,
    latency_model_settings,
    latency_settings,
    strategy_objectives,
    table_options,
)
from archsearch.api.search_config import LatencyOptions, SearchOptions
from archsearch.api.tools import check_build
from archsearch.data import Data, as_data, is_named
from archsearch.errors import ArchsearchError
from archsearch.evaluators import EVALUATORS, TrainEvaluator, accepts, make_evaluator
from archsearch.executors import EvaluatorSpec, InlineExecutor, ProcessExecutor
from archsearch.experiment import Budget, Experiment
from archsearch.multifidelity import MultiFidelity
from archsearch.objectives import Objective
from archsearch.run_summary import SearchResult
from archsearch.rundir import DB_NAME, describe
from archsearch.spaces import DEFAULT_SPACE, get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy
from archsearch.trial import Trial


def make_config(
    space: str = DEFAULT_SPACE,
    strategy: str = "evolution",
    dataset: str = "digits",
    evaluator: str | None = None,
    table: str | Path | Sequence[str | Path] | None = None,
    trials: int = 50,
    seconds: float | None = None,
    constraints: Sequence[str] = (),
    space_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    evaluator_options: dict[str, Any] | None = None,
    multifidelity: dict[str, Any] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A validated search config. ``table`` selects the tabular evaluator (a CSV with an ``arch`` column of the
    space's genotype texts; ``table_signal`` is the column searched, ``table_report`` the one reported); else
    ``evaluator`` (default ``train``) trains on ``dataset``. ``settings``: the fields of
    :class:`~archsearch.api.search_config.SearchOptions` (``metric``, ``objectives``, ``seed``, ``workers``,
    ``executor``, ...) and :class:`~archsearch.api.search_config.LatencyOptions` (``latency_table``, ...)."""
    run, latency = option_groups(settings, "make_config()")
    space_obj = get_space(space, **(space_options or {}))
    get_strategy(strategy, space_obj, seed=run.seed, **(strategy_options or {}))
    evaluator, ev_options = _evaluator_settings(evaluator, evaluator_options, table, run.table_signal,
                                                run.table_report, dataset, run.seed)  # fmt: skip
    if evaluator in EVALUATORS and isinstance(ev_options.get("build"), dict):
        check_build(space_obj, ev_options["build"])  # an option of another space (or an old name) is refused
    metric = run.metric
    if evaluator == "zero_cost" and metric == "val_acc":
        metric = "zc_score"  # the zero-cost evaluator trains nothing, so it has no accuracy to maximise
    objective = Objective.from_strings(metric, constraints, run.objectives)
    named = {objective.metric, *objective.objectives, *objective.limits}
    check_columns(objective, space, ev_options if evaluator == "table" else None)
    where = (latency.latency_table, latency.latency_target, latency.latency_threads)
    latency_settings(objective, named, space, *where)
    latency_model_settings(objective, named, space, latency.latency_model, *where)
    strategy_options = strategy_objectives(strategy, objective, strategy_options)
    if evaluator == "table" and "test_acc" in named:
        raise ArchsearchError(
            "test_acc is the table's reported figure, kept for the report: a search that selects by it (as metric, "
            "objective or constraint) leaks the test split into the choice; search by val_acc"
        )
    Budget(trials, seconds)
    return {
        "space": space,
        "space_options": space_options or {},
        "strategy": strategy,
        "strategy_options": strategy_options or {},
        "evaluator": evaluator,
        "evaluator_options": ev_options,
        "objective": objective.to_json(),
        "budget": {"trials": trials, "seconds": seconds},
        "seed": run.seed,
        "workers": run.workers,
        "executor": run.executor_settings(),
        "multifidelity": _multifidelity_settings(multifidelity, evaluator, ev_options, metric),
    }


def option_groups(given: dict[str, Any], where: str) -> tuple[SearchOptions, LatencyOptions]:
    """The search's and the latency option groups made from ``given`` (a name of neither is an error naming the
    names both take)."""
    search_group, latency_group = options.group("search"), options.group("latency")
    latency_names = options.names(latency_group)
    unknown = sorted(set(given) - options.names(search_group) - latency_names)
    if unknown:
        allowed = sorted(options.names(search_group) | latency_names)
        raise ArchsearchError(f"{where}: unknown option(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    run = options.make(search_group, None, where, **{k: v for k, v in given.items() if k not in latency_names})
    latency = options.make(latency_group, None, where, **{k: v for k, v in given.items() if k in latency_names})
    return run, latency


def _evaluator_settings(evaluator: str | None, options: dict[str, Any] | None, table: Any, signal: str, report: str,
                        dataset: str, seed: int) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The evaluator a search uses and its options: the table's with ``table``, else ``evaluator`` (default
    ``train``) with the dataset and seed where it reads them."""
    ev_options = dict(options or {})
    if table is not None:
        if evaluator not in (None, "table"):
            raise ArchsearchError(f"--table searches a tabular benchmark; it cannot go with evaluator {evaluator!r}")
        return "table", table_options(table, signal, report)
    evaluator = evaluator or "train"
    if evaluator == "table":
        raise ArchsearchError("the table evaluator needs --table CSV")
    if ":" not in evaluator:  # a package.module:Class evaluator takes exactly the options given
        EVALUATORS.get(evaluator)
        for option, value in (("dataset", dataset), ("seed", seed)):
            if accepts(evaluator, option):  # an evaluator of your own may not read data
                ev_options.setdefault(option, value)
    return evaluator, ev_options


def _multifidelity_settings(multifidelity: dict[str, Any] | None, evaluator: str, ev_options: dict[str, Any],
                            metric: str) -> dict[str, Any] | None:  # fmt: skip
    """The successive-halving or Hyperband settings, checked (the top rung is the evaluator's epochs)."""
    if multifidelity is None:
        return None
    if evaluator == "table":
        raise ArchsearchError("multi-fidelity search needs an evaluator that trains (epochs), not the table")
    mf = {
        "kind": multifidelity.get("kind", "sh"),
        "min": multifidelity.get("min", 1),
        "max": ev_options.get("epochs", 10),
        "eta": multifidelity.get("eta", 3),
    }
    MultiFidelity(mf["kind"], mf["min"], mf["max"], mf["eta"], metric)  # validates
    return mf


def build_experiment(
    config: dict[str, Any],
    out: str | Path,
    on_trial: Callable[[Trial, Experiment], None] | None = None,
    store: Store | None = None,
    data: Data | None = None,
) -> Experiment:
    """The experiment a config describes, recording into ``out``. Everything is checked before the run directory is
    written (bad options leave nothing behind), and its lock is taken before any worker process starts. ``data``:
    the in-memory dataset of a config that records one (``in_memory_data``), which the evaluator then reads."""
    space = get_space(config["space"], **config["space_options"])
    strategy = get_strategy(config["strategy"], space, seed=config["seed"], **config["strategy_options"])
    objective = Objective.from_json(config["objective"])
    ev_options = dict(config["evaluator_options"])
    if config.get("in_memory_data"):
        if data is None:
            raise ArchsearchError("this run searched data given in memory; pass the same dataset= again")
        check_same_data(config["in_memory_data"], data)
        executor = {"kind": "process", "trial_timeout": None, **config.get("executor", {})}
        if config["workers"] != 1 or executor["kind"] != "process" or executor["trial_timeout"] is not None:
            raise ArchsearchError(
                "data given in memory is read by trials in this process: use one worker, the process executor and "
                "no trial timeout, or give the data as a folder of images per class"
            )
        ev_options["dataset"] = data
    evaluator = make_evaluator(config["evaluator"], space, ev_options)
    check_latency_table(objective, evaluator)
    budget = Budget(config["budget"]["trials"], config["budget"]["seconds"])
    mf = config.get("multifidelity")
    fidelity = None if not mf else MultiFidelity(mf["kind"], mf["min"], mf["max"], mf["eta"], objective.metric)
    store = store or Store(out)
    try:
        executor = make_executor(config, evaluator)
    except BaseException:
        store.close()
        raise
    return Experiment(
        space,
        strategy,
        evaluator,
        objective,
        budget,
        store,
        executor,
        seed=config["seed"],
        config=config,
        on_trial=on_trial,
        fidelity=fidelity,
    )


def make_executor(config: dict[str, Any], evaluator: Any) -> Any:
    """The executor a config asks for: one process-pool worker without a timeout runs inline (same results, no
    process start-up); otherwise local worker processes, or Ray tasks."""
    workers = int(config["workers"])
    options = {"kind": "process", "trial_timeout": None, "retries": 2, **config.get("executor", {})}
    spec = EvaluatorSpec(config["evaluator"], config["space"], config["space_options"], config["evaluator_options"])
    if options["kind"] == "ray":
        from archsearch.executors.ray import RayExecutor

        return RayExecutor(
            workers,
            spec,
            address=options.get("ray_address"),
            cpus_per_trial=float(options.get("cpus_per_trial", 1.0)),
            gpus_per_trial=float(options.get("gpus_per_trial", 0.0)),
            trial_timeout=options["trial_timeout"],
            retries=int(options["retries"]),
        )
    if workers == 1 and options["trial_timeout"] is None:
        return InlineExecutor(evaluator)
    return ProcessExecutor(workers, spec, trial_timeout=options["trial_timeout"], retries=int(options["retries"]))


def resume_config(out: str | Path, evaluator: str | None = None, reading: bool = False) -> dict[str, Any]:
    """The config recorded in an existing run directory, checked: a run directory is data, so a custom evaluator it
    names (``package.module:Class``) is imported only when the caller names the same class again (``evaluator``).
    ``reading``: the run is only shown, so an evaluator registered by the program that ran it need not be
    registered here."""
    kind, meta = describe(out)
    if kind == "nothing":
        raise ArchsearchError(f"{out}: no run here to resume (expected {DB_NAME})")
    if kind == "oneshot":
        info = meta.get("oneshot") or {}
        raise ArchsearchError(
            f"{out} holds a one-shot search ({info.get('method', '?')} on {info.get('space', '?')}), not a "
            f"multi-trial one; continue it with `archsearch oneshot --resume --out {out}`"
        )
    if kind == "empty":
        raise ArchsearchError(f"{out}: the store holds no run (no config was recorded); start a new search there")
    config = dict(meta["config"])
    check_stored_evaluator(config, evaluator, str(out), reading)
    name = config["evaluator"]
    if name in EVALUATORS and issubclass(EVALUATORS.get(name), TrainEvaluator):  # options recorded before a rename
        config["evaluator_options"] = options.migrate(config.get("evaluator_options") or {}, "training")
    return config


def _check_option_names(given: dict[str, Any]) -> None:
    """Refuse an option :func:`search` does not take, naming the ones it does (a TypeError otherwise)."""
    allowed = set(inspect.signature(make_config).parameters) - {"space", "strategy", "dataset", "trials", "seconds",
                                                                "settings"}  # fmt: skip
    allowed |= options.names(options.group("search")) | options.names(options.group("latency"))
    if "trials" in given:
        raise ArchsearchError("search() takes the number of trials as budget=N, not trials=")
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ArchsearchError(f"search() got unknown option(s) {', '.join(unknown)} (it takes budget, seconds, "
                              f"{', '.join(sorted(allowed))})")  # fmt: skip


def check_stored_evaluator(config: Any, named: str | None, where: str, reading: bool = False) -> None:
    """A config read from a store or a file may name a registered evaluator, or a custom class that the user names
    again (``named``); anything else is refused before any import happens. ``reading`` (the run is shown, nothing
    is evaluated): any evaluator name is accepted, and nothing is imported either."""
    if not isinstance(config, dict) or not isinstance(config.get("evaluator"), str):
        raise ArchsearchError(f"{where}: the recorded config is malformed (no evaluator name)")
    name = config["evaluator"]
    if reading:
        return
    if ":" in name:
        if named != name:
            again = f"you named {named!r}" if named else "none was named"
            raise ArchsearchError(
                f"{where} names the custom evaluator {name!r} ({again}): archsearch imports no class that a run "
                f"directory or config names; to run it, name it yourself: --evaluator {name}"
            )
    elif name not in EVALUATORS:
        raise ArchsearchError(f"{where}: unknown evaluator {name!r} (registered: {', '.join(EVALUATORS.names())})")


def describe_data(data: Data) -> dict[str, Any]:
    """What a run records of data given in memory (to recognise it on resume)."""
    return {"name": data.name, "train": len(data.train), "val": len(data.val), "test": len(data.test),
            "input_shape": list(data.input_shape), "classes": data.num_classes}  # fmt: skip


def check_same_data(recorded: dict[str, Any], data: Data) -> None:
    """Refuse to resume a run on other in-memory data than it searched."""
    now = describe_data(data)
    if now != recorded:
        diff = ", ".join(f"{k} {recorded.get(k)} then, {v} now" for k, v in now.items() if recorded.get(k) != v)
        raise ArchsearchError(f"the dataset given differs from the one this run searched ({diff})")


#: what a resume may change besides the budget (where and how trials run)
RESUME_CHANGES = ("workers", "executor", "trial_timeout", "retries", "ray_address", "cpus_per_trial", "gpus_per_trial")


def search(
    space: str = DEFAULT_SPACE,
    strategy: str = "evolution",
    dataset: Any = "digits",
    budget: int | None = None,
    seconds: float | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    on_trial: Callable[[Trial, Experiment], None] | None = None,
    **options: Any,
) -> SearchResult:
    """Run a search and return its :class:`~archsearch.experiment.SearchResult` (best trials, Pareto front).

    ``dataset`` is a name or folder, or data held in memory (a ``torch.utils.data.Dataset``, a (train, test) pair of
    them, or tensors ``(x, y[, x_test, y_test])``; see :func:`archsearch.data.as_data`), which trials read in this
    process (one worker). ``budget`` is the number of trials (default 50); ``options`` are those of
    :func:`make_config` (``table``,
    ``evaluator``, ``constraints``, ``objectives``, ``seed``, ``workers``, ``executor`` (``process`` or ``ray``),
    ``trial_timeout``, ``retries``, ``ray_address``, ``cpus_per_trial``, ``gpus_per_trial``, ``*_options``).

    With ``resume``, ``out`` must hold a run and its recorded config is used: ``budget`` and ``seconds`` may raise the
    budget, where trials run may change (:data:`RESUME_CHANGES`), a custom evaluator the run names must be named
    again as ``evaluator``, data given in memory must be given again, and any other option is refused (the run's
    settings cannot change half-way). The result carries the run's ``config`` and ``run_dir``: without ``out``, a
    new folder ``archsearch-*`` in the system's temporary directory, kept (removed again when the options are
    refused before anything is recorded).
    """
    data = None if is_named(dataset) else as_data(dataset)
    if resume:
        if out is None:
            raise ArchsearchError("resume needs the run directory (out)")
        config = resume_config(out, options.pop("evaluator", None))
        changes = {k: options.pop(k) for k in RESUME_CHANGES if k in options}
        if options:
            raise ArchsearchError(
                f"resume takes the run's settings; {', '.join(sorted(options))} cannot change (only budget, seconds, "
                f"{', '.join(RESUME_CHANGES)})"
            )
        if "executor" in changes:
            changes["kind"] = changes.pop("executor")
        config = with_resumable_changes(config, trials=budget, seconds=seconds, **changes)
    else:
        recorded = options.pop("record", None)
        _check_option_names(options)
        name = str(dataset) if data is None else data.name
        config = make_config(space, strategy, name, trials=50 if budget is None else budget, seconds=seconds, **options)
        if recorded is not None:  # the command line's options, so that a resume from it takes them from the run
            config["cli_options"] = recorded
        if data is not None:
            config["in_memory_data"] = describe_data(data)
    run_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="archsearch-"))
    try:
        experiment = build_experiment(config, run_dir, on_trial, data=data)
    except BaseException:
        if out is None and not any(run_dir.iterdir()):  # the folder made for this call; bad options leave nothing
            run_dir.rmdir()
        raise
    try:
        result = experiment.run(resume=resume)
    finally:
        experiment.store.close()
    result.config, result.run_dir = config, run_dir
    return result


def with_resumable_changes(
    config: dict[str, Any],
    trials: int | None = None,
    seconds: float | None = None,
    workers: int | None = None,
    **executor: Any,
) -> dict[str, Any]:
    """``config`` with the settings a resume may change: a larger budget (``trials`` is the total), the number of
    workers and the executor's options. ``None`` keeps the recorded value."""
    out = {**config, "budget": dict(config["budget"]), "executor": dict(config.get("executor", {}))}
    if trials is not None:
        out["budget"]["trials"] = trials
    if seconds is not None:
        out["budget"]["seconds"] = seconds
    Budget(out["budget"]["trials"], out["budget"]["seconds"])
    if workers is not None:
        if workers < 1:
            raise ArchsearchError(f"workers must be >= 1, got {workers}")
        out["workers"] = workers
    out["executor"].update({k: v for k, v in executor.items() if v is not None})
    return out

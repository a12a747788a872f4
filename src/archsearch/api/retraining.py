"""Retraining a found architecture beside the hand-designed baseline CNN at the same budget (same data, epochs,
batch size, learning rate, seed), and recording both in the run directory for its report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archsearch import options
from archsearch.data import as_data
from archsearch.errors import ArchsearchError
from archsearch.evaluators.train import scaled_build
from archsearch.nn.baseline import build_model
from archsearch.outputs import save_torch
from archsearch.run_summary import SearchResult
from archsearch.rundir import names_directory
from archsearch.spaces import Space, get_space, parse_arch
from archsearch.store import Store
from archsearch.trainer import EpochRecord, TrainConfig, TrainResult, train

BASELINE = "the hand-designed baseline CNN"
WINNER_WEIGHTS = "retrained_winner.pt"
#: how a winner and the baseline are retrained unless told otherwise: 20 epochs, half an epoch of warm-up
RETRAINING = TrainConfig(epochs=20, lr_warmup_epochs=0.5)


@dataclass
class Retrained:
    """One of the two retrained networks: what it is and how its training went."""

    name: str  # "winner" or "baseline"
    arch: str
    result: TrainResult
    train_examples: int

    def to_json(self) -> dict[str, Any]:
        """The fields ``--json`` prints."""
        r = self.result
        return {
            "retrain": self.name,
            "arch": self.arch,
            "test_acc": r.test_acc,
            "val_acc": r.best_val_acc,
            "params": r.params,
            "epochs": r.epochs,
            "train_examples": self.train_examples,
            "seconds": round(r.seconds, 2),
            "precision": r.precision,
        }


@dataclass
class RetrainResult:
    """The winner and the baseline, retrained at the same budget."""

    dataset: str
    epochs: int
    models: dict[str, Retrained] = field(default_factory=dict)


def retrain(
    arch: Any,
    dataset: Any = None,
    space: str | Space[Any] | None = None,
    build: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    run_dir: str | Path | None = None,
    on_epoch: Callable[[str, EpochRecord], None] | None = None,
    on_model: Callable[[Retrained], None] | None = None,
    data_dir: str | Path | None = None,
    subset: int | None = None,
    image_size: int | None = None,
    **training: Any,
) -> RetrainResult:
    """Train ``arch`` and the hand-designed baseline CNN from scratch on ``dataset``'s training split with the same
    settings, and report test accuracy. ``arch`` is a genotype, its text (as ``archsearch cost`` takes it), a
    :class:`~archsearch.experiment.SearchResult` or a run directory (its winner, built as the search built it, on
    the search's dataset unless ``dataset`` is given; a search of data held in memory needs it given again).
    ``dataset`` is anything :func:`archsearch.data.as_data` takes (default: digits). With ``run_dir``, both are
    recorded in its store for the report. ``subset``: a seeded subset (``seed``) of the training split;
    ``image_size``: for a folder of images of mixed sizes. How both train: ``config`` (default :data:`RETRAINING`)
    and/or its fields as keyword arguments (``epochs=30, lr=0.1``), which win."""
    config = replace(options.make(options.group("training"), config or RETRAINING, "retrain()", **training),
                     evaluate_test=True)  # fmt: skip
    seed, epochs = config.seed, config.epochs
    if names_directory(arch) or isinstance(arch, SearchResult):
        arch, space, build, dataset, data_dir, image_size = _searched(arch, space, build, dataset, data_dir,
                                                                      image_size)  # fmt: skip
    data = as_data("digits" if dataset is None else dataset, data_dir, image_size=image_size)
    if subset:
        data = data.with_train_subset(subset, seed=seed)
    if isinstance(arch, str):
        space_obj, genotype = parse_arch(arch, space)
    else:
        space_obj = get_space(space) if space is not None else get_space(arch.to_json()["space"])
        genotype = space_obj.validate(arch)
    c, size, _ = data.input_shape
    models = {
        "winner": (str(genotype), space_obj.build(genotype, c, data.num_classes, size, seed=seed, **(build or {}))),
        "baseline": (BASELINE, build_model("baseline", c, data.num_classes, seed=seed)),
    }
    out = RetrainResult(data.name, epochs)
    for name, (arch, model) in models.items():

        def progress(record: EpochRecord, name: str = name) -> None:
            if on_epoch is not None:
                on_epoch(name, record)

        out.models[name] = Retrained(name, arch, train(model, data, config, on_epoch=progress), len(data.train))
        if on_model is not None:
            on_model(out.models[name])
    if run_dir is not None:
        _record(run_dir, out, data, space_obj, genotype, build, models["winner"][1], epochs)
    return out


def _searched(arch: Any, space: Any, build: dict[str, Any] | None, dataset: Any, data_dir: Any,
              image_size: int | None) -> tuple[Any, Any, dict[str, Any], Any, Any, int | None]:  # fmt: skip
    """A search's winner (from its result or its run directory) as the search built it: (genotype, space, build
    options, dataset, data folder, image size), the given ones taking precedence."""
    if names_directory(arch):
        from archsearch.api.tools import show

        view = show(arch)
        if view.result is None:
            raise ArchsearchError(f"{arch} holds a one-shot search; retrain its genotype (archsearch show prints it)")
        arch = view.result
        arch.config = view.config
    if arch.winner is None:
        raise ArchsearchError("no trial completed, so there is no winner to retrain")
    config = arch.config or {}
    options = config.get("evaluator_options", {})
    if dataset is None:
        if config.get("evaluator") == "table" or config.get("in_memory_data"):
            raise ArchsearchError("the search read no dataset that can be read again (a table, or data in "
                                  "memory): give dataset= to retrain on")  # fmt: skip
        dataset, data_dir = options.get("dataset", "digits"), options.get("data_dir") or data_dir
        image_size = options.get("image_size") or image_size
    space = get_space(config["space"], **config.get("space_options", {})) if config else space
    searched = scaled_build(get_space(space), options.get("build"), float(options.get("width", 1.0)))
    build = {**searched, **(build or {})}  # the network the search evaluated (its width), unless overridden
    return arch.winner.genotype, space, build, dataset, data_dir, image_size


def _record(run_dir: str | Path, out: RetrainResult, data: Any, space: Space[Any], genotype: Any,
            build: dict[str, Any] | None, winner: Any, epochs: int) -> None:  # fmt: skip
    """Both retrainings into the run's store for the report, and the winner's weights beside it (``archsearch
    export`` reads them)."""
    c, size, _ = data.input_shape
    network = {"space": space.name, "genotype": genotype.to_json(), "input_shape": [c, size, size],
               "num_classes": data.num_classes, "build": dict(build or {}), "weights": WINNER_WEIGHTS}  # fmt: skip
    record: dict[str, Any] = {"dataset": data.name, "train_examples": len(data.train), "epochs": epochs,
                              "winner_network": network}  # fmt: skip
    save_torch(winner.state_dict(), Path(run_dir) / WINNER_WEIGHTS)
    for name, m in out.models.items():
        record[name] = {**m.to_json(), "history": [vars(h) for h in m.result.history]}
    store = Store(run_dir)
    try:
        store.set_meta("retrain", record)
    finally:
        store.close()

"""Training one architecture (or the hand-designed baseline CNN) from scratch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from archsearch import options
from archsearch.api.results import TrainRecord
from archsearch.api.tools import check_build, genotypes
from archsearch.checkpoints import build_from_spec, model_spec, save_trained
from archsearch.data import as_data
from archsearch.errors import ArchsearchError
from archsearch.spaces import Space
from archsearch.trainer import EpochRecord, TrainConfig
from archsearch.trainer import train as run_training


def train(
    arch: Any = None,
    model: str | None = None,
    space: str | Space[Any] | None = None,
    dataset: Any = "digits",
    data_dir: str | Path | None = None,
    subset: int | None = None,
    val_subset: int | None = None,
    image_size: int | None = None,
    build: dict[str, Any] | None = None,
    config: TrainConfig | None = None,
    save: str | Path | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    **training: Any,
) -> TrainRecord:
    """Train ``arch`` (a genotype or its text, built with ``build``) or the hand-designed ``model`` (``baseline``)
    from scratch on ``dataset`` (anything :func:`archsearch.data.as_data` takes; ``subset``: a seeded subset of the
    training split; ``val_subset``: of the validation split) and report validation and test accuracy; ``save``
    writes ``model.pt`` and ``record.json``.
    How it trains: ``config`` (a :class:`~archsearch.trainer.TrainConfig`) and/or its fields as keyword arguments
    (``epochs=3, lr=0.1``), which win over ``config``'s."""
    if (model is None) == (arch is None):
        raise ArchsearchError("give one architecture (arch) or a model name (model), not both or neither")
    config = options.make(options.group("training"), config, "train()", **training)
    data = as_data(dataset, data_dir, image_size=image_size)
    if subset:
        data = data.with_train_subset(subset, seed=config.seed)
    if val_subset:
        data = data.with_val_subset(val_subset, seed=config.seed)
    spec, label = _network(arch, model, space, build, config.drop_path, data)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = build_from_spec(spec)
    result = run_training(network, data, replace(config, evaluate_test=True), on_epoch=on_epoch)
    record = TrainRecord(label, data.name, result.best_val_acc, result.test_acc, result.params, result.epochs,
                         round(result.seconds, 3), result.status, result.message, config.seed,
                         [vars(h) for h in result.history], result.best_epoch, precision=result.precision)  # fmt: skip
    if save:
        save_trained(save, network, spec, record.to_json())
        record.saved = str(save)
    return record


def _network(arch: Any, model: str | None, space: Any, build: dict[str, Any] | None, drop_path: float,
             data: Any) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The spec of the network to train (an architecture with its build options, or a hand-designed model by
    name) for ``data``, and its label."""
    c, size, _ = data.input_shape
    if model is not None:
        if build or drop_path:
            raise ArchsearchError(f"build options (channels, cells, width, auxiliary, drop_path) apply to "
                                  f"architectures, not the model {model!r}")  # fmt: skip
        return model_spec(c, data.num_classes, size, model=model), model
    ((sp, genotype),) = genotypes([arch], space)
    options = check_build(sp, {**(build or {}), "drop_path": drop_path or None})
    return model_spec(c, data.num_classes, size, genotype=genotype, build=options), str(genotype)

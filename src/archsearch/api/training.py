"""Training one architecture (or the hand-designed baseline CNN) from scratch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    image_size: int | None = None,
    build: dict[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "sgd",
    lr: float = 0.05,
    weight_decay: float = 5e-4,
    warmup: float = 0.0,
    label_smoothing: float = 0.0,
    drop_path: float = 0.0,
    cutout: int = 0,
    augment: bool = True,
    patience: int | None = None,
    max_seconds: float | None = None,
    compile: bool = False,
    device: str = "cpu",
    seed: int = 0,
    save: str | Path | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainRecord:
    """Train ``arch`` (a genotype or its text, built with ``build``) or the hand-designed ``model`` (``baseline``)
    from scratch on ``dataset`` (anything :func:`archsearch.data.as_data` takes; ``subset``: a seeded subset of the
    training split) and report validation and test accuracy; ``save`` writes ``model.pt`` and ``record.json``."""
    if (model is None) == (arch is None):
        raise ArchsearchError("give one architecture (arch) or a model name (model), not both or neither")
    if cutout and not augment:
        raise ArchsearchError("cutout is an augmentation; it cannot go with augment off")
    data = as_data(dataset, data_dir, image_size=image_size)
    if subset:
        data = data.with_train_subset(subset, seed=seed)
    spec, label = _network(arch, model, space, build, drop_path, data)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_from_spec(spec)
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
        warmup_epochs=warmup, label_smoothing=label_smoothing, drop_path=drop_path,
        augment=data.default_augment(cutout=cutout) if augment else None, patience=patience, evaluate_test=True,
        max_seconds=max_seconds, compile=compile, device=device, seed=seed,
    )  # fmt: skip
    result = run_training(network, data, config, on_epoch=on_epoch)
    record = TrainRecord(label, data.name, result.best_val_acc, result.test_acc, result.params, result.epochs,
                         round(result.seconds, 3), result.status, result.message, seed,
                         [vars(h) for h in result.history], result.best_epoch)  # fmt: skip
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

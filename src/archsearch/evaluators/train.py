"""Evaluate a genotype by building its network and training it from scratch (with early stopping).

The proxy evaluator is the same with cheaper named knobs: ``subset`` (training examples), ``epochs`` and ``width``
(a multiplier on the space's channel option). Search sees validation accuracy; test accuracy is never computed here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from torch import nn

from archsearch import options
from archsearch.data import Data, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator
from archsearch.spaces import Space, get_space
from archsearch.trainer import TrainConfig, train


def scaled_build(space: Space[Any], build: dict[str, Any] | None, width: float = 1.0) -> dict[str, Any]:
    """The build options of the networks a train evaluator makes: ``build`` with its channels (or the space's
    ``width``) scaled by ``width``."""
    options = space.current_build_options(build)  # a run recorded before a rename: today's names
    defaults = space.build_options()
    if width != 1.0:
        if "channels" in defaults:
            base = options.get("channels", defaults["channels"])
            options["channels"] = max(2, round(base * width / 2) * 2)
        elif "width" in defaults:
            options["width"] = options.get("width", defaults["width"]) * width
    return options


class TrainEvaluator(Evaluator):
    """Train each genotype for ``epochs`` (``fidelity`` overrides it) and report ``val_acc`` and costs;
    ``train_options`` are further fields of :class:`~archsearch.trainer.TrainConfig` (``optimizer``, ``augment``,
    ``cutout``, ...)."""

    name = "train"

    def __init__(
        self,
        space: str | Space[Any],
        dataset: str | Data = "digits",
        data_dir: str | None = None,
        epochs: int = 5,
        batch_size: int = 128,
        lr: float = 0.05,
        patience: int | None = 3,
        subset: int | None = None,
        val_subset: int | None = None,
        width: float = 1.0,
        build: dict[str, Any] | None = None,
        image_size: int | None = None,
        device: str = "cpu",
        seed: int = 0,
        **train_options: Any,
    ) -> None:
        self.space = get_space(space)
        self.data = dataset if isinstance(dataset, Data) else load_dataset(dataset, data_dir, image_size=image_size)
        if subset is not None:
            self.data = self.data.with_train_subset(subset, seed)
        if val_subset is not None:
            self.data = self.data.with_val_subset(val_subset, seed)
        if width <= 0:
            raise ArchsearchError(f"width must be positive, got {width}")
        self.build_options = scaled_build(self.space, build, width)
        self.epochs, self.seed = epochs, seed
        self.max_fidelity = float(epochs)
        self.config: TrainConfig = options.make(
            options.group("training"), None, f"the {self.name} evaluator", epochs=epochs, batch_size=batch_size,
            lr=lr, patience=patience, device=device, seed=seed, **train_options,
        )  # fmt: skip

    def network(self, genotype: Any, seed: int | None = None) -> tuple[nn.Module, tuple[int, int, int]]:
        """The network this evaluator trains for ``genotype``, and its input shape."""
        c, h, _ = self.data.input_shape
        model = self.space.build(genotype, c, self.data.num_classes, h, seed=seed, **self.build_options)
        return model, self.data.input_shape

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        trial_seed = self.seed if seed is None else seed
        model, _ = self.network(genotype, seed=trial_seed)
        epochs = self.epochs if fidelity is None else max(1, round(fidelity))
        config = replace(self.config, epochs=epochs, seed=trial_seed)
        result = train(model, self.data, config)
        if not result.ok:
            raise ArchsearchError(result.message)
        if not np.isfinite(result.best_val_acc):
            raise ArchsearchError(f"validation accuracy is {result.best_val_acc}")
        return {
            "val_acc": result.best_val_acc,
            "final_val_acc": result.final_val_acc,
            "params": result.params,
            "epochs": result.epochs,
            "train_seconds": result.seconds,
        }


class ProxyEvaluator(TrainEvaluator):
    """Training on a budget: by default 1,000 training examples, 3 epochs, half the channels."""

    name = "proxy"

    def __init__(
        self, space: str | Space[Any], subset: int | None = 1000, epochs: int = 3, width: float = 0.5, **options: Any
    ) -> None:
        super().__init__(space, subset=subset, epochs=epochs, width=width, **options)

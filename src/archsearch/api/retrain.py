"""Retraining a found architecture beside the hand-designed baseline CNN at the same budget (same data, epochs,
batch size, learning rate, seed), and recording both in the run directory for its report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.data import Data
from archsearch.nn.baseline import build_model
from archsearch.spaces import Space
from archsearch.store import Store
from archsearch.train import EpochRecord, TrainConfig, TrainResult, train

BASELINE = "the hand-designed baseline CNN"


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
        }


@dataclass
class RetrainResult:
    """The winner and the baseline, retrained at the same budget."""

    dataset: str
    epochs: int
    models: dict[str, Retrained] = field(default_factory=dict)


def retrain(
    data: Data,
    space: Space[Any],
    genotype: Any,
    build: dict[str, Any] | None = None,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 0.05,
    seed: int = 0,
    device: str = "cpu",
    run_dir: str | Path | None = None,
    on_epoch: Callable[[str, EpochRecord], None] | None = None,
    on_model: Callable[[Retrained], None] | None = None,
) -> RetrainResult:
    """Train ``genotype`` (built with ``build``) and the baseline from scratch on ``data``'s training split with the
    same settings; report test accuracy. With ``run_dir``, both are recorded in its store for the report."""
    c, size, _ = data.input_shape
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=0.5, augment=data.default_augment(),
        evaluate_test=True, seed=seed, device=device,
    )  # fmt: skip
    models = {
        "winner": (str(genotype), space.build(genotype, c, data.num_classes, size, seed=seed, **(build or {}))),
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
        record: dict[str, Any] = {"dataset": data.name, "train_examples": len(data.train), "epochs": epochs}
        for name, m in out.models.items():
            record[name] = {**m.to_json(), "history": [vars(h) for h in m.result.history]}
        store = Store(run_dir)
        try:
            store.set_meta("retrain", record)
        finally:
            store.close()
    return out

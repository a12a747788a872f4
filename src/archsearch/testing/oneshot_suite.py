"""Checks every registered one-shot method passes on every space that has a supernet, as the strategy suite does
for multi-trial strategies: it derives a valid, non-degenerate genotype; a run cut after an epoch and resumed ends
exactly like an uninterrupted one; it runs with the defaults its class declares. A new method registered in
:data:`archsearch.oneshot.METHODS` is checked by ``tests/test_oneshot_suite.py`` without a line of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from archsearch.api.oneshot_search import oneshot
from archsearch.data import Data, from_tensors
from archsearch.oneshot import METHODS, SUPERNETS, OneShotConfig, default_config
from archsearch.oneshot.search import OneShotResult
from archsearch.rundir import describe
from archsearch.spaces import get_space


def tiny_data(seed: int = 0) -> Data:
    """96 8x8 grey images of 4 classes that differ in brightness: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(96) % 4
    x = torch.rand(96, 1, 8, 8, generator=g) * 0.3 + y.view(-1, 1, 1, 1) * 0.2
    return from_tensors(x, y, num_classes=4)


def _run(method: str, space: str, out: Path, epochs: int, resume: bool = False, cut_after: int | None = None) -> Any:
    class Cut(Exception):
        pass

    def on_epoch(record: dict[str, Any]) -> None:
        if cut_after is not None and record["epoch"] == cut_after:
            raise Cut

    config = default_config(method, epochs=epochs, batch_size=32, seed=3)
    try:
        # no PNG plots: they are the API's output, checked by its own tests, and took half of each run's time
        return oneshot(method, space, tiny_data(), out, config, dict(SUPERNETS.get(space).tiny), resume=resume,
                       on_epoch=on_epoch, subnetwork_trials=4, plots=False)  # fmt: skip
    except Cut:
        return None


def check_derives_a_valid_genotype(method: str, space: str, out: Path) -> OneShotResult:
    """One epoch: a genotype of ``space`` that validates, is not degenerate, and is recorded in the run."""
    result = _run(method, space, out, epochs=1)
    _check_genotype(method, space, result, out)
    return result


def _check_genotype(method: str, space: str, result: OneShotResult, out: Path) -> None:
    sp = get_space(space)
    assert sp.validate(result.genotype) == result.genotype
    assert sp.degenerate(result.genotype) is None, f"{method} derived a degenerate {space} genotype"
    kind, meta = describe(out)
    assert kind == "oneshot" and meta["oneshot_result"]["genotype"] == result.genotype.to_json()


def check_resume_is_identical(method: str, space: str, root: Path) -> None:
    """Cut after the first of two epochs, resumed: the same history (losses, alphas, derived cells) and genotype;
    the uninterrupted run's genotype passes :func:`check_derives_a_valid_genotype`'s checks."""
    full = _run(method, space, root / "full", epochs=2)
    _check_genotype(method, space, full, root / "full")
    assert _run(method, space, root / "cut", epochs=2, cut_after=1) is None
    resumed = _run(method, space, root / "cut", epochs=2, resume=True)
    keep = ("train_loss", "train_acc", "val_loss", "val_acc", "probabilities", "genotype", "skips")

    def comparable(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: r.get(k) for k in keep} for r in history]

    assert comparable(resumed.history) == comparable(full.history)
    assert resumed.genotype == full.genotype


def check_defaults(method: str, space: str, out: Path) -> None:
    """The run records the defaults the method's class declares: collapse control, supernet options, data split."""
    cls = METHODS.get(method)
    config = default_config(method)
    assert isinstance(config, OneShotConfig)
    assert (config.max_skips is not None and config.skip_penalty > 0) == cls.collapse_control
    for name, value in cls.config_defaults.items():
        assert getattr(config, name) == value, f"{method}: {name} is {getattr(config, name)}, its class says {value}"
    _run(method, space, out, epochs=1)
    recorded = describe(out)[1]["oneshot"]
    for option, value in cls.supernet_defaults.items():
        assert recorded["supernet"][option] == value
    assert recorded["method"] == method and recorded["space"] == space and space in SUPERNETS

"""Batch norms folded into their convolutions for evaluation: the same outputs on every space's networks and the
hand-designed baseline, the model untouched, nothing folded where the forward pass is not a plain chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.data import from_tensors
from archsearch.nn.folding import fold_batch_norms
from archsearch.spaces import get_space
from archsearch.trainer import evaluate

BUILDS = {"nb201": {"channels": 4, "cells_per_stage": 1}, "darts": {"channels": 4, "cells": 3},
          "chain": {}, "macro": {}, "mobile": {"width": 0.25}}  # fmt: skip


def _trained_statistics(model: nn.Module, shape: tuple[int, int, int]) -> nn.Module:
    """``model`` with batch-norm statistics and affine weights that are not the identity."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, *shape) * 2 + 0.5)
    return model.eval()


def _networks() -> list[tuple[str, dict]]:
    rng = np.random.default_rng(0)
    specs = [("baseline", model_spec(3, 10, 32, model="baseline"))]
    for name, build in BUILDS.items():
        space = get_space(name)
        specs.append((name, model_spec(3, 10, 32, genotype=space.sample(rng), build=build)))
    return specs


@pytest.mark.parametrize(("name", "spec"), _networks(), ids=[n for n, _ in _networks()])
def test_folded_networks_compute_the_same_and_the_model_is_untouched(name: str, spec: dict) -> None:
    model = _trained_statistics(build_from_spec(spec), (3, 32, 32))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    folded = fold_batch_norms(model)
    left = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert left < norms, f"{name}: no batch norm was folded"
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        want, got = model(x), folded(x)
    want, got = (want[0], got[0]) if isinstance(want, tuple) else (want, got)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == norms
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


class _Doubling(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self[1](self[0](x) * 2)


def test_only_a_convolution_feeding_a_norm_in_a_plain_sequential_is_folded() -> None:
    chain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
    subclass = _Doubling(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    hooked = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    seen = []
    hooked[1].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    for model in (chain, subclass, hooked):
        _trained_statistics(model, (3, 8, 8))
    folded = [fold_batch_norms(m) for m in (chain, subclass, hooked)]
    assert [type(m).__name__ for m in folded[0]] == ["Conv2d", "Identity", "ReLU", "BatchNorm2d", "Conv2d"]
    assert isinstance(folded[1][1], nn.BatchNorm2d) and isinstance(folded[2][1], nn.BatchNorm2d)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        for model, fast in zip((chain, subclass, hooked), folded, strict=True):
            torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    assert seen, "the hooked norm still runs"


def test_evaluate_folds_and_gives_the_same_figures(monkeypatch) -> None:
    import archsearch.trainer as trainer

    rng = np.random.default_rng(0)
    data = from_tensors(rng.integers(0, 255, (300, 3, 16, 16), dtype=np.uint8), rng.integers(0, 4, 300))
    model = _trained_statistics(build_from_spec(model_spec(3, 4, 16, model="baseline")), (3, 16, 16))
    calls = []
    monkeypatch.setattr(trainer, "fold_batch_norms", lambda m: calls.append(m) or fold_batch_norms(m))
    loss, acc = evaluate(model, data, "val")
    assert calls == [model]
    plain_loss, plain_acc = evaluate(model, data, "val", fold_norms=False)
    assert len(calls) == 1 and acc == plain_acc and loss == pytest.approx(plain_loss, rel=1e-5)

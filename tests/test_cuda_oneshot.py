"""One-shot search on CUDA: a short DARTS, PC-DARTS, GDAS and SPOS search on the GPU (bfloat16 autocast,
channels-last, the dilated convolutions' fallback from their CPU-only path). Skipped where no GPU is visible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch.api.oneshot_search import oneshot
from archsearch.oneshot import default_config
from archsearch.oneshot.supernets import SUPERNETS
from archsearch.spaces import get_space
from archsearch.testing.oneshot_suite import tiny_data

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to this PyTorch build")


@pytest.mark.parametrize(("method", "space"), [("darts", "darts"), ("pcdarts", "darts"), ("gdas", "nb201"),
                                               ("spos", "nb201"), ("darts", "nb201")])  # fmt: skip
def test_a_short_search_runs_on_the_gpu(method: str, space: str, tmp_path: Path) -> None:
    config = default_config(method, epochs=2, batch_size=16, seed=0)
    result = oneshot(method, space, tiny_data(), tmp_path, config, dict(SUPERNETS.get(space).tiny), device="cuda",
                     subnetwork_trials=4)  # fmt: skip
    assert next(result.supernet.parameters()).is_cuda
    assert get_space(space).validate(result.genotype) == result.genotype
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.history)

"""Mixed precision (archsearch.mixed_precision): which type a training run autocasts to under each ``--precision``,
where ``auto`` takes bfloat16 on the CPU, and that the choice reaches the training step and the run's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from archsearch import mixed_precision, trainer
from archsearch.checkpoints import build_from_spec, model_spec
from archsearch.cli import main
from archsearch.data import from_tensors
from archsearch.errors import ArchsearchError
from archsearch.mixed_precision import autocast_dtype
from archsearch.spaces import get_space

CPU = torch.device("cpu")
NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _networks() -> dict[str, tuple[nn.Module, tuple[int, int, int]]]:
    mobile = get_space("mobile").sample(np.random.default_rng(0))
    return {
        "baseline": (build_from_spec(model_spec(1, 10, 28, model="baseline")), (1, 28, 28)),
        "mobile": (build_from_spec(model_spec(1, 10, 28, genotype=mobile, build={"width": 0.25})), (1, 28, 28)),
        "small nb201": (build_from_spec(model_spec(1, 10, 8, genotype=get_space("nb201").parse(NB201),
                                                   build={"channels": 8, "cells_per_stage": 1})), (1, 8, 8)),
    }  # fmt: skip


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_auto_takes_bfloat16_on_the_cpu_only_for_dense_networks_with_work_and_a_cpu_that_has_it(
    monkeypatch, bf16_cpu: bool
) -> None:
    monkeypatch.setattr(mixed_precision, "cpu_has_bf16", lambda: bf16_cpu)
    chosen = {name: autocast_dtype("auto", net, CPU, shape) for name, (net, shape) in _networks().items()}
    # depthwise convolutions (mobile) and networks under MIN_CPU_MACS an image (small nb201) stay float32
    assert chosen == {"baseline": torch.bfloat16 if bf16_cpu else None, "mobile": None, "small nb201": None}


def test_an_explicit_precision_is_taken_as_given_or_refused_naming_what_runs_there(monkeypatch) -> None:
    monkeypatch.setattr(mixed_precision, "cpu_has_bf16", lambda: False)
    net, shape = _networks()["mobile"]
    assert autocast_dtype("bfloat16", net, CPU, shape) == torch.bfloat16
    assert autocast_dtype("float32", net, CPU, shape) is None
    with pytest.raises(ArchsearchError, match="float16 runs on CUDA only; on the CPU use bfloat16, float32 or auto"):
        autocast_dtype("float16", net, CPU, shape)
    with pytest.raises(ArchsearchError, match="precision must be one of auto, float32, bfloat16, float16, got 'fp64'"):
        trainer.TrainConfig(precision="fp64")
    with pytest.raises(SystemExit):
        main(["train", "--model", "baseline", "--precision", "half"])


def _tiny_data() -> Any:
    g = torch.Generator().manual_seed(0)
    return from_tensors(torch.rand(96, 1, 8, 8, generator=g), torch.randint(0, 4, (96,), generator=g), name="tiny")


class _Spy(nn.Module):
    """A dense network that records the autocast state of each training forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8, 4)
        self.seen: list[torch.dtype | None] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            on = torch.is_autocast_enabled("cpu")
            self.seen.append(torch.get_autocast_dtype("cpu") if on else None)
        return self.head(self.conv(x).mean((2, 3)))


@pytest.mark.parametrize("precision, expected", [("bfloat16", torch.bfloat16), ("float32", None)])
def test_the_chosen_type_is_what_the_training_step_runs_under_and_what_the_result_records(
    precision: str, expected: torch.dtype | None
) -> None:
    torch.manual_seed(0)
    net = _Spy()
    config = trainer.TrainConfig(epochs=1, batch_size=32, precision=precision, augment=False)
    result = trainer.train(net, _tiny_data(), config)
    assert net.seen and set(net.seen) == {expected}
    assert result.precision == ("float32" if expected is None else "bfloat16")
    assert result.to_json()["precision"] == result.precision
    assert np.isfinite(result.best_val_acc)
    torch.manual_seed(0)
    again = trainer.train(_Spy(), _tiny_data(), config)  # deterministic under its seed in either type
    assert [h.train_loss for h in again.history] == [h.train_loss for h in result.history]


def test_the_precision_flag_reaches_the_trainer_and_the_saved_record(tmp_path: Path, capsys) -> None:
    import json

    argv = ["train", "--model", "baseline", "--subset", "64", "--epochs", "1", "--precision", "bfloat16",
            "--save", str(tmp_path), "--json"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((tmp_path / "record.json").read_text())["precision"] == "bfloat16"


def test_a_run_recorded_with_the_old_amp_switch_reads_as_a_precision() -> None:
    from archsearch import options

    assert options.migrate({"amp": True}, "training") == {"precision": "auto"}
    assert options.migrate({"amp": False}, "training") == {"precision": "float32"}

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from archsearch.checkpoints import RECORD, WEIGHTS, build_from_spec, load_into
from archsearch.cli import main
from archsearch.data import from_tensors, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.nn.baseline import BaselineCNN, build_model
from archsearch.spaces import get_space, published
from archsearch.trainer import TrainConfig, eval_batch_size, lr_factor, train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _small(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(32, 10),
        )


def test_same_seed_same_result_different_seed_differs(digits) -> None:
    cfg = TrainConfig(epochs=2, batch_size=64, augment=True, seed=0, evaluate_test=True)
    a, b = train(_small(), digits, cfg), train(_small(), digits, cfg)
    assert [vars(h) | {"seconds": 0} for h in a.history] == [vars(h) | {"seconds": 0} for h in b.history]
    assert a.test_acc == b.test_acc
    c = train(_small(), digits, TrainConfig(epochs=2, batch_size=64, augment=True, seed=1))
    assert [h.train_loss for h in c.history] != [h.train_loss for h in a.history]


def test_training_learns_and_reports(digits) -> None:
    result = train(_small(), digits, TrainConfig(epochs=4, batch_size=32, lr=0.1, evaluate_test=True))
    assert result.status == "completed" and result.epochs == 4 and len(result.history) == 4
    assert result.best_val_acc > 60 and result.test_acc is not None and result.test_acc > 50
    assert result.params == sum(p.numel() for p in _small().parameters())
    assert {"val_acc", "test_acc", "params", "epochs", "seconds", "history"} <= set(result.to_json())


def test_evaluation_batches_are_128_on_a_cpu_unless_given(digits, monkeypatch) -> None:
    from archsearch.data import Data

    seen: list[tuple[str, int]] = []
    loader = Data.loader

    def spy(self, split, batch_size, *args, **kwargs):
        seen.append((split, batch_size))
        return loader(self, split, batch_size, *args, **kwargs)

    monkeypatch.setattr(Data, "loader", spy)
    train(_small(), digits, TrainConfig(epochs=1, batch_size=64, evaluate_test=True))
    assert ("val", 128) in seen and ("test", 128) in seen and ("train", 64) in seen
    seen.clear()
    train(_small(), digits, TrainConfig(epochs=1, batch_size=64, eval_batch_size=300))
    assert ("val", 300) in seen and all(b != 128 for _, b in seen)
    assert eval_batch_size("cpu") == 128 and eval_batch_size("cuda:1") == 512
    with pytest.raises(ArchsearchError, match="eval_batch_size"):
        TrainConfig(eval_batch_size=0)


def test_early_stopping_stops(digits) -> None:
    cfg = TrainConfig(epochs=20, batch_size=64, lr=1e-6, patience=2, min_delta=50.0)
    result = train(_small(), digits, cfg)
    assert result.status == "early_stopped" and result.epochs == 3 and "2 epoch" in result.message


class _Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * float("nan")


def test_nan_loss_stops_with_a_clear_status(digits) -> None:
    result = train(_Exploding(), digits, TrainConfig(epochs=3, batch_size=64, evaluate_test=True))
    assert result.status == "nan_loss" and not result.ok
    assert "loss became nan at epoch 1, step 1" in result.message and result.test_acc is None


def test_darts_network_with_auxiliary_head_and_drop_path(digits) -> None:
    model = get_space("darts").build(published("DARTS_V2"), 1, 10, 8, seed=0, channels=4, cells=3, auxiliary=True)
    seen = []
    result = train(
        model,
        digits,
        TrainConfig(epochs=2, batch_size=64, drop_path=0.2),
        on_epoch=lambda r: seen.append(model.drop_path_prob),
    )
    assert result.ok and seen == [0.0, 0.1]


def test_adamw_warmup_and_schedule(digits) -> None:
    assert lr_factor(0, 100, 10) == pytest.approx(0.1) and lr_factor(9, 100, 10) == 1.0
    assert lr_factor(100, 100, 10) == pytest.approx(0.0) and 0.4 < lr_factor(55, 100, 10) < 0.6
    result = train(_small(), digits, TrainConfig(epochs=1, optimizer="adamw", lr=1e-3, lr_warmup_epochs=0.5))
    assert result.ok
    with pytest.raises(ArchsearchError, match="optimizer must be one of sgd, adamw"):
        TrainConfig(optimizer="rmsprop")


def test_weight_decay_skips_norms_and_biases() -> None:
    from archsearch.trainer import make_optimizer

    opt = make_optimizer(_small(), TrainConfig(weight_decay=0.1))
    decayed = {p.ndim for p in opt.param_groups[0]["params"]}
    assert decayed == {2, 4} and opt.param_groups[1]["weight_decay"] == 0.0
    assert all(p.ndim == 1 for p in opt.param_groups[1]["params"])


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_baseline_builds_for_any_input(shape) -> None:
    model = BaselineCNN(in_channels=shape[0], num_classes=7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)
    widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 64, 128, 128, 256, 256]


def load_trained(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    """What `archsearch train --save` wrote, rebuilt from its spec with the weights loaded (``weights_only``)."""
    record = json.loads((folder / RECORD).read_text())
    model = load_into(build_from_spec(record["spec"]), folder / WEIGHTS)
    return model.eval(), record


def test_train_cli_json_save_and_reload_with_weights_only(tmp_path, capsys) -> None:
    argv = ["train", "--model", "baseline", "--dataset", "digits", "--epochs", "1", "--json", "--save", str(tmp_path)]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert {"val_acc", "test_acc", "params", "epochs", "seconds"} <= set(record)
    model, saved = load_trained(tmp_path)
    assert saved["test_acc"] == record["test_acc"]
    data = load_dataset("digits")
    x = next(iter(data.loader("test", 32)))[0]
    reference = build_model("baseline", 1, 10)
    reference.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    reference.eval()
    assert torch.equal(model(x), reference(x))


def test_train_cli_genotype_and_errors(tmp_path, capsys) -> None:
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    argv = ["train", arch, "--channels", "4", "--cells-per-stage", "1", "--epochs", "1", "--save", str(tmp_path)]
    assert main(argv) == 0
    assert "test" in capsys.readouterr().out
    _, record = load_trained(tmp_path)
    assert record["spec"]["genotype"]["arch"] == arch
    assert record["spec"]["build"] == {"channels": 4, "cells_per_stage": 1}
    assert main(["train", arch, "--model", "baseline"]) == 2
    assert main(["train", "--model", "baseline", "--channels", "8"]) == 2
    assert "apply to architectures" in capsys.readouterr().err


def test_user_data_trains(capsys) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 3, 10, 10, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0.5).long()
    result = train(_small_rgb(), from_tensors(x, y), TrainConfig(epochs=1, batch_size=16))
    assert result.ok


def _small_rgb() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))

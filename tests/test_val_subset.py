"""``--val-subset N``: validation on a seeded subset of the validation split, for `train` and for every trial of a
search that trains; kept on resume, refused where nothing is validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archsearch.cli import main
from archsearch.data import Data, load_dataset
from archsearch.evaluators import make_evaluator
from archsearch.rundir import describe


def test_a_val_subset_is_a_seeded_subset_of_the_validation_split_alone() -> None:
    data = load_dataset("digits")
    a, b, other = (data.with_val_subset(50, seed=s) for s in (1, 1, 2))
    assert len(a.val) == 50 and torch.equal(a.val.x, b.val.x) and not torch.equal(a.val.x, other.val.x)
    assert torch.equal(a.train.x, data.train.x) and torch.equal(a.test.x, data.test.x)
    assert data.with_val_subset(10**6).val is data.val


@pytest.fixture
def val_subsets(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes every ``Data.with_val_subset`` call of the test asked for."""
    seen: list[int] = []
    original = Data.with_val_subset

    def spy(self: Data, n: int, seed: int = 0) -> Data:
        seen.append(n)
        return original(self, n, seed)

    monkeypatch.setattr(Data, "with_val_subset", spy)
    return seen


def test_the_train_command_validates_on_the_subset(val_subsets: list[int]) -> None:
    argv = ["train", "--model", "baseline", "--dataset", "digits", "--epochs", "1", "--subset", "100", "--json"]
    assert main([*argv, "--val-subset", "30"]) == 0
    assert val_subsets == [30]


def test_a_search_validates_every_trial_on_the_subset_and_resumes_with_it(
    tmp_path: Path, val_subsets: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "run")
    argv = ["search", "--space", "nb201", "--dataset", "digits", "--epochs", "1", "--subset", "100", "--channels",
            "8", "--cells-per-stage", "1", "--out", out, "--json"]  # fmt: skip
    assert main([*argv, "--trials", "1", "--val-subset", "40"]) == 0
    options = describe(Path(out))[1]["config"]["evaluator_options"]
    assert options["val_subset"] == 40 and val_subsets == [40]
    assert len(make_evaluator("train", "nb201", options).data.val) == 40
    assert main(["search", "--resume", "--out", out, "--trials", "2", "--json"]) == 0
    assert val_subsets[-1] == 40  # the resumed search's evaluator, from the run's settings
    capsys.readouterr()
    assert main(["search", "--resume", "--out", out, "--trials", "3", "--val-subset", "50", "--json"]) == 2
    assert "--val-subset" in capsys.readouterr().err


def test_a_search_that_validates_nothing_refuses_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["search", "--evaluator", "zero_cost", "--trials", "1", "--val-subset", "10", "--out", str(tmp_path / "z")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--val-subset" in err and "zero_cost" in err

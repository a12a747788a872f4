"""``dataset=`` with a user's own data: a torch Dataset (with or without a test Dataset) and tensors, end to end
through ``search`` (and its resume) and ``retrain``; and clear errors for data that cannot be used."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

import archsearch
from archsearch.data import DataError, as_data, load_dataset
from archsearch.errors import ArchsearchError

BUILD = {"channels": 4, "cells_per_stage": 1}


def _images(n: int = 240, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes of 8x8 images that a small network can tell apart (bright top, bright bottom, dark)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    x[y == 0, :, :4] += 0.7
    x[y == 1, :, 4:] += 0.7
    return x, y


class ImageList(torch.utils.data.Dataset):
    """A map-style Dataset of (image, int label), as a user writes one."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


def test_tensors_and_datasets_split_as_the_built_in_datasets_do() -> None:
    x, y = _images()
    a, b = as_data((x, y)), as_data(ImageList(x, y))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert (len(a.train), len(a.val), len(a.test)) == (173, 19, 48) and a.num_classes == 3
    assert torch.equal(as_data((x, y)).val.x, a.val.x)  # seeded: the same split every time
    x_te, y_te = _images(60, seed=1)
    c = as_data((ImageList(x, y), ImageList(x_te, y_te)))
    assert len(c.test) == 60 and len(c.train) + len(c.val) == 240
    assert as_data("digits").name == load_dataset("digits").name


def test_search_and_retrain_on_a_dataset_end_to_end(tmp_path: Path) -> None:
    x, y = _images()
    data = ImageList(x, y)
    result = archsearch.search(space="nb201", strategy="random", dataset=data, budget=2, out=tmp_path / "run",
                               evaluator_options={"epochs": 2, "build": BUILD}, seed=1)  # fmt: skip
    assert result.trials == 2 and result.winner is not None
    assert result.config["in_memory_data"]["train"] == 173 and result.config["in_memory_data"]["classes"] == 3
    more = archsearch.search(dataset=data, budget=3, out=tmp_path / "run", resume=True)
    assert more.trials == 3
    with pytest.raises(ArchsearchError, match="pass the same dataset= again"):
        archsearch.search(budget=4, out=tmp_path / "run", resume=True)
    with pytest.raises(ArchsearchError, match="differs from the one this run searched"):
        archsearch.search(dataset=ImageList(*_images(120)), budget=4, out=tmp_path / "run", resume=True)
    with pytest.raises(ArchsearchError, match="give dataset= to retrain on"):
        archsearch.retrain(more)
    retrained = archsearch.retrain(more, dataset=data, epochs=1, batch_size=32)
    winner = retrained.models["winner"]
    assert winner.arch == str(more.winner.genotype) and winner.train_examples == 173
    assert winner.result.test_acc is not None and retrained.models["baseline"].result.epochs == 1


def test_search_and_retrain_on_tensors_end_to_end(tmp_path: Path) -> None:
    x, y = _images()
    x_te, y_te = _images(60, seed=2)
    tensors = (x, y, x_te, y_te)
    result = archsearch.search(space="chain", strategy="evolution", dataset=tensors, budget=2, out=tmp_path,
                               evaluator_options={"epochs": 1, "build": {"width": 0.25}})  # fmt: skip
    assert result.trials == 2 and result.winner is not None
    retrained = archsearch.retrain(result.winner.genotype, dataset=tensors, build={"width": 0.25}, epochs=1)
    assert retrained.dataset == "tensors" and len(retrained.models) == 2
    record = archsearch.train(str(result.winner.genotype), dataset=tensors, build={"width": 0.25}, epochs=1)
    assert record.dataset == "tensors" and record.test_acc is not None


def test_in_memory_data_runs_its_trials_in_this_process(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ArchsearchError, match="use one worker"):
        archsearch.search(dataset=_images(), budget=2, workers=2, out=tmp_path / "given")
    assert not (tmp_path / "given").exists()
    # without out, the search's own temporary folder goes again with the refusal
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ArchsearchError, match="use one worker"):
        archsearch.search(dataset=_images(), budget=2, workers=2)
    assert list(tmp_path.iterdir()) == []


class Weird(torch.utils.data.Dataset):
    def __init__(self, item: Any, n: int = 3) -> None:
        self.item, self.n = item, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.item(i)


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ((torch.rand(10, 1, 8, 8), torch.arange(9)), "10 images but 9 labels"),
        ((torch.rand(10, 1, 8, 8), torch.arange(10) + 0.5), "must be integer class labels"),
        ((torch.rand(10, 1, 8, 8), torch.zeros(10)), "single class"),
        ((torch.rand(0, 1, 8, 8), torch.zeros(0)), "train set is empty"),
        ((torch.rand(10, 8), torch.arange(10) % 2), r"must be images N x C x H x W"),
        ((torch.rand(10, 1, 8, 8), torch.arange(10) % 2 - 1), "class labels must be 0, 1, ..."),
        (
            (torch.rand(10, 1, 8, 8), torch.arange(10) % 2, torch.rand(4, 1, 8, 8), torch.arange(4) + 2),
            "class 5, which no training example has",
        ),
        (
            (torch.rand(10, 1, 8, 8), torch.arange(10) % 2, torch.rand(4, 1, 6, 6), torch.arange(4) % 2),
            r"test images are \(1, 6, 6\)",
        ),
        ((torch.full((10, 1, 8, 8), float("nan")), torch.arange(10) % 2), "NaN or infinite"),
        (Weird(lambda i: ("an image", 1)), r"dataset\[0\]: the image must be a tensor"),
        (Weird(lambda i: (torch.zeros(1, 8, 8 + i), i % 2)), r"dataset\[1\]: image shape \(1, 8, 9\) differs"),
        (Weird(lambda i: (torch.zeros(1, 8, 8), "cat")), r"dataset\[0\]: the label must be an integer class"),
        (Weird(lambda i: torch.zeros(1, 8, 8)), r"dataset\[0\] must be an \(image, label\) pair"),
        (Weird(lambda i: (torch.zeros(1, 8, 8), 0), n=0), "dataset is empty"),
        (3.5, "dataset= got float; it accepts a dataset name"),
        ([torch.rand(2)], "a sequence of 1 items"),
        ("no-such-data", "unknown dataset 'no-such-data'"),
    ],
)
def test_data_that_cannot_be_used_is_refused_with_what_is_wrong(dataset: Any, message: str) -> None:
    with pytest.raises((DataError, ArchsearchError), match=message):
        as_data(dataset)


def test_a_bad_dataset_given_to_search_is_refused_before_the_run_directory_is_written(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="single class"):
        archsearch.search(dataset=(torch.rand(10, 1, 8, 8), torch.zeros(10)), budget=2, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()

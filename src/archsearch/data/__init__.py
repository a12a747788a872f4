"""Datasets in memory as tensors, with fixed, seeded train / validation / test splits.

``load_dataset(name)`` reads ``digits`` (scikit-learn's, embedded), ``mnist``, ``fashion-mnist``, ``cifar10``,
``cifar100`` or a folder of images per class; ``from_tensors`` and ``from_torch_dataset`` take a user's data. Search
uses ``train`` and ``val``; ``test`` is only for the final report. Normalisation statistics come from ``train``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.data.folders import find_image_splits, read_folder_splits
from archsearch.data.loader import Augment, BatchLoader, Split, to_float
from archsearch.data.readers import (
    CIFAR,
    DataError,
    cifar_batches,
    cifar_classes,
    read_cifar,
    read_digits,
    read_idx_dataset,
)
from archsearch.registry import Registry

DATASETS: Registry[dict[str, Any]] = Registry("dataset")
DATASETS.add("digits", {"flip": False, "crop": 1, "description": "scikit-learn's 8x8 digits (embedded, 1,797 images)"})
DATASETS.add("mnist", {"flip": False, "crop": 2, "description": "MNIST, 28x28 grey, 60,000 + 10,000"})
DATASETS.add("fashion-mnist", {"flip": True, "crop": 2, "description": "Fashion-MNIST, 28x28 grey, 60,000 + 10,000"})
DATASETS.add("cifar10", {"flip": True, "crop": 4, "description": "CIFAR-10, 32x32 RGB, 50,000 + 10,000"})
DATASETS.add("cifar100", {"flip": True, "crop": 4, "description": "CIFAR-100, 32x32 RGB, 50,000 + 10,000"})


@dataclass
class Data:
    """A dataset's three splits and what a network needs to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    mean: torch.Tensor
    std: torch.Tensor
    classes: list[str] = field(default_factory=list)
    flip: bool = False  # whether a horizontal flip keeps the label (not for digits)
    crop_padding: int = 0  # the padding of the usual random-crop augmentation at this image size

    @property
    def in_channels(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.train.x.shape[2])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    def default_augment(self, cutout: int = 0) -> Augment:
        """The usual augmentation for this dataset: random crop, flip where it keeps the label, optional cutout."""
        return Augment(crop_padding=self.crop_padding, flip=self.flip, cutout=cutout)

    def loader(
        self,
        split: str,
        batch_size: int,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        seed: int = 0,
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> BatchLoader:
        """A :class:`BatchLoader` over ``split`` ('train', 'val' or 'test'), normalised with this data's stats."""
        if split not in ("train", "val", "test"):
            raise DataError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return BatchLoader(
            getattr(self, split), batch_size, self.mean, self.std, device, shuffle, seed, augment, drop_last
        )

    def with_train_subset(self, n: int, seed: int = 0) -> Data:
        """The same data with a seeded random subset of ``n`` training examples (a proxy for cheap evaluation)."""
        return self._with(self.train.subset(n, seed), self.val)

    def with_val_subset(self, n: int, seed: int = 0) -> Data:
        """The same data with a seeded random subset of ``n`` validation examples (the test split stays whole): a
        cheap search on a training subset otherwise spends much of each trial validating on the whole split."""
        return self._with(self.train, self.val.subset(n, seed))

    def _with(self, train: Split, val: Split) -> Data:
        return Data(
            self.name,
            train,
            val,
            self.test,
            self.num_classes,
            self.mean,
            self.std,
            self.classes,
            self.flip,
            self.crop_padding,
        )


def data_root(data_dir: str | Path | None = None) -> Path:
    """Where dataset files live: ``data_dir``, else ``$ARCHSEARCH_DATA``, else ``~/.cache/archsearch``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("ARCHSEARCH_DATA"):
        return Path(os.environ["ARCHSEARCH_DATA"]).expanduser()
    return Path.home() / ".cache" / "archsearch"


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of images in [0, 1] (uint8 from a histogram of its 256 values: exact
    and ~10x faster than summing floats)."""
    if x.dtype == torch.uint8:
        values = torch.arange(256, dtype=torch.float64) / 255.0
        counts = [torch.bincount(x[:, c].reshape(-1), minlength=256).double() for c in range(x.shape[1])]
        mean = torch.stack([(n * values).sum() / n.sum() for n in counts])
        sq = torch.stack([(n * values.square()).sum() / n.sum() for n in counts])
        return mean.float(), (sq - mean.square()).clamp_min(1e-12).sqrt().float()
    mean = torch.zeros(x.shape[1], dtype=torch.float64)
    sq = torch.zeros(x.shape[1], dtype=torch.float64)
    for chunk in torch.split(x, 4096):
        f = to_float(chunk).double()
        mean += f.sum(dim=(0, 2, 3))
        sq += f.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean /= count
    std = (sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def _split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < fraction < 1.0:
        raise DataError(f"a split fraction must be between 0 and 1, got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, round(n * fraction))
    return perm[k:], perm[:k]


def from_tensors(
    x: Any,
    y: Any,
    x_test: Any = None,
    y_test: Any = None,
    x_val: Any = None,
    y_val: Any = None,
    name: str = "tensors",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    num_classes: int | None = None,
    flip: bool = False,
    classes: list[str] | None = None,
) -> Data:
    """Data from arrays or tensors (N x C x H x W images, N labels); without a test set (or a validation set) one is
    held out of the training examples."""
    xt, yt = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y)).long()
    if xt.ndim == 3:
        xt = xt[:, None]
    if xt.ndim != 4 or yt.ndim != 1 or len(xt) != len(yt):
        raise DataError(f"{name}: expected images N x C x H x W and N labels, got {tuple(xt.shape)}, {tuple(yt.shape)}")
    if x_test is None:
        rest, test_idx = _split_indices(len(yt), test_fraction, split_seed + 1)
        x_te, y_te = xt[test_idx], yt[test_idx]
        xt, yt = xt[rest], yt[rest]
    else:
        x_te, y_te = _given_split(x_test, y_test, xt, f"{name}: test")
    if x_val is None:
        train_idx, val_idx = _split_indices(len(yt), val_fraction, split_seed)
        x_va, y_va = xt[torch.as_tensor(val_idx)], yt[torch.as_tensor(val_idx)]
    else:
        x_va, y_va = _given_split(x_val, y_val, xt, f"{name}: validation")
        train_idx = np.arange(len(yt))
    if min(len(train_idx), len(y_va), len(y_te)) == 0:  # an empty split reads as 0% accuracy, never an error
        raise DataError(f"{name}: the examples split into "
                        f"{len(train_idx)} to train on and {len(y_va)} to validate on, with {len(y_te)} to test; "
                        "every split needs at least one example: give more data")  # fmt: skip
    n_classes = num_classes if num_classes is not None else int(max(yt.max(), y_te.max(), y_va.max())) + 1
    if int(min(yt.min(), y_te.min(), y_va.min())) < 0 or int(max(yt.max(), y_te.max(), y_va.max())) >= n_classes:
        raise DataError(f"{name}: labels must lie in 0..{n_classes - 1}")
    kept = torch.as_tensor(train_idx)
    train = Split(xt, yt) if x_val is not None else Split(xt[kept], yt[kept])
    mean, std = _stats(train.x)
    crop = max(1, round(xt.shape[2] / 8))
    return Data(
        name,
        train,
        Split(x_va, y_va),
        Split(x_te, y_te),
        n_classes,
        mean,
        std,
        classes or [str(c) for c in range(n_classes)],
        flip,
        crop,
    )


def _given_split(x: Any, y: Any, x_train: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y)).long()
    if xs.ndim == 3:
        xs = xs[:, None]
    if xs.shape[1:] != x_train.shape[1:] or ys.ndim != 1 or len(xs) != len(ys):
        raise DataError(f"{what} images {tuple(xs.shape)} and labels {tuple(ys.shape)} do not match the training "
                        f"images N x {' x '.join(map(str, x_train.shape[1:]))}")  # fmt: skip
    return xs, ys


def from_torch_dataset(
    train: torch.utils.data.Dataset, test: torch.utils.data.Dataset | None = None, **kwargs: Any
) -> Data:
    """Data from ``torch.utils.data.Dataset`` objects yielding ``(image tensor C x H x W, label)``; read once."""

    def stack(ds: torch.utils.data.Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        items = [ds[i] for i in range(len(ds))]  # type: ignore[arg-type]
        return torch.stack([torch.as_tensor(a) for a, _ in items]), torch.tensor([int(b) for _, b in items])

    x, y = stack(train)
    if test is None:
        return from_tensors(x, y, **kwargs)
    x_te, y_te = stack(test)
    return from_tensors(x, y, x_te, y_te, **kwargs)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    download: bool = True,
    verify: bool = True,
    image_size: int | None = None,
) -> Data:
    """Load a named dataset (or a folder of images per class, given as a path) into memory with its splits."""
    if name not in DATASETS:
        folder = Path(name).expanduser()
        if folder.is_dir():
            return _folder_data(folder, folder.name, image_size, val_fraction, split_seed)
        DATASETS.get(name)  # raises with the list of dataset names
    if image_size is not None:
        raise DataError(f"image_size resizes the images of a folder; {name} is a named dataset of fixed size")
    info = DATASETS.get(name)
    if name == "digits":
        x, y = read_digits()
        data = from_tensors(x, y, name=name, val_fraction=val_fraction, split_seed=split_seed)
    else:
        root = data_root(data_dir)
        classes = None
        idx = name in ("mnist", "fashion-mnist")
        jpeg = None if idx or cifar_batches(name, root) is not None else find_image_splits(name, root)
        if jpeg is not None:  # no official batches, but the images as train/ and test/ folders
            data = _folder_data(jpeg, name, None, val_fraction, split_seed)
            _check_cifar_folder(data, name)
            data.flip, data.crop_padding = info["flip"], info["crop"]
            return data
        if idx:
            arrays = read_idx_dataset(name, root, download=download, verify=verify)
        else:
            arrays = read_cifar(name, root, download=download, verify=verify)
            classes = cifar_classes(name, root)
        data = from_tensors(
            *arrays,
            name=name,
            val_fraction=val_fraction,
            split_seed=split_seed,
            num_classes=100 if name == "cifar100" else 10,
            classes=classes,
        )
    data.flip, data.crop_padding = info["flip"], info["crop"]
    return data


def _folder_data(folder: Path, name: str, image_size: int | None, val_fraction: float, split_seed: int) -> Data:
    """A folder of class folders, or of split folders (``train/`` with ``test/`` and/or ``val/``): its own splits
    kept, the missing ones held out of ``train/``."""
    splits = read_folder_splits(folder, image_size)
    val, test = splits.val or (None, None), splits.test or (None, None)
    return from_tensors(*splits.train, *test, *val, name=name, val_fraction=val_fraction, split_seed=split_seed,
                        classes=splits.classes, num_classes=len(splits.classes))  # fmt: skip


def _check_cifar_folder(data: Data, name: str) -> None:
    classes = CIFAR[name]["classes"]
    if data.input_shape != (3, 32, 32) or data.num_classes != classes:
        raise DataError(f"{name}: the image folder found holds {data.num_classes} classes of "
                        f"{'x'.join(map(str, data.input_shape))} images; {name} has {classes} of 3x32x32")  # fmt: skip


from archsearch.data.user import ACCEPTED, as_data, is_named  # noqa: E402 - it builds on the functions above

__all__ = [
    "ACCEPTED",
    "DATASETS",
    "Augment",
    "BatchLoader",
    "Data",
    "DataError",
    "Split",
    "as_data",
    "data_root",
    "from_tensors",
    "from_torch_dataset",
    "is_named",
    "load_dataset",
]

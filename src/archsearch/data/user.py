"""A user's data in whatever form they hold it: :func:`as_data` turns a dataset name, a folder of images per class,
a ``torch.utils.data.Dataset`` (with an optional test Dataset), or tensors ``(x_train, y_train[, x_test, y_test])``
into :class:`~archsearch.data.Data` with the same seeded splits as the built-in datasets, after checking it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.data.readers import DataError

MAX_CLASSES = 1_000_000  # a classifier's last layer has one output per class
#: what ``dataset=`` accepts, for error messages
ACCEPTED = (
    "a dataset name (digits, mnist, fashion-mnist, cifar10, cifar100), a folder of images per class, Data, a "
    "torch.utils.data.Dataset, a (train Dataset, test Dataset) pair, or tensors (x_train, y_train[, x_test, y_test])"
)


def is_named(dataset: Any) -> bool:
    """Whether ``dataset`` is given by name or path (recordable in a run directory), not held in memory."""
    return isinstance(dataset, (str, Path))


def as_data(
    dataset: Any,
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    name: str | None = None,
) -> Any:
    """``dataset`` as :class:`~archsearch.data.Data` (see :data:`ACCEPTED`); validation and (without a test set)
    test examples are held out with ``split_seed`` exactly as for the built-in datasets."""
    from archsearch.data import Data, from_tensors, load_dataset

    if isinstance(dataset, Data):
        return dataset
    if is_named(dataset):
        return load_dataset(str(dataset), data_dir, val_fraction=val_fraction, split_seed=split_seed,
                            image_size=image_size)  # fmt: skip
    if isinstance(dataset, torch.utils.data.Dataset):
        x, y = _read_dataset(dataset, "dataset")
        return from_tensors(x, y, name=name or type(dataset).__name__, val_fraction=val_fraction,
                            split_seed=split_seed, num_classes=_num_classes(y))  # fmt: skip
    if isinstance(dataset, (tuple, list)):
        parts = list(dataset)
        if len(parts) == 2 and all(isinstance(p, torch.utils.data.Dataset) for p in parts):
            x, y = _read_dataset(parts[0], "training dataset")
            x_te, y_te = _read_dataset(parts[1], "test dataset")
        elif len(parts) in (2, 4) and not any(isinstance(p, torch.utils.data.Dataset) for p in parts):
            x, y = _tensor(parts[0], "x_train", images=True), _labels(parts[1], "y_train")
            x_te, y_te = (None, None) if len(parts) == 2 else (_tensor(parts[2], "x_test", images=True),
                                                               _labels(parts[3], "y_test"))  # fmt: skip
        else:
            raise DataError(f"dataset= got a sequence of {len(parts)} items; it accepts {ACCEPTED}")
        _check_pair(x, y, "train")
        if x_te is not None and y_te is not None:
            _check_pair(x_te, y_te, "test")
            if x_te.shape[1:] != x.shape[1:]:
                raise DataError(f"test images are {tuple(x_te.shape[1:])}, training images {tuple(x.shape[1:])}")
        if y_te is not None and len(y_te) and int(y_te.max()) > int(y.max()):
            raise DataError(f"the test labels include class {int(y_te.max())}, which no training example has")
        classes = _num_classes(y if y_te is None else torch.cat([y, y_te]))
        return from_tensors(x, y, x_te, y_te, name=name or "tensors", val_fraction=val_fraction,
                            split_seed=split_seed, num_classes=classes)  # fmt: skip
    raise DataError(f"dataset= got {type(dataset).__name__}; it accepts {ACCEPTED}")


def _tensor(value: Any, what: str, images: bool = False) -> torch.Tensor:
    """``value`` as a tensor; with ``images``: N x C x H x W, real and finite (the one check of every image array,
    however the data arrived)."""
    try:
        t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{what} is not an array or tensor ({type(value).__name__}: {exc})") from None
    if t.is_complex():
        raise DataError(f"{what} holds complex numbers ({t.dtype}); images and labels are real")
    if images:
        if t.ndim == 3:
            t = t[:, None]
        if t.ndim != 4:
            raise DataError(f"{what} must be images N x C x H x W (or N x H x W), got shape {tuple(t.shape)}")
        if t.dtype != torch.uint8:
            t = t.float()
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise DataError(f"{what} holds NaN or infinite values")
    return t


def _labels(value: Any, what: str) -> torch.Tensor:
    t = _tensor(value, what)
    if t.ndim != 1:
        raise DataError(f"{what} must be one integer class label per example (shape N), got {tuple(t.shape)}")
    if t.is_floating_point():
        if not torch.isfinite(t).all() or not torch.equal(t, t.round()):
            raise DataError(
                f"{what} must be integer class labels, got non-integer values such as {t[t != t.round()][:3].tolist()}"
            )
        t = t.long()
    if t.dtype == torch.bool or t.is_complex():
        raise DataError(f"{what} must be integer class labels, got {t.dtype}")
    if len(t) and int(t.min()) < 0:
        raise DataError(f"{what}: class labels must be 0, 1, ..., got {int(t.min())}")
    if len(t) and int(t.max()) >= MAX_CLASSES:
        raise DataError(f"{what}: class label {int(t.max())} implies over {MAX_CLASSES:,} classes (labels are "
                        "0, 1, ..., classes - 1)")  # fmt: skip
    return t.long()


def _check_pair(x: torch.Tensor, y: torch.Tensor, split: str) -> None:
    if len(x) == 0:
        raise DataError(f"the {split} set is empty")
    if len(x) != len(y):
        raise DataError(f"the {split} set has {len(x)} images but {len(y)} labels")


def _num_classes(y: torch.Tensor) -> int:
    classes = int(y.max()) + 1 if len(y) else 0
    if len(torch.unique(y)) < 2:
        raise DataError(
            f"the labels hold a single class ({int(y[0]) if len(y) else '-'}): classification needs two or more"
        )
    return classes


def _read_dataset(ds: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(image, label)`` of a map-style Dataset, checked item by item."""
    try:
        n = len(ds)
    except TypeError:
        raise DataError(f"{what} has no len(): archsearch reads map-style Datasets (__len__ and __getitem__)") from None
    if not isinstance(n, int) or n <= 0:
        raise DataError(f"{what} is empty" if n == 0 else f"{what}: len() returned {n!r}")
    images, labels = [], []
    shape = None
    for i in range(n):
        try:
            item = ds[i]
        except Exception as exc:  # the user's own code: say whose and where
            raise DataError(f"{what} ({type(ds).__name__}) raised reading item {i}: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from exc  # fmt: skip
        if not isinstance(item, Sequence) or len(item) != 2:
            raise DataError(f"{what}[{i}] must be an (image, label) pair, got {type(item).__name__}")
        image, label = item
        if not isinstance(image, (torch.Tensor, np.ndarray)):
            raise DataError(f"{what}[{i}]: the image must be a tensor or array, got {type(image).__name__}")
        t = torch.as_tensor(image)
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3:
            raise DataError(f"{what}[{i}]: an image must be C x H x W (or H x W), got shape {tuple(t.shape)}")
        if shape is None:
            shape = tuple(t.shape)
            _fits_in_memory(n, t.numel(), what)
        elif tuple(t.shape) != shape:
            raise DataError(f"{what}[{i}]: image shape {tuple(t.shape)} differs from the first one's {shape}")
        if isinstance(label, torch.Tensor):
            if label.numel() != 1:
                raise DataError(
                    f"{what}[{i}]: the label must be one integer, got a tensor of shape {tuple(label.shape)}"
                )
            label = label.item()
        try:
            integral = not isinstance(label, (bool, np.bool_)) and float(label).is_integer()
        except (TypeError, ValueError):
            integral = False
        if not integral:
            raise DataError(f"{what}[{i}]: the label must be an integer class, got {label!r}"[:200])
        images.append(t)
        labels.append(int(label))
    return _tensor(torch.stack(images), f"{what}'s images", images=True), _labels(torch.tensor(labels),
                                                                                    f"{what}'s labels")


def _fits_in_memory(n: int, pixels: int, what: str) -> None:
    """Refuse a dataset whose images (read into memory as float32) would not fit in this machine's memory."""
    need = n * pixels * 4
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no figure to compare with
        return
    if need > have:
        raise DataError(f"{what}: {n:,} images of {pixels:,} values need about {need / 2**30:,.1f} GiB in memory; "
                        f"this machine has {have / 2**30:,.1f} GiB")  # fmt: skip

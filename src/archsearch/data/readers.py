"""Readers for the official dataset files: MNIST-style idx ``.gz``, CIFAR python pickles, digits (image folders:
:mod:`archsearch.data.folders`).

Each returns NumPy arrays ``(x_train, y_train, x_test, y_test)`` with images as N x C x H x W. Missing files are
downloaded from the official source when the network is reachable and checked against the published md5; otherwise
the error says which files to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import tarfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from archsearch.errors import ArchsearchError


class DataError(ArchsearchError):
    """A dataset file is missing, corrupt or does not match its published checksum."""


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
IDX_MD5 = {
    "mnist": (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
    "fashion-mnist": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
}
IDX_URLS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "tar_md5": "c58f30108f718f92721af3b95e74349a",
        "train": [
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ],
        "test": [("test_batch", "40351d587109b95175f43aff81a1287e")],
        "meta": ("batches.meta", "label_names"),
        "labels": "labels",
        "classes": 10,
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "tar_md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "train": [("train", "16019d7e3df5f24257cddd939b257f8d")],
        "test": [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")],
        "meta": ("meta", "fine_label_names"),
        "labels": "fine_labels",
        "classes": 100,
    },
}


def md5(path: Path) -> str:
    """The md5 hex digest of a file."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(path: Path, expected: str) -> None:
    """Raise :class:`DataError` if ``path``'s md5 is not ``expected``."""
    actual = md5(path)
    if actual != expected:
        raise DataError(
            f"{path}: md5 {actual} does not match the published {expected} (corrupt or not the official file)"
        )


def _download(urls: Sequence[str], dest: Path, expected_md5: str) -> None:
    """Fetch the first URL that answers into ``dest`` and check its md5; raise with every failure otherwise."""
    errors = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    for url in urls:
        tmp = dest.with_suffix(dest.suffix + ".part")
        try:
            with urllib.request.urlopen(url, timeout=30) as response, tmp.open("wb") as out:
                shutil.copyfileobj(response, out)
            check_md5(tmp, expected_md5)
            tmp.replace(dest)
            return
        except (OSError, DataError) as exc:
            errors.append(f"{url}: {exc}")
            tmp.unlink(missing_ok=True)
    raise DataError("download failed: " + "; ".join(errors))


def _find_dir(data_dir: Path, name: str, marker: str) -> Path | None:
    for candidate in (data_dir / name, data_dir):
        if (candidate / marker).exists():
            return candidate
    return None


# --- idx (MNIST, Fashion-MNIST) -----------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (gzip-compressed or not) into an array; a malformed file raises :class:`DataError`."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {len(raw) - header} bytes (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_idx_dataset(name: str, data_dir: Path, download: bool = True, verify: bool = True) -> Arrays:
    """MNIST or Fashion-MNIST from the four official idx files in ``data_dir/<name>/`` or ``data_dir/``."""
    folder = _find_dir(data_dir, name, IDX_FILES[0]) or data_dir / name
    missing = [f for f in IDX_FILES if not (folder / f).exists()]
    if missing and download:
        for f in missing:
            md5_sum = IDX_MD5[name][IDX_FILES.index(f)]
            try:
                _download([u + f for u in IDX_URLS[name]], folder / f, md5_sum)
            except DataError as exc:
                raise DataError(
                    f"{name}: {folder / f} is missing and could not be downloaded ({exc}). "
                    f"Put the official files {', '.join(IDX_FILES)} in {folder}"
                ) from None
    elif missing:
        raise DataError(
            f"{name}: missing {', '.join(missing)} in {folder}; put the official files "
            f"{', '.join(IDX_FILES)} there (or point --data-dir / ARCHSEARCH_DATA at their parent folder)"
        )
    if verify:
        for f, expected in zip(IDX_FILES, IDX_MD5[name]):
            check_md5(folder / f, expected)
    x_tr, y_tr, x_te, y_te = (read_idx(folder / f) for f in IDX_FILES)
    for x, y, split in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{name} {split}: images {x.shape} and labels {y.shape} do not match")
    return x_tr[:, None], y_tr.astype(np.int64), x_te[:, None], y_te.astype(np.int64)


# --- CIFAR python pickles --------------------------------------------------------------------------------------------
class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches only: plain containers and NumPy arrays, never arbitrary classes."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
        ("builtins", "bytes"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to load {module}.{name} from a pickle: not part of a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict[str, Any]:
    """One CIFAR pickle batch as a dict with ``str`` keys."""
    try:
        with path.open("rb") as f:
            obj = _BatchUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a CIFAR python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR python batch (expected a dict, got {type(obj).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def cifar_batches(name: str, data_dir: Path) -> Path | None:
    """The folder of the official python batches of ``name`` under ``data_dir`` (its ``cifar-10-batches-py`` or
    ``cifar10``, or itself), or None."""
    spec = CIFAR[name]
    return _find_dir(data_dir, spec["folder"], spec["test"][0][0]) or _find_dir(data_dir, name, spec["test"][0][0])


def read_cifar(name: str, data_dir: Path, download: bool = True, verify: bool = True) -> Arrays:
    """CIFAR-10 / CIFAR-100 from the official python batches in ``data_dir`` (or its ``cifar-10-batches-py``)."""
    spec = CIFAR[name]
    files = [f for f, _ in spec["train"] + spec["test"]] + [spec["meta"][0]]
    folder = cifar_batches(name, data_dir)
    if folder is None:
        folder = data_dir / spec["folder"]
        if not download:
            raise DataError(
                f"{name}: no batches found; put {', '.join(files)} in {folder} "
                f"(the contents of {spec['url'].rsplit('/', 1)[1]})"
            )
        archive = data_dir / spec["url"].rsplit("/", 1)[1]
        try:
            _download([spec["url"]], archive, spec["tar_md5"])
        except DataError as exc:
            raise DataError(
                f"{name}: batches missing and could not be downloaded ({exc}). Put {', '.join(files)} in {folder}, "
                f"or the images as folders {data_dir / (name + '-jpeg')}/train/<class>/ and .../test/<class>/"
            ) from None
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise DataError(f"{archive}: refusing to extract {member.name!r} outside {data_dir}")
            tar.extractall(data_dir)
    missing = [f for f in files if not (folder / f).exists()]
    if missing:
        raise DataError(f"{name}: missing {', '.join(missing)} in {folder}")
    if verify:
        for f, expected in spec["train"] + spec["test"]:
            check_md5(folder / f, expected)

    def load(batches: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f, _ in batches:
            batch = read_cifar_batch(folder / f)
            if "data" not in batch or spec["labels"] not in batch:
                raise DataError(f"{folder / f}: missing 'data' or '{spec['labels']}'")
            data = np.asarray(batch["data"], dtype=np.uint8)
            labels = np.asarray(batch[spec["labels"]], dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
                raise DataError(f"{folder / f}: data {data.shape} / labels {labels.shape}; expected N x 3072 and N")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)

    x_tr, y_tr = load(spec["train"])
    x_te, y_te = load(spec["test"])
    return x_tr, y_tr, x_te, y_te


def cifar_classes(name: str, data_dir: Path) -> list[str]:
    """Class names from a CIFAR meta file."""
    spec = CIFAR[name]
    folder = _find_dir(data_dir, spec["folder"], spec["meta"][0]) or data_dir
    meta = read_cifar_batch(folder / spec["meta"][0])
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec["meta"][1]]]


# --- digits ------------------------------------------------------------------------------------------------------
def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's embedded 8x8 digits as uint8 images (0..16 scaled to 0..255) and labels, read from the CSV file
    scikit-learn ships (:func:`digits_file`) without importing scikit-learn, whose import (scipy.stats with it) took
    1.3 s of every command on digits; through ``sklearn.datasets.load_digits`` where that file is not found."""
    path = digits_file()
    if path is not None:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
        images, target = table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images, target = digits.images, digits.target
    x = np.clip(images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)[:, None]
    return x, target.astype(np.int64)


def digits_file() -> Path | None:
    """The digits CSV inside the installed scikit-learn (found without running its ``__init__``), or ``None``."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None

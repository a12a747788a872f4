import gzip
import pickle
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import DATASETS, from_tensors, from_torch_dataset, load_dataset
from archsearch.data.readers import IDX_FILES, DataError, read_idx


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_mnist(folder: Path, n_train: int = 50, n_test: int = 20) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(0, 256, (n_train, 28, 28)),
        rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)),
        rng.integers(0, 10, n_test),
    ]
    for name, array in zip(IDX_FILES, arrays):
        _write_idx(folder / name, array)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_reader_on_files_in_the_official_format(tmp_path: Path, name: str) -> None:
    _write_mnist(tmp_path / name)
    data = load_dataset(name, tmp_path, verify=False)
    assert len(data.train) + len(data.val) == 50 and len(data.test) == 20
    assert data.input_shape == (1, 28, 28) and data.train.x.dtype == torch.uint8
    raw = read_idx(tmp_path / name / IDX_FILES[0])
    assert raw.shape == (50, 28, 28)
    # the same images, in a fixed seeded split
    together = torch.cat([data.train.x, data.val.x])[:, 0].numpy()
    assert sorted(map(bytes, together)) == sorted(map(bytes, raw))


def test_md5_mismatch_names_the_file(tmp_path: Path) -> None:
    _write_mnist(tmp_path / "mnist")
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz: md5 [0-9a-f]+ does not match the published f68b"
    ):
        load_dataset("mnist", tmp_path)


def test_missing_files_say_which_files_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing train-images-idx3-ubyte.gz.*put the official files"):
        load_dataset("fashion-mnist", tmp_path, download=False)
    with pytest.raises(DataError, match=r"could not be downloaded .*network disabled.*Put the official files"):
        load_dataset("fashion-mnist", tmp_path, download=True)


def test_corrupt_idx_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x09\x01" + (5).to_bytes(4, "big") + b"12345")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(bad)
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + (9).to_bytes(4, "big") + b"12345")
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(bad)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(bad)


def _write_cifar(folder: Path, name: str, n: int = 12) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    labels_key = b"labels" if name == "cifar10" else b"fine_labels"
    classes = 10 if name == "cifar10" else 100
    batches = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if name == "cifar10" else ["train", "test"]
    for batch in batches:
        obj = {
            b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
            labels_key: [int(v) for v in rng.integers(0, classes, n)],
            b"batch_label": b"x",
        }
        with (folder / batch).open("wb") as f:
            pickle.dump(obj, f, protocol=2)
    meta, key = ("batches.meta", b"label_names") if name == "cifar10" else ("meta", b"fine_label_names")
    with (folder / meta).open("wb") as f:
        pickle.dump({key: [f"class{i}".encode() for i in range(classes)]}, f, protocol=2)


@pytest.mark.parametrize(
    ("name", "folder", "n_train"), [("cifar10", "cifar-10-batches-py", 60), ("cifar100", "cifar-100-python", 12)]
)
def test_cifar_reader_on_batches_in_the_official_format(tmp_path: Path, name: str, folder: str, n_train: int) -> None:
    _write_cifar(tmp_path / folder, name)
    data = load_dataset(name, tmp_path, verify=False)
    assert data.input_shape == (3, 32, 32) and data.num_classes == (10 if name == "cifar10" else 100)
    assert len(data.train) + len(data.val) == n_train and len(data.test) == 12
    assert data.classes[:2] == ["class0", "class1"]  # names from the meta file
    # channel-major rows: the first 1024 bytes are the red plane
    first = pickle.loads((tmp_path / folder / ("test_batch" if name == "cifar10" else "test")).read_bytes())
    assert torch.equal(data.test.x[0, 0].flatten(), torch.as_tensor(first[b"data"][0][:1024]))
    with pytest.raises(DataError, match="md5"):
        load_dataset(name, tmp_path)


def test_cifar_unpickler_refuses_arbitrary_objects(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder, "cifar10")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"refusing to load builtins\.print"):
        load_dataset("cifar10", tmp_path, verify=False)


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3)).astype(np.uint8)).save(tmp_path / "pets" / c / f"{i}.png")
    data = load_dataset(str(tmp_path / "pets"))
    assert data.classes == ["cat", "dog"] and data.input_shape == (3, 12, 12) and data.num_classes == 2
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tmp_path / "pets" / "cat" / "odd.png")
    with pytest.raises(DataError, match="different sizes"):
        load_dataset(str(tmp_path / "pets"))


def test_digits_read_from_the_shipped_file_equal_scikit_learns_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from archsearch.data import readers

    assert readers.digits_file() is not None
    direct = readers.read_digits()
    assert direct[0].shape == (1797, 1, 8, 8) and direct[0].dtype == np.uint8 and set(direct[1]) == set(range(10))
    monkeypatch.setattr(readers, "digits_file", lambda: None)
    through_sklearn = readers.read_digits()
    assert "sklearn.datasets" in sys.modules
    assert np.array_equal(direct[0], through_sklearn[0]) and np.array_equal(direct[1], through_sklearn[1])


def test_digits_splits_are_fixed_disjoint_and_complete() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert torch.equal(a.val.y, b.val.y) and torch.equal(a.test.x, b.test.x)
    c = load_dataset("digits", split_seed=1)
    assert not torch.equal(a.val.x, c.val.x)
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert torch.allclose(a.mean, (a.train.x.float() / 255).mean(dim=(0, 2, 3)), atol=1e-5)


def test_user_tensors_and_torch_datasets() -> None:
    x, y = torch.rand(40, 3, 6, 6), torch.arange(40) % 4
    data = from_tensors(x, y)
    assert data.num_classes == 4 and len(data.train) + len(data.val) + len(data.test) == 40
    ds = torch.utils.data.TensorDataset(x, y)
    data2 = from_torch_dataset(ds, ds)
    assert len(data2.test) == 40 and data2.input_shape == (3, 6, 6)
    with pytest.raises(DataError, match="expected images N x C x H x W"):
        from_tensors(torch.rand(5, 6), torch.arange(5))
    with pytest.raises(Exception, match="allowed: digits, mnist"):
        load_dataset("imagenet")
    assert set(DATASETS) == {"digits", "mnist", "fashion-mnist", "cifar10", "cifar100"}


def test_shared_fashion_mnist_verifies_and_loads(data_dir: Path) -> None:
    data = load_dataset("fashion-mnist", data_dir)
    assert len(data.train) + len(data.val) == 60000 and len(data.test) == 10000
    assert data.flip and data.input_shape == (1, 28, 28)

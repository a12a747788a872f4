"""Image folders with split folders (train/ with test/ and/or val/), the cache of decoded folders, parallel decoding,
and CIFAR-10 found as a JPEG folder."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.data import DataError, folders, image_cache, load_dataset


def _folder(root: Path, counts: dict[str, int], side: int = 8, rgb: bool = False, seed: int = 0) -> Path:
    """``counts[class]`` random PNG images per class folder under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for k in range(n):
            shape = (side, side, 3) if rgb else (side, side)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / cls / f"{k:04d}.png")
    return root


def _pixels(path: Path) -> torch.Tensor:
    from PIL import Image

    return torch.as_tensor(np.array(Image.open(path)))


def test_a_train_test_layout_keeps_its_test_split_and_validates_on_train_only(tmp_path: Path) -> None:
    _folder(tmp_path / "d" / "train", {"ant": 20, "bee": 20})
    _folder(tmp_path / "d" / "test", {"ant": 3, "bee": 4}, seed=1)
    data = load_dataset(str(tmp_path / "d"), val_fraction=0.25)
    assert data.classes == ["ant", "bee"] and data.num_classes == 2
    assert len(data.test) == 7 and len(data.train) + len(data.val) == 40 and len(data.val) == 10
    assert data.test.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert torch.equal(data.test.x[3, 0], _pixels(tmp_path / "d" / "test" / "bee" / "0000.png"))
    test_images = {bytes(x.numpy()) for x in data.test.x}
    assert not test_images & {bytes(x.numpy()) for x in torch.cat([data.train.x, data.val.x])}


def test_train_val_and_train_val_test_layouts(tmp_path: Path) -> None:
    _folder(tmp_path / "a" / "train", {"x": 12, "y": 12})
    _folder(tmp_path / "a" / "val", {"x": 2, "y": 3}, seed=1)
    _folder(tmp_path / "a" / "test", {"x": 4, "y": 4}, seed=2)
    data = load_dataset(str(tmp_path / "a"))
    assert (len(data.train), len(data.val), len(data.test)) == (24, 5, 8)
    assert torch.equal(data.val.x[2, 0], _pixels(tmp_path / "a" / "val" / "y" / "0000.png"))
    _folder(tmp_path / "b" / "train", {"x": 20, "y": 20})
    _folder(tmp_path / "b" / "valid", {"x": 2, "y": 2}, seed=1)
    data = load_dataset(str(tmp_path / "b"))  # no test/: a test split is held out of train/
    assert len(data.val) == 4 and len(data.train) + len(data.test) == 40 and len(data.test) == 8


def test_splits_with_other_classes_are_refused_naming_them(tmp_path: Path) -> None:
    _folder(tmp_path / "d" / "train", {"ant": 4, "bee": 4, "cat": 4})
    _folder(tmp_path / "d" / "test", {"ant": 2, "bee": 2, "dog": 2})
    with pytest.raises(DataError, match=r"test.*classes differ.*only in test: dog; missing from test: cat"):
        load_dataset(str(tmp_path / "d"))
    _folder(tmp_path / "e" / "train", {"ant": 4, "bee": 4})
    _folder(tmp_path / "e" / "val", {"ant": 2, "bee": 2})
    _folder(tmp_path / "e" / "valid", {"ant": 2, "bee": 2})
    with pytest.raises(DataError, match=r"both val/ and valid/ hold the val split"):
        load_dataset(str(tmp_path / "e"))


def test_a_folder_named_train_among_class_folders_is_a_class(tmp_path: Path) -> None:
    _folder(tmp_path / "d", {"train": 5, "test": 5, "other": 5})
    data = load_dataset(str(tmp_path / "d"))
    assert data.classes == ["other", "test", "train"] and len(data.train) + len(data.val) + len(data.test) == 15


def test_the_cache_serves_an_unchanged_folder_and_rereads_a_changed_file(tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path / "d", {"ant": 6, "bee": 6})
    first = load_dataset(str(root))
    assert len(list(image_cache.cache_dir().glob("*.npz"))) >= 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the folder is unchanged")

    monkeypatch.setattr(folders, "_decoded", no_decoding)
    again = load_dataset(str(root))
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.y, again.test.y)
    monkeypatch.undo()

    from PIL import Image

    changed = root / "bee" / "0003.png"
    Image.fromarray(np.full((8, 8), 7, dtype=np.uint8)).save(changed)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write, on any clock granularity
    after = load_dataset(str(root))
    everything = torch.cat([after.train.x, after.val.x, after.test.x])
    assert any(bool((x == 7).all()) for x in everything), "the changed image was not read again"


def test_a_truncated_or_foreign_cache_file_is_rebuilt_not_trusted(tmp_path: Path) -> None:
    root = _folder(tmp_path / "d", {"ant": 6, "bee": 6})
    first = load_dataset(str(root))
    cached = _cache_file_of(root)
    cached.write_bytes(cached.read_bytes()[:200])
    rebuilt = load_dataset(str(root))
    assert torch.equal(first.train.x, rebuilt.train.x)
    x, y = image_cache.load(cached.stem, 12)  # rebuilt whole, under its own key
    assert x.shape == (12, 1, 8, 8) and y.tolist() == [0] * 6 + [1] * 6
    np.savez(cached, key=np.array("another key"), x=x[:, :, :4], y=y)  # whole, but not this folder's
    assert image_cache.load(cached.stem, 12) is None
    assert torch.equal(load_dataset(str(root)).train.x, first.train.x)


def _cache_file_of(root: Path) -> Path:
    _, paths = folders.class_files(root)
    return image_cache.cache_dir() / f"{image_cache.key(root, [p for p, _ in paths], None)}.npz"


def test_an_unwritable_cache_is_reported_and_the_data_still_load(tmp_path: Path, monkeypatch, capsys) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(blocked))
    root = _folder(tmp_path / "d", {"ant": 6, "bee": 6})
    assert len(load_dataset(str(root)).classes) == 2
    assert "could not cache the decoded images" in capsys.readouterr().err


def test_worker_processes_decode_what_one_process_decodes(tmp_path: Path, monkeypatch) -> None:
    root = _folder(tmp_path / "d", {"ant": 9, "bee": 8}, rgb=True)
    _, paths = folders.class_files(root)
    one, labels = folders.read_images(paths, root, workers=1)
    monkeypatch.setattr(folders, "PARALLEL_FROM", 1)
    monkeypatch.setenv("ARCHSEARCH_CACHE", str(tmp_path / "other-cache"))
    three, labels3 = folders.read_images(paths, root, workers=3)
    assert one.shape == (17, 3, 8, 8) and np.array_equal(one, three) and np.array_equal(labels, labels3)
    broken = Path(paths[11][0])
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(DataError, match=r"bee/0002\.png: cannot read image"):
        folders.read_images(paths, root, workers=3)


def _cifar_jpeg(root: Path, side: int = 32, classes: int = 10) -> Path:
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"][:classes]
    _folder(root / "cifar10-jpeg" / "train", dict.fromkeys(names, 3), side=side, rgb=True)
    _folder(root / "cifar10-jpeg" / "test", dict.fromkeys(names, 1), side=side, rgb=True, seed=1)
    return root


def test_cifar10_is_found_as_a_jpeg_folder(tmp_path: Path) -> None:
    data = load_dataset("cifar10", _cifar_jpeg(tmp_path / "ok"))
    assert data.name == "cifar10" and data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert len(data.test) == 10 and len(data.train) + len(data.val) == 30 and data.classes[0] == "airplane"
    assert data.flip and data.crop_padding == 4
    with pytest.raises(DataError, match=r"holds 9 classes of 3x32x32 images; cifar10 has 10 of 3x32x32"):
        load_dataset("cifar10", _cifar_jpeg(tmp_path / "nine", classes=9))
    with pytest.raises(DataError, match=r"holds 10 classes of 3x16x16 images"):
        load_dataset("cifar10", _cifar_jpeg(tmp_path / "small", side=16))


def test_cifar10_in_the_shared_data_loads_with_its_test_split(data_dir: Path) -> None:
    folder = data_dir / "cifar10-jpeg"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing from the shared data")
    splits = folders.split_folders(folder)
    assert splits is not None and set(splits) == {"train", "test"}
    classes, test_files = folders.class_files(splits["test"])
    assert len(classes) == 10 and len(test_files) == 10_000


def test_a_link_at_the_cache_file_is_neither_read_nor_replaced(tmp_path: Path, capsys) -> None:
    root = _folder(tmp_path / "d", {"ant": 6, "bee": 6})
    target = tmp_path / "elsewhere.npz"
    target.write_bytes(b"not archsearch's")
    link = _cache_file_of(root)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    assert len(load_dataset(str(root)).classes) == 2
    assert link.is_symlink() and target.read_bytes() == b"not archsearch's"
    assert "not a regular file" in capsys.readouterr().err

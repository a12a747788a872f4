"""Folders of images: one sub-folder per class, or split folders (``train/`` and ``test/`` or ``val/``) that each hold
one sub-folder per class, the layouts torchvision's ``ImageFolder`` and Kaggle use. Images are decoded by parallel
worker processes (:mod:`archsearch.data.decode_images`) and the decoded uint8 arrays cached
(:mod:`archsearch.data.image_cache`), so a folder of 60,000 JPEGs is decoded once.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archsearch.data import decode_images, image_cache
from archsearch.data.readers import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
#: names of split folders, by the split they hold
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
#: fewer images than this are decoded in this process (starting workers costs more than it saves)
PARALLEL_FROM = 4000


@dataclass
class FolderSplits:
    """The decoded images of a folder: its training images, and its own validation and test images where the folder
    has split folders for them (None: the loader holds them out of the training images)."""

    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray] | None
    classes: list[str]


def split_folders(root: Path) -> dict[str, Path] | None:
    """The split folders of ``root`` by split ('train', 'val', 'test') when ``root`` is a split layout (a ``train``
    folder beside ``test`` and/or ``val``, and no other folder), else None (a folder of class folders)."""
    folders = [p for p in root.iterdir() if p.is_dir()]
    named = {p.name.lower(): p for p in folders}
    if "train" not in named or len(named) < 2 or not set(named) <= set(SPLIT_NAMES):
        return None
    splits: dict[str, Path] = {}
    for name, path in sorted(named.items()):
        split = SPLIT_NAMES[name]
        if split in splits:
            raise DataError(f"{root}: both {splits[split].name}/ and {path.name}/ hold the {split} split; keep one")
        splits[split] = path
    return splits


def find_image_splits(name: str, data_dir: Path) -> Path | None:
    """A split layout of ``name``'s images under ``data_dir`` (``<name>-jpeg/``, ``<name>/`` or ``data_dir`` itself,
    holding ``train/`` beside ``test/`` or ``val/``), or None."""
    for candidate in (data_dir / f"{name}-jpeg", data_dir / name, data_dir):
        if candidate.is_dir() and split_folders(candidate) is not None:
            return candidate
    return None


def class_files(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """The class names (sorted) of a folder of class folders and its image files (paths, sorted within a class)
    with their class index."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one sub-folder of images per class)")
    with os.scandir(root) as entries:
        classes = sorted(e.name for e in entries if e.is_dir())
    paths: list[tuple[str, int]] = []
    for c, name in enumerate(classes):
        with os.scandir(root / name) as entries:  # os.scandir: pathlib costs ~1 s more on 60,000 files
            images = sorted(e.path for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in
                            IMAGE_SUFFIXES)  # fmt: skip
        paths += [(p, c) for p in images]
    if len(classes) < 2 or not paths:
        raise DataError(f"{root}: needs at least two class sub-folders holding images ({', '.join(IMAGE_SUFFIXES)})")
    empty = sorted(set(classes) - {classes[c] for _, c in paths})
    if empty:  # dropping them would renumber the classes behind the user's back
        raise DataError(
            f"{root}: class folder(s) {', '.join(empty)} hold no images ({', '.join(IMAGE_SUFFIXES)}); add images or "
            "remove the folder(s)"
        )
    return classes, paths


def read_folder_splits(root: Path, image_size: int | None = None, workers: int | None = None) -> FolderSplits:
    """The images of ``root``: a folder of class folders, or split folders of class folders (every split with the
    training split's classes: a split whose classes differ is refused, naming them)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one sub-folder of images per class)")
    splits = split_folders(root) or {"train": root}
    listed = {split: class_files(path) for split, path in splits.items()}
    classes = listed["train"][0]
    for split, (names, _) in listed.items():
        if names != classes:
            extra, missing = sorted(set(names) - set(classes)), sorted(set(classes) - set(names))
            raise DataError(
                f"{splits[split]}: its classes differ from {splits['train']}'s"
                + (f"; only in {split}: {', '.join(extra)}" if extra else "")
                + (f"; missing from {split}: {', '.join(missing)}" if missing else "")
            )
    decoded = {split: read_images(paths, splits[split], image_size, workers) for split, (_, paths) in listed.items()}
    _same_shape(decoded, splits)
    return FolderSplits(decoded["train"], decoded.get("val"), decoded.get("test"), classes)


def _same_shape(decoded: dict[str, tuple[np.ndarray, np.ndarray]], splits: dict[str, Path]) -> None:
    """Grey splits become RGB beside an RGB split; splits of different image sizes are refused."""
    for split, x in zip(list(decoded), _rgb_beside_rgb([x for x, _ in decoded.values()]), strict=True):
        decoded[split] = (x, decoded[split][1])
    sizes = {split: tuple(x.shape[2:]) for split, (x, _) in decoded.items()}
    if len(set(sizes.values())) > 1:
        named = ", ".join(f"{splits[s]}: {h}x{w}" for s, (h, w) in sizes.items())
        raise DataError(f"the splits' images have different sizes ({named}); pass --image-size N to resize them")


def read_images(
    paths: list[tuple[str, int]], root: Path, image_size: int | None = None, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x C x H x W uint8: grey if every image is grey, else RGB) and labels of ``paths``, from the cache
    when the files are unchanged since they were decoded, else decoded (by ``workers`` processes for many; default:
    the CPU count, at most 8) and cached."""
    key = image_cache.key(root, [p for p, _ in paths], image_size)
    cached = image_cache.load(key, len(paths))
    if cached is not None:
        return cached
    labels = np.array([c for _, c in paths], dtype=np.int64)
    files = [p for p, _ in paths]
    n = workers if workers is not None else min(os.cpu_count() or 1, 8)
    if n > 1 and len(files) >= PARALLEL_FROM:
        bounds = np.linspace(0, len(files), n + 1).astype(int)
        images = _joined(_decode_in_workers([files[a:b] for a, b in itertools.pairwise(bounds)], image_size), root)
    else:
        images = _joined([_decoded(files, image_size)], root)
    image_cache.save(key, images, labels)
    return images, labels


def _decoded(files: list[str], image_size: int | None) -> np.ndarray | list[list[int]]:
    try:
        return decode_images.decode(files, image_size)
    except decode_images.ImageError as exc:
        raise DataError(str(exc)) from None


def _decode_in_workers(parts: list[list[str]], image_size: int | None) -> list[np.ndarray | list[list[int]]]:
    """Each part of the files decoded by its own worker process, all at once."""
    script = Path(decode_images.__file__)
    with tempfile.TemporaryDirectory(prefix="archsearch-decode-") as tmp:
        outs = [Path(tmp) / f"part{i}.npy" for i in range(len(parts))]
        procs = []
        for files, out in zip(parts, outs):
            proc = subprocess.Popen([sys.executable, "-I", str(script), str(out)], stdin=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"files": files, "image_size": image_size}))
            proc.stdin.close()
            procs.append(proc)
        results: list[np.ndarray | list[list[int]]] = []
        errors = []
        for proc, out in zip(procs, outs):
            err = proc.stderr.read() if proc.stderr else ""
            if proc.wait() != 0:
                errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit status {proc.returncode}")
            elif out.with_suffix(".json").exists():
                results.append(json.loads(out.with_suffix(".json").read_text()))
            else:
                results.append(np.load(out, allow_pickle=False))
        if errors:
            raise DataError(f"decoding failed: {errors[0]}")
        return results


def _joined(parts: list[np.ndarray | list[list[int]]], root: Path) -> np.ndarray:
    """The decoded parts as one array: grey parts made RGB beside RGB ones, images of different sizes refused."""
    sizes = {tuple(s) for p in parts if isinstance(p, list) for s in p}
    sizes |= {tuple(p.shape[2:]) for p in parts if isinstance(p, np.ndarray)}
    if len(sizes) > 1:
        raise DataError(
            f"{root}: images have different sizes {sorted(sizes)[:4]}; pass --image-size N (image_size=N in Python) "
            "to resize them"
        )
    return np.concatenate(_rgb_beside_rgb([p for p in parts if isinstance(p, np.ndarray)]))


def _rgb_beside_rgb(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Grey image arrays made RGB when any of ``arrays`` is RGB (as Pillow converts L to RGB), else as they are."""
    if not any(a.shape[1] == 3 for a in arrays):
        return arrays
    return [np.repeat(a, 3, axis=1) if a.shape[1] == 1 else a for a in arrays]

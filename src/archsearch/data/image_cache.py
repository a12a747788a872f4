"""The cache of decoded image folders: one ``.npz`` file (uint8 images, int64 labels, no pickles) per folder listing,
named by a hash of the folder's path, its files' names, sizes and modification times and the resize setting, so a
changed, added or removed file makes a new key and the folder is decoded again. Files are written under a temporary
name and moved into place when complete; a cache file that does not load, or holds other than what its name
promises, is ignored and rebuilt. The cache lives in ``$ARCHSEARCH_CACHE``, else ``$XDG_CACHE_HOME/archsearch``, else
``~/.cache/archsearch`` (in ``decoded/``); deleting it only costs the next load its decoding time.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "archsearch-decoded-images-1"


def cache_dir() -> Path:
    """Where decoded folders are cached."""
    if os.environ.get("ARCHSEARCH_CACHE"):
        return Path(os.environ["ARCHSEARCH_CACHE"]).expanduser() / "decoded"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "archsearch" / "decoded"


def key(root: Path, files: list[str], image_size: int | None) -> str:
    """The cache key of ``files`` (paths under ``root``) decoded at ``image_size``: the folder's absolute path and
    the files' names, byte sizes and modification times, in order."""
    digest = hashlib.sha256(f"{FORMAT}\0{image_size}\0{Path(root).resolve()}\0".encode())
    prefix = os.path.join(root, "")
    for f in files:
        stat = os.stat(f)
        name = f[len(prefix) :] if f.startswith(prefix) else f
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _regular(path: Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _path(cache_key: str) -> Path:
    return cache_dir() / f"{cache_key}.npz"


def load(cache_key: str, count: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached images and labels of ``cache_key``, or None when there is none or it is not whole (truncated,
    another key's, the wrong number of images)."""
    path = _path(cache_key)
    if not _regular(path):  # a link or a device at the cache's name is never read
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            stored_key, x, y = str(saved["key"]), saved["x"], saved["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    whole = x.dtype == np.uint8 and x.ndim == 4 and y.dtype == np.int64 and y.shape == (count,) and len(x) == count
    return (x, y) if stored_key == cache_key and whole else None


def save(cache_key: str, x: np.ndarray, y: np.ndarray) -> Path | None:
    """Cache ``x`` and ``y`` under ``cache_key`` (written whole, then moved into place). A cache that cannot be
    written is reported on stderr and skipped: the data were decoded and are used."""
    path = _path(cache_key)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or (path.exists() and not _regular(path)):
            raise OSError(f"{path.name} there is not a regular file; it is left as it is")
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".npz", delete=False) as f:
            tmp_name = f.name
            np.savez(f, key=np.array(cache_key), x=x, y=y)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
        return path
    except OSError as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        print(f"archsearch: could not cache the decoded images in {path.parent} ({exc}); the next load decodes them "
              "again (set ARCHSEARCH_CACHE to a writable folder)", file=sys.stderr)  # fmt: skip
        return None

"""Building and loading the compiled kernels so that nothing but what archsearch built itself is ever loaded.

The cache is a folder archsearch owns (``ARCHSEARCH_KERNEL_CACHE``, default ``$XDG_CACHE_HOME/archsearch/kernels``
or ``~/.cache/archsearch/kernels``): created with mode 700, and refused when it is a link, owned by another user, or
writable by group or others. A build runs in a fresh private folder inside it; the library's SHA-256 is recorded
beside it when the build succeeds and the folder is renamed into place, and a cached library is loaded only when its
hash matches that record (a replaced ``.so`` is rebuilt, never loaded). One process builds at a time: others wait on
an OS file lock, which the system releases when its holder dies (a killed build never leaves a lock that blocks),
saying so while they wait and giving up after :data:`WAIT_SECONDS` with a warning (PyTorch's kernels then run).
Nothing here follows ``TORCH_EXTENSIONS_DIR``: a cache shared with other users or machines is not trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from archsearch.errors import ArchsearchError

log = logging.getLogger(__name__)

WAIT_SECONDS = 600.0  # a build takes about 20 s; ten minutes is another process stuck, not building
RECORD = "built.json"


def cache_root() -> Path:
    """The folder the kernels are cached in (see the module docstring)."""
    given = os.environ.get("ARCHSEARCH_KERNEL_CACHE")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archsearch" / "kernels"


def private_folder(path: Path) -> Path:
    """``path`` as a folder only this user can write, created (mode 700) when missing; a link, another owner or
    write permission for group or others is an :class:`ArchsearchError` saying which."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ArchsearchError(f"the kernel cache {path} is not a plain folder (a link?); archsearch loads code only "
                              "from a folder it owns")  # fmt: skip
    if info.st_uid != os.getuid():
        raise ArchsearchError(f"the kernel cache {path} belongs to user id {info.st_uid}, not to you "
                              f"({os.getuid()}); archsearch loads code only from a folder you own")  # fmt: skip
    if info.st_mode & 0o022:
        raise ArchsearchError(f"the kernel cache {path} is writable by others (mode {stat.S_IMODE(info.st_mode):o});"
                              f" make it private (chmod 700 {path}) or set ARCHSEARCH_KERNEL_CACHE")  # fmt: skip
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _import(name: str, library: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ArchsearchError(f"{library}: not a loadable extension")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def _verified(folder: Path, name: str) -> Path | None:
    """The library in ``folder`` if its hash is the one recorded at build time, else None (it is rebuilt)."""
    library = folder / f"{name}.so"
    try:
        record = json.loads((folder / RECORD).read_text())
        if os.path.islink(library) or not library.is_file():
            return None
        if isinstance(record, dict) and record.get("sha256") == _sha256(library):
            return library
    except (OSError, ValueError):
        return None
    log.warning("the cached kernel library %s does not match the hash recorded when it was built; rebuilding", library)
    return None


def _locked(lock_path: Path, wait: float) -> Any | None:
    """An open handle holding ``lock_path``'s OS lock, or None after ``wait`` seconds (another build still going)."""
    handle = open(lock_path, "a+")  # noqa: SIM115 - held until the build is done
    start, told = time.monotonic(), False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if not told:
                print(f"archsearch: another process is building the CPU kernels ({lock_path}); waiting up to "
                      f"{wait:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
                told = True
            if time.monotonic() - start >= wait:
                handle.close()
                return None
            time.sleep(0.5)


def build_and_load(name: str, source: Path, cflags: list[str], ldflags: list[str], wait: float | None = None,
                   allow_build: bool = True) -> Any:  # fmt: skip
    """The kernels' module: the cached library when its hash matches its record, else built now (see the module
    docstring), or ``None`` when ``allow_build`` is off. Raises on a cache that is not private, a failed build, or
    a wait past ``wait`` seconds."""
    from torch.utils.cpp_extension import load

    root = private_folder(cache_root())
    key = hashlib.sha256(source.read_bytes() + repr((torch.__version__, cflags, ldflags)).encode()).hexdigest()[:16]
    folder = root / f"{name}-{key}"
    library = _verified(folder, name)
    if library is not None:
        return _import(name, library)
    if not allow_build:
        return None
    handle = _locked(root / f"{name}.lock", WAIT_SECONDS if wait is None else wait)
    if handle is None:
        raise ArchsearchError(f"another process held the kernel build lock for over {wait or WAIT_SECONDS:.0f} s")
    try:
        library = _verified(folder, name)  # another process may have built it while this one waited
        if library is not None:
            return _import(name, library)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            log.info("building archsearch's CPU kernels (%s; once, about 20 s)", name)
            module = load(name, [str(source)], extra_cflags=cflags, extra_ldflags=ldflags, build_directory=str(scratch),
                          verbose=False)  # fmt: skip
            (scratch / RECORD).write_text(json.dumps({"sha256": _sha256(scratch / f"{name}.so"), "source": key}))
            if folder.exists():  # a stale build whose library did not verify
                shutil.rmtree(folder)
            os.rename(scratch, folder)
            return module
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    finally:
        handle.close()

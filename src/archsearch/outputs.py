"""Where archsearch writes a file the user named (a report, a latency table, an export, a figure), and how.

* Nothing is replaced unless asked: an existing ``--out`` file needs ``--force``; a device node, a directory, a FIFO or
  a file a run directory keeps its records in (its store, lock, checkpoints) is refused even then.
* No symlink is followed: a file is written to a fresh temporary name beside its target (``O_EXCL``, so a link planted
  there is never opened) and renamed over the target only when complete; a rename replaces a link itself, never
  what it points to, and a link where an output goes is refused unless ``--force``.
* Names built from stored text go through :func:`safe_name`, so a tampered run cannot steer a file out of its folder.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from archsearch.errors import ArchsearchError
from archsearch.rundir import DB_NAME, LOCK_NAME, ONESHOT_CHECKPOINT

#: the names a run's records go by: never an output of another command, ``--force`` or not
RUN_RECORDS = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", LOCK_NAME, ONESHOT_CHECKPOINT)
#: the one existing file in a run directory that another command may replace: the run's own report
RUN_REPORT = "report.html"


def run_owning(path: Path) -> Path | None:
    """The run directory ``path`` lies in (itself or up to two folders up), or None."""
    for folder in list(path.parents)[:3]:
        if any(os.path.lexists(folder / marker) for marker in (DB_NAME, ONESHOT_CHECKPOINT, LOCK_NAME)):
            return folder
    return None


def check_output(path: str | Path, force: bool = False, what: str = "--out") -> Path:
    """``path`` if a file may be written there: refuses a non-regular file, a run's own records, and (without
    ``force``) any existing file or symlink, each in one line naming the path and what to do."""
    target = Path(path)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ArchsearchError(f"{what} {target}: cannot be written ({exc.strerror})") from None
    run = run_owning(target)
    if run is not None and target.name != RUN_REPORT and (info is not None or target.name in RUN_RECORDS):
        raise ArchsearchError(f"{what} {target} belongs to the run in {run}; archsearch never writes over a run's "
                              "records, --force or not: choose another file")  # fmt: skip
    if info is None:
        return target
    if stat.S_ISLNK(info.st_mode):
        if not force:
            raise ArchsearchError(f"{what} {target} is a symbolic link; archsearch does not write through links "
                                  "(--force replaces the link itself, never what it points to)")  # fmt: skip
        return target
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a device, FIFO or socket)"
        raise ArchsearchError(f"{what} {target} is {kind}; name a file to write")
    if not force:
        raise ArchsearchError(f"{what} {target} already exists; pass --force to replace it")
    return target


def write_file(data: str | bytes, out: str | Path) -> Path:
    """Write ``data`` to a new temporary file beside ``out`` and rename it over ``out`` once complete (never through
    a symlink, never leaving half a file under ``out``'s name). ``out``'s folder is created when missing."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path) and not (os.path.islink(path) or path.is_file()):
        raise ArchsearchError(f"{path} is not a regular file; name a file to write")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return path


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text: str, fallback: str = "file", limit: int = 100) -> str:
    """``text`` made into one plain file name: runs of anything but letters, digits, ``._+-`` (and of dots) become
    one ``_``, no leading or trailing dot (so never ``.`` or ``..``), at most ``limit`` characters; ``fallback`` when
    nothing is left."""
    name = re.sub(r"_+", "_", re.sub(r"\.{2,}", "_", _UNSAFE.sub("_", text))).strip("._")[:limit]
    return name or fallback


def new_folder_beside(target: Path) -> Path:
    """A new, empty, private folder beside ``target`` (on the same file system, so it can be renamed into place)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name[:80]}.", suffix=".tmp", dir=target.parent))


def check_png_dir(folder: str | Path | None, what: str = "--png") -> Path | None:
    """``folder`` if figures may be written into it: a folder or nothing yet, not a symbolic link (the figures'
    names end in ``.png`` and are sanitised, so they never meet a run's records)."""
    if folder is None:
        return None
    path = Path(folder)
    if os.path.islink(path):
        raise ArchsearchError(f"{what} {path} is a symbolic link; archsearch does not write through links")
    if os.path.lexists(path) and not path.is_dir():
        raise ArchsearchError(f"{what} {path} exists and is not a folder; name a folder for the figures")
    return path


def save_torch(obj: object, out: str | Path) -> Path:
    """``torch.save`` of ``obj`` written the way :func:`write_file` writes (a fresh temporary name, then a rename)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_file(buffer.getvalue(), out)

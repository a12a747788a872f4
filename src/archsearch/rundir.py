"""A run directory is data, written by one process at a time.

:class:`RunLock` is an OS file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on ``<run>/.archsearch.lock``,
held for the life of the process that writes the run. The kernel releases it when that process dies, however it dies,
so a killed run can be resumed at once; the pid written into the file only serves the error message.
:func:`describe` says what a directory holds without writing to it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import IO, Any

from archsearch.errors import ArchsearchError

LOCK_NAME = ".archsearch.lock"
DB_NAME = "experiment.sqlite"
ONESHOT_CHECKPOINT = "oneshot.pt"


class RunDirBusy(ArchsearchError):
    """Another process is writing the run directory."""


def _try_lock(handle: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class RunLock:
    """The one-writer lock of a run directory; :meth:`acquire` refuses when another process holds it."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> RunLock:
        """Take the lock (creating the directory); raise :class:`RunDirBusy` naming the holder if it is taken."""
        if self._handle is not None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        # a reader's probe (is_busy) holds the lock for microseconds: try for a moment before calling it taken
        deadline = time.monotonic() + 0.5
        while not _try_lock(handle) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirBusy(
                f"{self.run_dir} is being written by another archsearch process (pid {holder}); one process writes "
                "a run directory at a time: wait for it to end, or choose another --out"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Let go of the lock (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def is_busy(run_dir: str | Path) -> bool:
    """Whether another process holds the run directory's lock now (reads only; creates nothing)."""
    path = Path(run_dir) / LOCK_NAME
    if not path.is_file():
        return False
    with path.open("r") as handle:
        if not _try_lock(handle):
            return True
    return False


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file at ``path`` that cannot write to it."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def _meta(path: Path) -> dict[str, Any]:
    import json

    db = connect_readonly(path)
    try:
        rows = db.execute("SELECT name, value FROM meta").fetchall()
        trials = int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    finally:
        db.close()
    meta = {name: json.loads(value) for name, value in rows}
    meta["_trials"] = trials
    return meta


def describe(run_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """What a directory holds: ``("search", meta)``, ``("oneshot", meta)``, ``("empty", {})`` (a store with no run
    in it) or ``("nothing", {})``; a store SQLite cannot read raises :class:`ArchsearchError` saying so."""
    folder = Path(run_dir)
    path = folder / DB_NAME
    if not path.is_file():
        return ("oneshot", {}) if (folder / ONESHOT_CHECKPOINT).is_file() else ("nothing", {})
    if path.stat().st_size == 0:  # SQLite reads an empty file as an empty database
        return "empty", {}
    try:
        meta = _meta(path)
    except sqlite3.DatabaseError as exc:
        raise ArchsearchError(damaged_message(path, exc)) from None
    except ValueError as exc:  # a meta value that is not JSON: written by something else, or tampered with
        raise ArchsearchError(f"{path}: the store's run record is not valid JSON ({exc})") from None
    if "config" in meta:
        from archsearch.records import check_config

        check_config(meta["config"], str(path))
        return "search", meta
    if "oneshot" in meta:
        return "oneshot", meta
    return "empty", meta


def versions() -> dict[str, str]:
    """The versions a run records: archsearch, torch, Python."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        own = version("archsearch")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        own = "source"
    return {"archsearch": own, "torch": torch.__version__, "python": platform.python_version()}


def damaged_message(path: Path, exc: Exception) -> str:
    """The store at ``path`` is damaged: say so, and how much of it SQLite can still read."""
    readable = "nothing in it could be read"
    try:
        db = connect_readonly(path)
        try:
            n = int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
            readable = f"{n} trial rows can still be read (sqlite3 {path} '.recover' salvages them)"
        finally:
            db.close()
    except sqlite3.DatabaseError:
        pass
    return f"{path}: the store is damaged ({exc}); {readable}"


def names_directory(value: Any) -> bool:
    """Whether ``value`` (a ``str`` or ``Path``) names an existing directory. Text that cannot be a path (a name
    longer than 255 bytes, as every DARTS genotype is, or a NUL) is an architecture and never reaches the file
    system."""
    if not isinstance(value, (str, Path)):
        return False
    text = str(value)
    if "\x00" in text or len(text.encode()) > 4095 or any(len(part.encode()) > 255 for part in text.split("/")):
        return False
    return os.path.isdir(text)


def run_file(run_dir: str | Path, stored: Any, what: str) -> Path:
    """The file a run's record names (``stored``, relative to the run): it must lie inside the run directory, links
    resolved, so a tampered record can never make archsearch read a file outside its run."""
    if not isinstance(stored, str) or not stored or "\x00" in stored:
        raise ArchsearchError(f"{run_dir}: {what} is recorded as {stored!r}, not a file name in the run")
    root = Path(run_dir).resolve()
    path = (root / stored).resolve()
    if path != root and root not in path.parents:
        raise ArchsearchError(f"{run_dir}: {what} is recorded as {stored!r}, outside the run directory; a run may "
                              "only name files inside itself")  # fmt: skip
    return path

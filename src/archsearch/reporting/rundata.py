"""Everything a report shows, read from a run directory without writing to it (a read-only SQLite connection, so a
search that is still running is read without blocking it)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.records import check_trial_fields, finite_or_none, stored_metrics
from archsearch.rundir import DB_NAME, ONESHOT_CHECKPOINT, connect_readonly, damaged_message, describe, is_busy
from archsearch.spaces import space_for_reading


@dataclass
class TrialRow:
    """One recorded trial, as the report shows it."""

    number: int
    genotype: Any
    arch: str
    status: str
    score: float | None
    metrics: dict[str, float]
    error: str | None
    fidelity: float | None
    seconds: float
    started: float
    finished: float | None
    attempts: int


@dataclass
class RunData:
    """A run directory's record: a multi-trial search or a one-shot search."""

    path: Path
    kind: str  # "search" or "oneshot"
    meta: dict[str, Any]
    progress: dict[str, Any]
    trials: list[TrialRow] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # one-shot: one record per epoch
    busy: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be read, said in the report

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.meta.get("config") or {})

    @property
    def oneshot(self) -> dict[str, Any]:
        return dict(self.meta.get("oneshot") or {})

    @property
    def retrain(self) -> dict[str, Any] | None:
        return self.meta.get("retrain")


def read_run(run_dir: str | Path) -> RunData:
    """The record of the run in ``run_dir``; a directory that holds no run is an error."""
    path = Path(run_dir)
    kind, meta = describe(path)
    if kind == "nothing":
        raise ArchsearchError(f"{path}: no run here (no {DB_NAME} and no one-shot checkpoint)")
    if kind == "empty":
        raise ArchsearchError(f"{path}: the store holds no run yet (no config and no trial recorded)")
    data = RunData(path, kind, meta, {}, busy=is_busy(path))
    if (path / DB_NAME).is_file():
        try:
            _read_store(data)
        except sqlite3.DatabaseError as exc:
            raise ArchsearchError(damaged_message(path / DB_NAME, exc)) from None
    if kind == "oneshot":
        data.history = list(meta.get("oneshot_history") or [])
        if not data.history and (path / ONESHOT_CHECKPOINT).is_file():
            data.history = _history_from_checkpoint(path / ONESHOT_CHECKPOINT, data.notes)
    return data


def _read_store(data: RunData) -> None:
    db = connect_readonly(data.path / DB_NAME)
    try:
        row = db.execute("SELECT progress FROM strategy WHERE id = 1").fetchone()
        try:
            progress = {} if row is None else json.loads(row[0])
        except (TypeError, ValueError):
            progress = None
        if not isinstance(progress, dict):
            data.notes.append("the stored search progress is malformed; it is left out")
            progress = {}
        data.progress = progress
        columns = {r[1] for r in db.execute("PRAGMA table_info(trials)")}
        attempts = "attempts" if "attempts" in columns else "1"
        rows = db.execute(
            "SELECT number, genotype, status, score, metrics, error, fidelity, seconds, started, finished, "
            f"{attempts} FROM trials ORDER BY number"
        ).fetchall()
    finally:
        db.close()
    info = data.config if data.kind == "search" else data.oneshot
    space = space_for_reading(info.get("space"), info.get("space_options"), str(data.path))
    unreadable: dict[str, int] = {}
    for number, g, status, score, metrics, error, fidelity, seconds, started, finished, tries in rows:
        try:
            check_trial_fields(number, status, score, error, fidelity, seconds)
            genotype = space.from_json(json.loads(g))
            row = TrialRow(number, genotype, str(genotype), status, finite_or_none(score), stored_metrics(metrics),
                           error, finite_or_none(fidelity), float(seconds), finite_or_none(started) or 0.0,
                           finite_or_none(finished), tries if isinstance(tries, int) else 1)  # fmt: skip
        except (ArchsearchError, ValueError, TypeError, RecursionError) as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            unreadable[reason] = unreadable.get(reason, 0) + 1
            continue
        data.trials.append(row)
    for reason, n in unreadable.items():
        data.notes.append(f"{n} trial row(s) left out: a stored field is malformed ({reason})")


def _history_from_checkpoint(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """The per-epoch history of a one-shot run written before histories were kept in the store."""
    from archsearch.oneshot.checkpoint import load_checkpoint

    try:
        return list(load_checkpoint(path)["history"])
    except ArchsearchError as exc:
        notes.append(f"the one-shot history could not be read: {exc}")
        return []

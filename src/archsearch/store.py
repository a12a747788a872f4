"""The experiment store: one SQLite file per run directory holding the config, every trial and the strategy state.

Each finished trial is committed together with the strategy's state after it was told, before the next ask; a trial
is inserted as ``running`` (with the state after it was asked) before it is evaluated, so a killed search resumes
by re-running exactly the trials that were in flight and asking the strategy for nothing it already proposed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.records import check_trial_fields, stored_metrics
from archsearch.rundir import DB_NAME, RunLock, connect_readonly, damaged_message
from archsearch.trial import RUNNING, Trial

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    genotype TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL,
    metrics TEXT NOT NULL,
    error TEXT,
    fidelity REAL,
    seed INTEGER NOT NULL,
    seconds REAL NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS trials_key ON trials(key);
CREATE TABLE IF NOT EXISTS strategy (
    id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, progress TEXT NOT NULL, updated REAL
);
CREATE TABLE IF NOT EXISTS strategy_parts (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """A run directory's SQLite database. Writes go through :meth:`transaction`.

    A writing store holds the run directory's :class:`~archsearch.rundir.RunLock` until :meth:`close` (or the
    process's death): a second writer is refused. ``readonly`` opens without the lock and never writes.

    Durability: WAL with ``synchronous=FULL``, so a transaction that returned survives a killed process and a power
    loss alike (the WAL is synced at every commit; its cost per trial is in the README). ``durable=False`` (for
    throw-away stores such as the strategy benchmark's) keeps ``synchronous=NORMAL``: safe against a killed process,
    while a power loss may take the last transactions."""

    def __init__(self, run_dir: str | Path, readonly: bool = False, durable: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.readonly = readonly
        self.lock: RunLock | None = None
        self._parts_written: dict[str, Any] | None = None  # the dict values of the last state written, by key
        if not readonly:
            self.lock = RunLock(self.run_dir).acquire()
        try:
            if readonly:
                self.db = connect_readonly(self.path)
            else:
                self.db = sqlite3.connect(self.path, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self.db.executescript(SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(trials)")}
            if not readonly and "attempts" not in columns:  # a store written before attempts were recorded
                self.db.execute("ALTER TABLE trials ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1")
                columns.add("attempts")
        except sqlite3.DatabaseError as exc:
            if self.lock is not None:
                self.lock.release()
            raise ArchsearchError(damaged_message(self.path, exc)) from None
        if readonly and "number" not in columns:
            raise ArchsearchError(f"{self.path}: not an archsearch store (it has no trials table)")
        self._attempts_column = "attempts" if "attempts" in columns else "1"

    def close(self) -> None:
        """Close the database and release the run directory's lock."""
        self.db.close()
        if self.lock is not None:
            self.lock.release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            self._parts_written = None  # what the cache says was written may have been rolled back
            raise
        self.db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------------------------------
    def set_meta(self, name: str, value: Any, db: sqlite3.Connection | None = None) -> None:
        (db or self.db).execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # --- trials --------------------------------------------------------------------------------------------------
    def put_trial(self, db: sqlite3.Connection, trial: Trial, started: float, finished: float | None) -> None:
        """Insert or replace a trial row (inside a transaction)."""
        db.execute(
            "INSERT OR REPLACE INTO trials (number, key, genotype, status, score, metrics, error, fidelity, seed, "
            "seconds, started, finished, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                trial.number,
                trial.key,
                json.dumps(trial.genotype.to_json()),
                trial.status,
                trial.score,
                json.dumps(trial.metrics),
                trial.error,
                trial.fidelity,
                trial.seed,
                trial.seconds,
                started,
                finished,
                trial.attempts,
            ),
        )

    def put_state(
        self, db: sqlite3.Connection, state: dict[str, Any], progress: dict[str, Any], stable: Sequence[str] = ()
    ) -> None:
        """The strategy's state and the experiment's counters (elapsed seconds, repeats).

        The ``stable`` keys of the state are kept one row each, and a value that is the very object written last
        time is not encoded and written again: a strategy that caches a large packed state (a controller's weights)
        hands out the same object until it changes, so saving after every trial stays cheap."""
        small = {k: v for k, v in state.items() if k not in stable}
        parts = {k: v for k, v in state.items() if k in stable}
        if self._parts_written is None:
            db.execute("DELETE FROM strategy_parts")
            self._parts_written = {}
        for name in [n for n in self._parts_written if n not in parts]:
            db.execute("DELETE FROM strategy_parts WHERE name = ?", (name,))
            del self._parts_written[name]
        for name, value in parts.items():
            if self._parts_written.get(name) is not value:
                db.execute(
                    "INSERT OR REPLACE INTO strategy_parts (name, value) VALUES (?, ?)", (name, json.dumps(value))
                )
                self._parts_written[name] = value
        db.execute(
            "INSERT OR REPLACE INTO strategy (id, state, progress, updated) VALUES (1, ?, ?, ?)",
            (json.dumps(small), json.dumps(progress), time.time()),
        )

    def put_progress(self, db: sqlite3.Connection, progress: dict[str, Any]) -> None:
        """Update only the counters (the strategy state stays that of the last recorded trial)."""
        db.execute("UPDATE strategy SET progress = ?, updated = ? WHERE id = 1", (json.dumps(progress), time.time()))

    def strategy_state(self) -> dict[str, Any] | None:
        """The last strategy state written (``None`` for a new store)."""
        row = self.db.execute("SELECT state FROM strategy WHERE id = 1").fetchone()
        if row is None:
            return None
        state = json.loads(row[0])
        for name, value in self.db.execute("SELECT name, value FROM strategy_parts"):
            state[name] = json.loads(value)
        return state

    def progress(self) -> dict[str, Any]:
        """The counters saved with the strategy state (empty for a new store)."""
        row = self.db.execute("SELECT progress FROM strategy WHERE id = 1").fetchone()
        return {} if row is None else json.loads(row[0])

    def trials(self, genotype_reader: Any, status: str | None = None, skip_malformed: bool = False) -> list[Trial]:
        """Trials in number order; ``genotype_reader`` turns stored genotype JSON back into a genotype. A row with a
        malformed field is an :class:`ArchsearchError` naming it, or left out with ``skip_malformed`` (a report says
        how many it left out)."""
        query = (
            "SELECT number, key, genotype, status, score, metrics, error, fidelity, seed, seconds, "
            f"{self._attempts_column} FROM trials"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        out = []
        for number, key, g, st, score, metrics, error, fidelity, seed, seconds, attempts in self.db.execute(
            query + " ORDER BY number", args
        ):
            try:  # a store is data: a field of the wrong type is named, not a traceback later
                check_trial_fields(number, st, score, error, fidelity, seconds)
                tries = attempts if isinstance(attempts, int) else 1
                trial = Trial(number, genotype_reader(json.loads(g)), key, st, stored_metrics(metrics), score, error,
                              fidelity, seed, float(seconds), attempts=tries)  # fmt: skip
            except (ValueError, TypeError, RecursionError) as exc:
                if skip_malformed:
                    continue
                raise ArchsearchError(f"{self.path}: trial {number!r:.20} is malformed ({str(exc)[:160]}); the "
                                      "store was changed by something other than archsearch") from None  # fmt: skip
            out.append(trial)
        return out

    def count(self, finished_only: bool = True) -> int:
        sql = "SELECT COUNT(*) FROM trials" + (" WHERE status != ?" if finished_only else "")
        return int(self.db.execute(sql, (RUNNING,) if finished_only else ()).fetchone()[0])

    def next_number(self) -> int:
        row = self.db.execute("SELECT MAX(number) FROM trials").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1


def open_existing(run_dir: str | Path, readonly: bool = True) -> Store:
    """The store of an existing run, read-only unless ``readonly=False``; a folder without one is an error."""
    path = Path(run_dir) / DB_NAME
    if not path.is_file():
        raise ArchsearchError(f"{run_dir}: no experiment here (expected {DB_NAME})")
    return Store(run_dir, readonly=readonly)

"""A tabular-benchmark evaluator: answers from a NAS-Bench-201-style CSV instead of training.

The table has columns ``arch`` (the NB201 string), ``valid_acc_12ep`` (the search signal) and ``test_acc_200ep``
(the figure to report); ``valid_acc_200ep`` is read when present. Every query is counted.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator

SIGNAL, REPORTED = "valid_acc_12ep", "test_acc_200ep"


def default_table() -> Path:
    """``$ARCHSEARCH_DATA/nb201/nb201_cifar10.csv``."""
    root = os.environ.get("ARCHSEARCH_DATA")
    if not root:
        raise ArchsearchError("no table given and ARCHSEARCH_DATA is not set (expected nb201/nb201_cifar10.csv there)")
    return Path(root) / "nb201" / "nb201_cifar10.csv"


class Table:
    """A benchmark table in memory: arch string -> (signal, reported, extra columns)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ArchsearchError(f"{self.path}: no such table file")
        try:
            with self.path.open(newline="", encoding="utf-8") as f:
                self._read(csv.DictReader(f))
        except UnicodeDecodeError as exc:
            raise ArchsearchError(f"{self.path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise ArchsearchError(f"{self.path}: not a readable CSV file ({exc})") from None
        if not self.rows:
            raise ArchsearchError(f"{self.path}: the table is empty")

    def _read(self, reader: csv.DictReader[str]) -> None:
        missing = {"arch", SIGNAL, REPORTED} - set(reader.fieldnames or ())
        if missing:
            raise ArchsearchError(f"{self.path}: missing column(s) {sorted(missing)}; need arch, {SIGNAL}, {REPORTED}")
        self.rows: dict[str, dict[str, float]] = {}
        for n, row in enumerate(reader, start=2):
            try:
                values = {k: float(v) for k, v in row.items() if k not in ("arch", "index") and k and v}
            except (ValueError, TypeError) as exc:
                raise ArchsearchError(f"{self.path}:{n}: {exc}") from None
            bad = {k: v for k, v in values.items() if "acc" in k and not 0.0 <= v <= 100.0}
            if bad:
                raise ArchsearchError(f"{self.path}:{n}: accuracies are percentages in 0..100, got {bad}")
            self.rows[row["arch"]] = values

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, arch: str) -> dict[str, float]:
        try:
            return self.rows[arch]
        except KeyError:
            raise ArchsearchError(f"{arch} is not in the table {self.path.name}") from None


class TableEvaluator(Evaluator):
    """Looks architectures up in a :class:`Table`: ``val_acc`` is the search signal, ``test_acc`` the reported
    figure (kept for the report; strategies never see it)."""

    name = "table"

    def __init__(self, table: str | Path | Table | None = None) -> None:
        self.table = table if isinstance(table, Table) else Table(table or default_table())
        self.queries = 0

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        if fidelity is not None:
            raise ArchsearchError("the table evaluator has no fidelity knob (it holds 12- and 200-epoch results only)")
        row = self.table.lookup(str(genotype))
        self.queries += 1
        metrics = {"val_acc": row[SIGNAL], "test_acc": row[REPORTED]}
        if "valid_acc_200ep" in row:
            metrics["valid_acc_200ep"] = row["valid_acc_200ep"]
        return metrics

"""A tabular-benchmark evaluator: answers from a CSV instead of training, for any space.

The table has a column ``arch`` (each architecture's text in the space: NB201's string, a registered space's own
text or JSON), a search-signal column and a reported column: by default NAS-Bench-201's ``valid_acc_12ep`` and
``test_acc_200ep`` (``signal`` / ``report`` choose others); NB201's ``valid_acc_200ep`` is read when present. With a
space, every row's architecture is read in that space first (a row that does not parse is an error naming it) and
looked up by the genotype's canonical key. Every query is counted.
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
    """A benchmark table in memory: arch string (or, with ``space``, genotype key) -> its numeric columns; ``signal``
    and ``report`` name the columns a search reads and reports."""

    def __init__(self, path: str | Path, signal: str = SIGNAL, report: str = REPORTED, space: Any = None) -> None:
        self.path = Path(path)
        self.signal, self.report, self.space = signal, report, space
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
        columns = list(reader.fieldnames or ())
        missing = [c for c in ("arch", self.signal, self.report) if c not in columns]
        if missing:
            numeric = ", ".join(c for c in columns if c not in ("arch", "index")) or "none"
            raise ArchsearchError(
                f"{self.path}: missing column(s) {missing}; need arch, the signal column ({self.signal}) and the "
                f"reported one ({self.report}); the table's other columns: {numeric} (choose with --table-signal / "
                "--table-report)"
            )
        self.rows: dict[str, dict[str, float]] = {}
        for n, row in enumerate(reader, start=2):
            try:
                values = {k: float(v) for k, v in row.items() if k not in ("arch", "index") and k and v}
            except (ValueError, TypeError) as exc:
                raise ArchsearchError(f"{self.path}:{n}: {exc}") from None
            bad = {k: v for k, v in values.items() if "acc" in k and not 0.0 <= v <= 100.0}
            if bad:
                raise ArchsearchError(f"{self.path}:{n}: accuracies are percentages in 0..100, got {bad}")
            self.rows[self._key(row["arch"], n)] = values

    def _key(self, arch: str, line: int) -> str:
        if self.space is None:
            return arch
        try:
            return str(self.space.parse(arch).key)
        except ArchsearchError as exc:
            raise ArchsearchError(
                f"{self.path}:{line}: arch {arch[:60]!r} does not read as a {self.space.name} genotype ({exc})"
            ) from None

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, arch: Any) -> dict[str, float]:
        """The row of ``arch``: its text (a table read without a space) or a genotype (looked up by its key when the
        table was read in a space)."""
        key = arch.key if self.space is not None and not isinstance(arch, str) else str(arch)
        try:
            return self.rows[key]
        except KeyError:
            raise ArchsearchError(f"{arch} is not in the table {self.path.name}") from None


class TableEvaluator(Evaluator):
    """Looks architectures up in a :class:`Table`: ``val_acc`` is the search signal, ``test_acc`` the reported
    figure (kept for the report; strategies never see it). ``signal`` / ``report`` name the table's columns; with a
    ``space`` other than nb201 the table is read in that space (every arch checked)."""

    name = "table"

    def __init__(
        self, table: str | Path | Table | None = None, signal: str = SIGNAL, report: str = REPORTED, space: Any = None
    ) -> None:
        from archsearch.spaces import get_space

        sp = None if space is None else get_space(space)
        if isinstance(table, Table):
            self.table = table
        else:  # NB201's text is its key: reading it through the space would only cost time
            self.table = Table(
                table or default_table(), signal, report, None if sp is None or sp.name == "nb201" else sp
            )
        self.queries = 0

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        if fidelity is not None:
            raise ArchsearchError("the table evaluator has no fidelity knob (it holds 12- and 200-epoch results only)")
        row = self.table.lookup(genotype if self.table.space is not None else str(genotype))
        self.queries += 1
        metrics = {"val_acc": row[self.table.signal], "test_acc": row[self.table.report]}
        if "valid_acc_200ep" in row:
            metrics["valid_acc_200ep"] = row["valid_acc_200ep"]
        return metrics

"""A tabular-benchmark evaluator: answers from a CSV instead of training, for any space.

The table has a column ``arch`` (each architecture's text in the space: NB201's string, a registered space's own
text or JSON), a search-signal column and a reported column: by default NAS-Bench-201's ``valid_acc_12ep`` and
``test_acc_200ep`` (``signal`` / ``report`` choose others); NB201's ``valid_acc_200ep`` is read when present. With a
space, every row's architecture is read in that space first (a row that does not parse is an error naming it) and
looked up by the genotype's canonical key. Every query is counted.

Further tables (``join``: more CSVs with an ``arch`` column, such as measured device latencies) are joined on the
architecture: each must hold exactly the same architectures (a row missing from one is an error naming it) and
columns of other names. Any numeric column can then be an objective or a constraint of the search (read like a cost,
before the query is counted); ``params`` and ``flops`` come from a column of that name or are counted on the
architecture built at the space's default settings for 3x32x32 inputs and 10 classes (CIFAR-10, as the tables are),
without training.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator

SIGNAL, REPORTED = "valid_acc_12ep", "test_acc_200ep"


#: the table a tabular search reads when none is given, under ``$ARCHSEARCH_DATA``
DEFAULT_TABLE = "nb201/nb201_cifar10.csv"


def default_table() -> Path:
    """``$ARCHSEARCH_DATA/nb201/nb201_cifar10.csv``."""
    root = os.environ.get("ARCHSEARCH_DATA")
    if not root:
        raise ArchsearchError("no table given and ARCHSEARCH_DATA is not set (expected nb201/nb201_cifar10.csv there)")
    return Path(root) / DEFAULT_TABLE


def header_columns(path: str | Path) -> list[str]:
    """The numeric columns a table's header names (everything but ``arch`` and ``index``), read without its rows:
    what a search checks its objectives against before it reads the table."""
    path = Path(path)
    if not path.is_file():
        raise ArchsearchError(f"{path}: no such table file")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except UnicodeDecodeError as exc:
        raise ArchsearchError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ArchsearchError(f"{path}: not a readable CSV file ({exc})") from None
    return [c for c in header if c not in ("arch", "index") and c]


class Table:
    """A benchmark table in memory: arch string (or, with ``space``, genotype key) -> its numeric columns; ``signal``
    and ``report`` name the columns a search reads and reports."""

    def __init__(self, path: str | Path, signal: str = SIGNAL, report: str = REPORTED, space: Any = None,
                 join: Sequence[str | Path] = ()) -> None:  # fmt: skip
        self.path = Path(path)
        self.signal, self.report, self.space = signal, report, space
        self.joined = [Path(j) for j in join]
        # texts: key -> the architecture's text as the first table gives it
        self.rows, self.columns, self.texts = self._read_file(self.path, (signal, report))
        for other in self.joined:
            self._join(other)
        self._counts: dict[str, dict[str, float]] = {}

    def _read_file(self, path: Path, needed: Sequence[str]
                   ) -> tuple[dict[str, dict[str, float]], list[str], dict[str, str]]:  # fmt: skip
        if not path.is_file():
            raise ArchsearchError(f"{path}: no such table file")
        try:
            with path.open(newline="", encoding="utf-8") as f:
                return self._read(path, csv.DictReader(f), needed)
        except UnicodeDecodeError as exc:
            raise ArchsearchError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
        except csv.Error as exc:
            raise ArchsearchError(f"{path}: not a readable CSV file ({exc})") from None

    def _read(self, path: Path, reader: csv.DictReader[str], needed: Sequence[str]
              ) -> tuple[dict[str, dict[str, float]], list[str], dict[str, str]]:  # fmt: skip
        columns = list(reader.fieldnames or ())
        missing = [c for c in ("arch", *needed) if c not in columns]
        if missing:
            numeric = ", ".join(c for c in columns if c not in ("arch", "index")) or "none"
            what = ("need arch, the signal column ({}) and the reported one ({}); ".format(*needed) if needed
                    else "a joined table needs an arch column; ")  # fmt: skip
            raise ArchsearchError(f"{path}: missing column(s) {missing}; {what}the table's other columns: {numeric}"
                                  + (" (choose with --table-signal / --table-report)" if needed else ""))  # fmt: skip
        rows: dict[str, dict[str, float]] = {}
        texts: dict[str, str] = {}
        for n, row in enumerate(reader, start=2):
            try:
                values = {k: float(v) for k, v in row.items() if k not in ("arch", "index") and k and v}
            except (ValueError, TypeError) as exc:
                raise ArchsearchError(f"{path}:{n}: {exc}") from None
            bad = {k: v for k, v in values.items() if "acc" in k and not 0.0 <= v <= 100.0}
            if bad:
                raise ArchsearchError(f"{path}:{n}: accuracies are percentages in 0..100, got {bad}")
            key = self._key(path, row["arch"], n)
            if key in rows and rows[key] != values:  # equal networks under two texts may share a row's values
                raise ArchsearchError(f"{path}:{n}: architecture {row['arch'][:60]!r} is in the table twice, with "
                                      "different values")  # fmt: skip
            rows[key] = values
            texts.setdefault(key, row["arch"])
        if not rows:
            raise ArchsearchError(f"{path}: the table is empty")
        return rows, [c for c in columns if c not in ("arch", "index") and c], texts

    def _join(self, path: Path) -> None:
        rows, columns, _ = self._read_file(path, ())
        clash = sorted(set(columns) & set(self.columns))
        if clash:
            raise ArchsearchError(f"{path}: column(s) {clash} are already in {self.path.name}; joined tables add "
                                  "columns of other names")  # fmt: skip
        for mine, theirs, where in ((self.rows, rows, path), (rows, self.rows, self.path)):
            lost = next((k for k in mine if k not in theirs), None)
            if lost is not None:
                raise ArchsearchError(f"{where}: no row for architecture {lost[:80]!r} (joined tables hold the same "
                                      "architectures)")  # fmt: skip
        for key, values in rows.items():
            self.rows[key].update(values)
        self.columns += columns

    def _key(self, path: Path, arch: str, line: int) -> str:
        if self.space is None:
            return arch
        try:
            return str(self.space.parse(arch).key)
        except ArchsearchError as exc:
            raise ArchsearchError(
                f"{path}:{line}: arch {arch[:60]!r} does not read as a {self.space.name} genotype ({exc})"
            ) from None

    def check_columns(self, names: Sequence[str]) -> None:
        """Refuse metric names that are neither columns of the table nor counted on the architecture."""
        unknown = [n for n in names if n not in self.columns and n not in ("params", "flops")]
        if unknown:
            raise ArchsearchError(f"{', '.join(unknown)}: not a column of the table(s) "
                                  f"{', '.join(p.name for p in [self.path, *self.joined])} (columns: "
                                  f"{', '.join(self.columns)}; params and flops are counted)")  # fmt: skip

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

    def find(self, genotype: Any) -> dict[str, float] | None:
        """A copy of ``genotype``'s row, or None when the table lacks it."""
        row = self.rows.get(str(genotype.key) if self.space is not None else str(genotype))
        return None if row is None else dict(row)

    def values(self, genotype: Any, names: Sequence[str], space: Any) -> dict[str, float]:
        """The columns ``names`` of ``genotype``'s row; ``params`` / ``flops`` without a column of that name are
        counted on the architecture built at ``space``'s default settings (3x32x32 inputs, 10 classes)."""
        row = self.lookup(genotype if self.space is not None else str(genotype))
        out = {n: row[n] for n in names if n in row}
        counted = [n for n in names if n not in row]
        if counted:
            self.check_columns(counted)
            if genotype.key not in self._counts:
                self._counts[genotype.key] = space.counts(genotype)
            out.update({n: self._counts[genotype.key][n] for n in counted})
        return out


def lookup_table(path: str | Path, space: Any) -> Table:
    """A table read to look up architectures of ``space`` (a one-shot search's derived cells), every numeric column
    kept, NB201's columns not required. Rows are read in the space and keyed by genotype, except in a space whose
    text is its key (NB201), where the text is the key, as the table evaluator reads them."""
    columns = header_columns(path)
    if not columns:
        raise ArchsearchError(f"{path}: the table has no numeric column besides arch and index")
    signal = SIGNAL if SIGNAL in columns else columns[0]
    report = REPORTED if REPORTED in columns else columns[0]
    return Table(path, signal, report, None if space.text_is_key else space)


class TableEvaluator(Evaluator):
    """Looks architectures up in a :class:`Table`: ``val_acc`` is the search signal, ``test_acc`` the reported
    figure (kept for the report; strategies never see it). ``signal`` / ``report`` name the table's columns; with a
    ``space`` other than nb201 the table is read in that space (every arch checked)."""

    name = "table"

    def __init__(
        self, table: str | Path | Table | None = None, signal: str = SIGNAL, report: str = REPORTED, space: Any = None,
        join: Sequence[str | Path] = (),
    ) -> None:
        from archsearch.spaces import DEFAULT_SPACE, get_space

        self.space = get_space(space if space is not None else DEFAULT_SPACE)
        if isinstance(table, Table):
            self.table = table
        else:  # a space whose text is its key is not read through the space: that would only cost time
            keyed = space is None or self.space.text_is_key
            self.table = Table(table or default_table(), signal, report, None if keyed else self.space, join)
        self.queries = 0

    def costs(self, genotype: Any, names: Sequence[str]) -> dict[str, float]:
        """The table's values (or counts) of the metrics ``names`` for ``genotype``; not a query."""
        return self.table.values(genotype, names, self.space)

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        if fidelity is not None:
            raise ArchsearchError("the table evaluator has no fidelity knob (it holds 12- and 200-epoch results only)")
        row = self.table.lookup(genotype if self.table.space is not None else str(genotype))
        self.queries += 1
        metrics = {"val_acc": row[self.table.signal], "test_acc": row[self.table.report]}
        if "valid_acc_200ep" in row:
            metrics["valid_acc_200ep"] = row["valid_acc_200ep"]
        return metrics

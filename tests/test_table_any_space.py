"""A tabular benchmark for any space: the table's ``arch`` column holds the space's genotype texts, and the signal and
reported columns are chosen by name (``--table-signal`` / ``--table-report``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from torch import nn

import archsearch
from archsearch import ArchsearchError, ChoiceSpace, register_space
from archsearch.cli import main


class Knobs(ChoiceSpace):
    """Two knobs; the table below scores each pair."""

    name = "knobs"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"a": (1, 2, 3), "b": (1, 2, 3)}

    def build_network(self, genotype: Any, in_channels: int, num_classes: int, input_size: int, **o: Any) -> Any:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def _table(path: Path, rows: list[tuple[str, float, float]] | None = None) -> Path:
    if rows is None:  # short-run score favours a=3,b=1; the long-run one a=3,b=3
        rows = [(f"a={a},b={b}", 10.0 * a - b, 10.0 * a + b) for a in (1, 2, 3) for b in (1, 2, 3)]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "acc_short", "acc_long"])
        writer.writerows(rows)
    return path


@pytest.fixture
def knobs() -> None:
    register_space(Knobs)  # undone after the test by the conftest's registry fixture


def test_a_search_reads_the_chosen_columns_of_a_table_in_any_space(tmp_path: Path, knobs: None) -> None:
    table = _table(tmp_path / "knobs.csv")
    result = archsearch.search(space="knobs", strategy="random", table=str(table), table_signal="acc_short",
                               table_report="acc_long", budget=9, out=tmp_path / "run")  # fmt: skip
    assert str(result.winner.genotype) == "a=3,b=1"
    assert result.winner.metrics == {"val_acc": 29.0, "test_acc": 31.0}
    assert result.config["evaluator_options"]["signal"] == "acc_short"


def test_the_command_line_options_reach_the_table_evaluator(tmp_path: Path, knobs: None, capsys) -> None:
    table = _table(tmp_path / "knobs.csv")
    argv = ["search", "--space", "knobs", "--strategy", "random", "--table", str(table), "--table-signal",
            "acc_long", "--table-report", "acc_short", "--trials", "9", "--out", str(tmp_path / "r"),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    best = json.loads(capsys.readouterr().out.splitlines()[0])
    assert best["arch"] == "a=3,b=3" and best["metrics"] == {"val_acc": 33.0, "test_acc": 27.0}
    assert main(["search", "--table-signal", "acc_long", "--out", str(tmp_path / "r2")]) == 2
    assert "--table-signal has no effect with the train evaluator" in capsys.readouterr().err


def test_table_errors_name_the_problem(tmp_path: Path, knobs: None) -> None:
    table = _table(tmp_path / "knobs.csv")
    with pytest.raises(ArchsearchError, match=r"missing column\(s\) \['valid_acc_12ep', 'test_acc_200ep'\].*"
                                              r"other columns: acc_short, acc_long"):  # fmt: skip
        archsearch.search(space="knobs", table=str(table), budget=2, out=tmp_path / "a")
    bad = _table(tmp_path / "bad.csv", [("a=1,b=1", 1.0, 1.0), ("a=9,b=1", 2.0, 2.0)])
    with pytest.raises(ArchsearchError, match=r"bad.csv:3: arch 'a=9,b=1' does not read as a knobs genotype"):
        archsearch.search(space="knobs", table=str(bad), table_signal="acc_short", table_report="acc_long",
                          budget=2, out=tmp_path / "b")  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    short = _table(tmp_path / "short.csv", [("a=1,b=1", 1.0, 1.0)])
    result = archsearch.search(space="knobs", table=str(short), table_signal="acc_short", table_report="acc_long",
                               budget=3, strategy="random", out=tmp_path / "c")  # fmt: skip
    assert result.failed >= 1 and "is not in the table short.csv" in result.failures[0][0]


def test_a_nas_bench_macro_table_drives_the_macro_space(tmp_path: Path) -> None:
    """Every one of the 6,561 strings is a row, as in the benchmark's file (equal networks share their values)."""
    space = archsearch.get_space("macro")
    score = {g.key: float(sum(int(c) * (i + 1) for i, c in enumerate(g.key))) for g in space.enumerate()}
    rows = [(str(g), score[g.key], score[g.key] / 2) for g in space.enumerate()]
    table = _table(tmp_path / "macro.csv", rows)
    result = archsearch.search(space="macro", strategy="evolution", table=str(table), table_signal="acc_short",
                               table_report="acc_long", budget=300, out=tmp_path / "run")  # fmt: skip
    best = max(score.values())
    assert result.winner.metrics == {"val_acc": best, "test_acc": best / 2}
    assert result.winner.genotype.key == "22222222"

"""The NAS-Bench-201 protocol for one-shot search: the cell derived after every epoch looked up in the benchmark table,
recorded beside the search (history, result, show, report) and never fed to it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import archsearch
from archsearch.cli import main
from archsearch.errors import ArchsearchError
from archsearch.spaces import NB201Genotype

TINY = {"channels": 4, "cells_per_stage": 1}


def _rows(table: Path) -> dict[str, dict[str, float]]:
    with table.open(newline="") as f:
        return {r.pop("arch"): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}


def _search(run: Path, table: Path | None, method: str = "darts", epochs: int = 2, **kw):
    return archsearch.oneshot(method, "nb201", "digits", run, supernet_options=TINY, subset=160, epochs=epochs,
                              batch_size=32, table=table, plots=False, **kw)  # fmt: skip


def test_every_epoch_is_looked_up_and_the_lookup_never_feeds_the_search(made_table: Path, tmp_path: Path) -> None:
    rows = _rows(made_table)
    looked = _search(tmp_path / "looked", made_table)
    blind = _search(tmp_path / "blind", None)
    assert [r["table"] for r in looked.history] == [rows[r["genotype"]] for r in looked.history]
    assert looked.table == rows[str(looked.genotype)] and blind.table is None
    strip = ("table", "seconds")
    assert [{k: v for k, v in r.items() if k not in strip} for r in looked.history] == [
        {k: v for k, v in r.items() if k not in strip} for r in blind.history
    ]
    assert str(looked.genotype) == str(blind.genotype) and "table" not in blind.history[0]
    assert looked.to_json()["table"] == looked.table
    assert archsearch.show(tmp_path / "looked").oneshot.table == looked.table
    page = archsearch.report(tmp_path / "looked").path.read_text()
    assert "of the cell derived after each epoch (never seen by the search)" in page
    assert "table: test_acc_200ep" in page and "derived architecture in the table" in page


def test_the_cli_prints_records_and_shows_the_figures(made_table: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["oneshot", "--method", "gdas", "--space", "nb201", "--dataset", "digits", "--subset", "160",
            "--channels", "4", "--cells-per-stage", "1", "--batch-size", "32", "--epochs", "2", "--out", str(out),
            "--table", str(made_table)]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.count("table: valid_acc_12ep") == 3  # two epochs and the result
    assert main(["show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    genotype = NB201Genotype.from_string(shown["genotype"])
    assert shown["table"] == _rows(made_table)[str(genotype)]
    assert main(["oneshot", "--resume", "--out", str(out), "--epochs", "3", "--json"]) == 0  # the table is kept
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["epoch"] == 3 and lines[0]["table"] == _rows(made_table)[lines[0]["genotype"]]


def test_a_cell_missing_from_the_table_is_recorded_as_such(made_table: Path, tmp_path: Path) -> None:
    derived = str(_search(tmp_path / "full", made_table, epochs=1).genotype)
    partial = tmp_path / "partial.csv"
    partial.write_text("".join(line for line in made_table.read_text().splitlines(keepends=True)
                               if not line.startswith(derived + ",")))  # fmt: skip
    result = _search(tmp_path / "run", partial, epochs=1)
    assert str(result.genotype) == derived and result.history[0]["table"] is None and result.table is None
    bad = tmp_path / "bad.csv"
    bad.write_text("cell,valid_acc_12ep\nx,50\n")
    with pytest.raises(ArchsearchError, match=r"missing column\(s\) \['arch'\]"):
        _search(tmp_path / "bad", bad, epochs=1)
    assert not (tmp_path / "bad").exists()  # refused before the run directory is made


def test_spos_looks_its_winner_up(made_table: Path, tmp_path: Path) -> None:
    result = _search(tmp_path / "spos", made_table, method="spos", epochs=1, subnetwork_trials=3)
    assert result.table == _rows(made_table)[str(result.genotype)]
    assert "table" not in result.history[0]  # no architecture is derived per epoch: SPOS learns no alphas

"""The latency benchmark's row store: a killed run goes on where it stopped (stored rows are not run again, a row cut
off by the kill is), and rows measured with other settings are never mixed with new ones."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "latency_oneshot.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("latency_oneshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(**changes) -> argparse.Namespace:
    base = dict(width=0.25, subset=1500, epochs=5, trial_epochs=2, retrain_epochs=3, retrain_subset=3000,
                val_subset=500, method="spos", subnetwork_trials=50, path_sampling="uniform",
                multi_trial_factors="1,3", data_dir="unused")  # fmt: skip
    return argparse.Namespace(**{**base, **changes})


def _row(search: str, **more) -> dict:
    return {"dataset": "fashion-mnist", "limit_ms": 0.4, "seed": 0, "search": search, "genotype": "g",
            "seconds": 70.0, "test_acc": 76.0, **more}  # fmt: skip


def test_stored_rows_are_kept_and_a_cut_off_row_is_dropped(bench, tmp_path: Path) -> None:
    store = bench.RowStore(tmp_path, _args())
    store.add(_row("one-shot spos", options={}))
    del store
    with open(tmp_path / "rows.jsonl", "a") as f:
        f.write('{"dataset": "fashion-mnist", "lim')  # the kill came mid-write
    store = bench.RowStore(tmp_path, _args())
    assert [r["search"] for r in store.rows] == ["one-shot spos"]
    assert (tmp_path / "rows.jsonl").read_text().endswith("}\n")
    assert store.test_acc("fashion-mnist", "g") == 76.0 and store.test_acc("cifar10", "g") is None


def test_other_settings_are_refused_naming_them(bench, tmp_path: Path) -> None:
    bench.RowStore(tmp_path, _args())
    with pytest.raises(SystemExit, match=r"--epochs 5 \(stored\) against 10"):
        bench.RowStore(tmp_path, _args(epochs=10))


def test_a_second_process_is_refused(bench, tmp_path: Path) -> None:
    first = bench.RowStore(tmp_path, _args())
    with pytest.raises(SystemExit, match="another benchmark process"):
        bench.RowStore(tmp_path, _args())
    assert first.rows == []


def test_a_resumed_run_runs_only_what_is_missing(bench, tmp_path: Path, monkeypatch) -> None:
    """The stored one-shot row is not searched again, the stored 1x row not either; the 3x search gets three times
    the stored one-shot run's wall time."""
    options = {"subnetwork_trials": 50, "path_sampling": "uniform"}
    store = bench.RowStore(tmp_path, _args())
    store.add(_row("one-shot spos", options=options))
    store.add(_row("evolution, 1x spos's time"))
    monkeypatch.setattr(bench.archsearch, "oneshot", lambda *a, **k: pytest.fail("a stored search ran again"))
    asked = []

    def search(*args, seconds, **kwargs):
        asked.append(seconds)
        raise RuntimeError("stop here")

    monkeypatch.setattr(bench.archsearch, "search", search)
    with pytest.raises(RuntimeError, match="stop here"):
        bench.one_run("fashion-mnist", 0.4, 0, tmp_path / "lut.json", SimpleNamespace(build={"width": 0.25}), _args(),
                      tmp_path, store)  # fmt: skip
    assert asked == [210.0]
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2


def test_a_stored_run_with_other_subnetwork_options_is_refused(bench, tmp_path: Path) -> None:
    store = bench.RowStore(tmp_path, _args())
    store.add(_row("one-shot spos", options={"subnetwork_trials": 20, "path_sampling": "uniform"}))
    with pytest.raises(SystemExit, match="'subnetwork_trials': 20"):
        bench.one_run("fashion-mnist", 0.4, 0, tmp_path / "lut.json", None, _args(), tmp_path, store)


def test_a_killed_runs_directory_is_left_alone(bench, tmp_path: Path) -> None:
    (tmp_path / "oneshot_spos_0.4_0").mkdir()
    (tmp_path / "oneshot_spos_0.4_0-2").mkdir()
    assert bench.fresh_dir(tmp_path / "oneshot_spos_0.4_0") == tmp_path / "oneshot_spos_0.4_0-3"
    assert bench.fresh_dir(tmp_path / "other") == tmp_path / "other"

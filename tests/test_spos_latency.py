"""SPOS under a latency target: its search over the trained supernet's sub-networks keeps to the target as the
table predicts it, and the winner is measured (the next best taken when the measurement breaks the target)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archsearch.api import show
from archsearch.api.oneshot_search import oneshot
from archsearch.costs.lookup import LatencyTable
from archsearch.errors import ArchsearchError
from archsearch.oneshot import build_supernet
from archsearch.oneshot import latency as lat
from archsearch.store import Store
from archsearch.trial import COMPLETE

BUILD = {"width": 0.125, "head": 16}


def test_spos_searches_only_sub_networks_within_the_target_and_measures_its_winner(
    tiny_table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = LatencyTable.load(tiny_table)
    space = build_supernet("mobile", 1, 10, input_size=8, **BUILD).space
    rng = np.random.default_rng(0)
    target = float(np.median([table.predict(space.sample(rng), space) for _ in range(40)]))
    measured: list[Any] = []

    def as_predicted(net: Any, genotype: Any, tab: LatencyTable, limit: float | None = None, **_: Any) -> float:
        measured.append(genotype)
        return tab.predict(genotype, net.space)

    def never(*_: Any, **__: Any) -> float:
        raise AssertionError("the sub-network search measured a network: the table's prediction decides there")

    monkeypatch.setattr(lat, "measured_ms", as_predicted)
    monkeypatch.setattr("archsearch.costs.lookup.verified_ms", never)
    result = oneshot("spos", "mobile", "digits", tmp_path / "r", epochs=1, batch_size=16, supernet_options=BUILD,
                     subset=96, latency_table=tiny_table, latency_target_ms=target, subnetwork_trials=10,
                     path_sampling="uniform", plots=False)  # fmt: skip
    assert result.search_trials == 10
    assert measured == [result.genotype]  # the winner alone was measured
    assert result.measured_ms == pytest.approx(table.predict(result.genotype, space)) and result.measured_ms <= target
    store = Store(tmp_path / "r", readonly=True)
    try:
        trials = store.trials(space.from_json)
    finally:
        store.close()
    scored = [t for t in trials if t.status == COMPLETE]
    assert scored and all(t.metrics["latency_ms"] <= target for t in scored)
    shown = show(tmp_path / "r").oneshot
    assert shown is not None and shown.latency is not None
    assert shown.latency["target_ms"] == target and shown.latency["measured_ms"] == result.measured_ms


def test_a_winner_measured_over_the_target_gives_way_to_the_next_best(
    tiny_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = build_supernet("mobile", 1, 10, input_size=8, **BUILD)
    table = LatencyTable.load(tiny_table)
    rng = np.random.default_rng(1)
    ranked = [net.space.sample(rng) for _ in range(5)]
    target = lat.LatencyTarget(table, 1.0)
    readings = iter([1.5, 0.8])
    monkeypatch.setattr(lat, "measured_ms", lambda *_: next(readings))
    genotype, notes, ms = lat.first_measured_within(net, ranked, target)
    assert genotype is ranked[1] and ms == 0.8
    assert len(notes) == 1 and str(ranked[0]) in notes[0] and "passed over" in notes[0]
    monkeypatch.setattr(lat, "measured_ms", lambda *_: 2.0)
    with pytest.raises(ArchsearchError, match="none of the 4 best sub-networks met the 1 ms target"):
        lat.first_measured_within(net, ranked, target)


def test_spos_refuses_a_table_built_for_another_width(tiny_table: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchsearchError, match="width"):
        oneshot("spos", "mobile", "digits", tmp_path / "r", epochs=1, batch_size=16,
                supernet_options={**BUILD, "width": 0.25}, subset=96, latency_table=tiny_table,
                latency_target_ms=1.0, subnetwork_trials=2, plots=False)  # fmt: skip


def test_the_command_line_runs_spos_under_a_target(tiny_table: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from archsearch.cli import main

    rc = main(["oneshot", "--method", "spos", "--space", "mobile", "--dataset", "digits", "--subset", "64",
               "--epochs", "1", "--batch-size", "16", "--width", "0.125", "--head", "16", "--path-sampling", "uniform",
               "--spos-trials", "3", "--latency-table", str(tiny_table), "--latency-target-ms", "1000",
               "--out", str(tmp_path / "r")])  # fmt: skip
    assert rc in (0, None)
    out = capsys.readouterr().out
    assert re.search(r"latency: derived network measured [0-9.]+ ms against the 1000 ms target \(met\)", out), out

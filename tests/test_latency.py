"""Latency measured on each runtime, latency lookup tables (building, predicting, the file, the errors), and their use
by a search's constraints and objectives. Tiny networks and few repeats: these tests check behaviour, never speed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import archsearch
from archsearch.costs.lookup import LatencyTable, build_table, distinct_blocks, network_blocks
from archsearch.costs.runtime import TARGETS, measure
from archsearch.errors import ArchsearchError
from archsearch.spaces import get_space

SHAPE = (1, 12, 12)
BUILD = {"width": 0.125, "head": 16}
FAST = {"warmup": 1, "repeats": 3}


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return build_table("mobile", "eager", SHAPE, 4, BUILD, calibrate=2, profile=2, **FAST)


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_measures_a_median_with_its_spread(target: str) -> None:
    space = get_space("macro")
    model = space.build(space.parse("01201201"), 1, 4, 12, width=0.125)
    lat = measure(model, SHAPE, target, batch_size=2, threads=1, **FAST)
    assert lat.target == target and lat.repeats == 3 and lat.batch_size == 2 and lat.threads == 1
    assert 0 < lat.min_ms <= lat.q25_ms <= lat.median_ms <= lat.q75_ms <= lat.max_ms


def test_a_measurement_over_sessions_takes_the_lowest_median_and_keeps_every_call(monkeypatch) -> None:
    from archsearch.costs import runtime

    sessions = iter([[5.0, 6.0, 5.0], [1.0, 9.0, 1.0], [3.0, 3.0, 4.0]])  # the second session: one slow call
    prepared: list[object] = []
    monkeypatch.setattr(runtime, "prepare", lambda *args: prepared.append(args) or (lambda: None))
    monkeypatch.setattr(runtime, "time_calls", lambda *args: next(sessions))
    model = torch.nn.Conv2d(1, 1, 1)
    lat = measure(model, SHAPE, "onnxruntime", sessions=3, repeats=3)
    assert len(prepared) == 3  # a fresh session each
    assert lat.median_ms == 1.0 and lat.repeats == 9 and (lat.min_ms, lat.max_ms) == (1.0, 9.0)
    with pytest.raises(ArchsearchError, match="sessions >= 1"):
        measure(model, SHAPE, "eager", sessions=0)


def test_a_limit_is_decided_by_measuring_over_several_sessions(table: LatencyTable, monkeypatch) -> None:
    from archsearch.costs import lookup, runtime
    from archsearch.oneshot import latency as oneshot_latency

    calls: list[int] = []

    def spy(*args, sessions: int = 1, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(sessions)
        return runtime.Latency("eager", 1.0, 1.0, 1.0, 1.0, 1.0, 1, 1, 1)

    monkeypatch.setattr(runtime, "measure", spy)
    space = get_space("mobile")
    g = space.sample(np.random.default_rng(6))
    lookup.constrained_latency(table, g, space, space.build(g, SHAPE[0], 4, SHAPE[1], **BUILD), table.predict(g))
    net = type("Net", (), {"space": space})()
    oneshot_latency.measured_ms(net, g, table, 2.0)  # the one-shot derivation's check
    assert calls == [runtime.VERIFY_SESSIONS, runtime.VERIFY_SESSIONS] and runtime.VERIFY_SESSIONS > 1
    oneshot_latency.measured_ms(net, g, table, record=True)  # an epoch's record: one session
    assert calls[-1] == 1


def test_an_overrun_is_measured_again_after_a_pause_before_it_counts(monkeypatch) -> None:
    """A slow spell passes (the lowest of the rounds is taken); a network over its limit stays over after every
    pause; one under it is measured once."""
    from archsearch.costs import runtime

    pauses: list[float] = []
    monkeypatch.setattr(runtime.time, "sleep", pauses.append)
    model = torch.nn.Conv2d(1, 1, 1)

    def rounds(*medians: float) -> list[float]:
        readings = iter(medians)
        monkeypatch.setattr(runtime, "measure", lambda *a, **k: runtime.Latency("eager", next(readings), 0, 0, 0, 0,
                                                                                 1, 1, 1))  # fmt: skip
        pauses.clear()
        return [runtime.verified_ms(model, SHAPE, "eager", 1, 1, 1.0), *pauses]

    assert rounds(1.45, 0.98) == [0.98, 0.0, runtime.VERIFY_PAUSES_S[0]]  # a spell, then the network's own speed
    assert rounds(1.3, 1.2, 1.25) == [1.2, 0.0, *runtime.VERIFY_PAUSES_S]  # over every time: over
    assert rounds(0.9) == [0.9, 0.0]
    assert len(runtime.VERIFY_PAUSES_S) >= 1 and min(runtime.VERIFY_PAUSES_S) > 0


def test_a_table_holds_every_distinct_block_once(table: LatencyTable) -> None:
    space = get_space("mobile")
    # at full width every stage differs: stem, the fixed first block, 12 layer choices x (first layer, later layers)
    # per stage of depth > 1, 12 for the last stage (depth 1), head
    full = [k for k, _, _ in distinct_blocks(space, (3, 224, 224), 1000, {})]
    assert len(full) == len(set(full)) == 1 + 1 + 5 * 24 + 12 + 1
    keys = [k for k, _, _ in distinct_blocks(space, SHAPE, 4, BUILD)]  # narrow stages share blocks
    assert len(keys) == len(set(keys)) == len(table.entries) and set(keys) == set(table.entries)
    rng = np.random.default_rng(0)
    for _ in range(20):  # every sampled network's blocks are in the table
        g = space.sample(rng)
        assert all(k in table.entries for k, _, _ in network_blocks(space, g, SHAPE, 4, BUILD))
    assert table.calibrated_on == 2 and table.scale > 0


def test_an_eager_table_times_blocks_inside_networks(monkeypatch) -> None:
    from archsearch.costs import lookup as latency_lookup

    seen: list[int] = []
    real = latency_lookup._times_in_context

    def spy(space, genotypes, *args):  # type: ignore[no-untyped-def]
        seen.append(len(genotypes))
        return real(space, genotypes, *args)

    monkeypatch.setattr(latency_lookup, "_times_in_context", spy)
    alone = build_table("macro", "eager", SHAPE, 4, {"width": 0.125}, calibrate=0, profile=0, **FAST)
    inside = build_table("macro", "eager", SHAPE, 4, {"width": 0.125}, calibrate=0, profile=2, **FAST)
    assert seen == [2 + 3]  # two sampled networks and the three covering ones
    assert inside.overhead_ms == 0.0 < alone.overhead_ms and inside.entries.keys() == alone.entries.keys()
    onnx = build_table("macro", "onnxruntime", SHAPE, 4, {"width": 0.125}, calibrate=0, profile=2, **FAST)
    assert seen == [5] and onnx.overhead_ms > 0  # a graph runtime: blocks timed alone


def test_a_prediction_is_the_calibrated_sum_of_the_blocks(table: LatencyTable) -> None:
    space = get_space("mobile")
    g = space.sample(np.random.default_rng(3))
    blocks = network_blocks(space, g, SHAPE, 4, BUILD)
    expected = table.scale * (sum(table.entries[k] for k, _, _ in blocks) - (len(blocks) - 1) * table.overhead_ms)
    assert table.predict(g) == pytest.approx(expected)
    assert [k.split()[0] for k, _, _ in blocks][:2] == ["stem", "mb"] and blocks[-1][0].startswith("head")


def test_the_table_file_round_trips_and_bad_files_are_refused(table: LatencyTable, tmp_path: Path) -> None:
    path = table.save(tmp_path / "lut.json")
    again = LatencyTable.load(path)
    g = get_space("mobile").sample(np.random.default_rng(5))
    assert again.predict(g) == table.predict(g) and again.to_json() == table.to_json()
    bad = tmp_path / "bad.json"
    saved = table.to_json()
    for content, message in (("{", "not a latency table"), ('{"format": "x"}', "not a latency table"),
                              (json.dumps({**saved, "version": 9}), "version 9"),
                              (json.dumps({**saved, "entries": {"a": -1}}), "must be a finite number > 0"),
                              (json.dumps({**saved, "threads": "many"}), "threads must be a number")):  # fmt: skip
        bad.write_text(content)
        with pytest.raises(ArchsearchError, match=message):
            LatencyTable.load(bad)
    with pytest.raises(ArchsearchError, match="no such latency table"):
        LatencyTable.load(tmp_path / "missing.json")


def test_a_prediction_near_the_limit_is_checked_by_measuring(table: LatencyTable) -> None:
    from archsearch.costs.lookup import NEAR_LIMIT, constrained_latency

    space = get_space("mobile")
    g = space.sample(np.random.default_rng(6))
    model = space.build(g, SHAPE[0], 4, SHAPE[1], **BUILD)
    p = table.predict(g)
    far = constrained_latency(table, g, space, model, p * (1 + 2 * NEAR_LIMIT))
    assert far == {"latency_ms": p, "latency_predicted_ms": p, "latency_measured": 0.0}
    near = constrained_latency(table, g, space, model, p * (1 + NEAR_LIMIT / 2))
    assert near["latency_measured"] == 1.0 and near["latency_predicted_ms"] == p and near["latency_ms"] > 0
    assert constrained_latency(table, g, space, model, None)["latency_measured"] == 0.0


def test_a_table_for_another_setting_is_refused(table: LatencyTable) -> None:
    with pytest.raises(ArchsearchError, match="space 'mobile', not 'macro'"):
        table.check("macro")
    with pytest.raises(ArchsearchError, match="target 'eager', not 'onnxruntime'"):
        table.check("mobile", "onnxruntime")
    with pytest.raises(ArchsearchError, match=r"input shape \(1, 12, 12\), not \(1, 28, 28\)"):
        table.check("mobile", input_shape=(1, 28, 28))
    with pytest.raises(ArchsearchError, match="latency tables add up blocks of MobileNet-style networks"):
        network_blocks(get_space("nb201"), get_space("nb201").sample(np.random.default_rng(0)), SHAPE, 4, {})


def test_the_latency_command_measures_and_predicts(table: LatencyTable, tmp_path: Path, capsys) -> None:
    from archsearch.cli import main

    path = table.save(tmp_path / "lut.json")
    arch = str(get_space("mobile").sample(np.random.default_rng(1)))
    argv = ["latency", arch, "--target", "eager,onnxruntime", "--input-shape", "1,12,12", "--num-classes", "4",
            "--width", "0.125", "--head", "16", "--repeats", "3", "--warmup", "1", "--latency-table", str(path),
            "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["target"] for r in rows] == ["eager", "onnxruntime"]
    assert rows[0]["predicted_ms"] == pytest.approx(table.predict(get_space("mobile").parse(arch)))
    assert rows[1]["predicted_ms"] is None  # the table predicts eager only
    assert main(argv[:-3] + ["--latency-table", str(path), "--width", "0.25"]) == 2
    assert "build options {'width': 0.125, 'head': 16}, not {'width': 0.25, 'head': 16}" in capsys.readouterr().err


def test_the_latency_table_command_writes_the_file(tmp_path: Path, capsys) -> None:
    from archsearch.cli import main

    out = tmp_path / "t" / "lut.json"
    argv = ["latency-table", "--space", "macro", "--target", "onnxruntime", "--input-shape", "1,12,12",
            "--num-classes", "4", "--width", "0.125", "--repeats", "2", "--warmup", "0", "--calibrate", "1",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert f"wrote {out}: 20 blocks of space macro on onnxruntime" in capsys.readouterr().out
    saved = LatencyTable.load(out)
    assert (saved.space, saved.target, saved.input_shape, saved.build) == ("macro", "onnxruntime", (1, 12, 12),
                                                                           {"width": 0.125})  # fmt: skip


def _search(tmp_path: Path, name: str, **options: object) -> archsearch.api.SearchResult:
    return archsearch.search(space="mobile", strategy="random", budget=4, out=tmp_path / name, seed=0,
                             evaluator_options={"epochs": 1, "subset": 100, "build": dict(BUILD)},
                             **options)  # type: ignore[arg-type]  # fmt: skip


def test_a_search_constrains_latency_predicted_by_a_table(tmp_path: Path) -> None:
    digits = build_table("mobile", "eager", (1, 8, 8), 10, BUILD, calibrate=0, **FAST)
    path = digits.save(tmp_path / "lut.json")
    predicted = sorted(digits.predict(get_space("mobile").sample(np.random.default_rng(0))) for _ in range(3))
    limit = predicted[1]
    result = _search(tmp_path, "c", constraints=[f"latency_ms<={limit}"], latency_table=str(path))
    for t in result.best:
        assert t.metrics["latency_predicted_ms"] == pytest.approx(digits.predict(t.genotype))
        assert t.metrics["latency_ms"] <= limit
        if not t.metrics["latency_measured"]:  # measured only near the limit
            assert t.metrics["latency_ms"] == t.metrics["latency_predicted_ms"]
    assert result.config["objective"]["latency_table"]["entries"] == digits.entries  # the run keeps the table
    with pytest.raises(ArchsearchError, match="target 'eager', not 'onnxruntime'"):
        _search(tmp_path, "t", constraints=["latency_ms<=1"], latency_table=str(path), latency_target="onnxruntime")
    with pytest.raises(ArchsearchError, match="no constraint or objective uses latency_ms"):
        _search(tmp_path, "n", latency_table=str(path))
    other = build_table("mobile", "eager", (1, 12, 12), 10, BUILD, calibrate=0, **FAST).save(tmp_path / "o.json")
    with pytest.raises(ArchsearchError, match=r"input shape \(1, 12, 12\), not \(1, 8, 8\)"):
        _search(tmp_path, "s", constraints=["latency_ms<=1"], latency_table=str(other))
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_nsga2_searches_accuracy_against_measured_latency(tmp_path: Path) -> None:
    result = archsearch.search(space="mobile", strategy="nsga2", budget=6, out=tmp_path / "r", seed=0,
                               objectives="val_acc,latency_ms", latency_target="onnxruntime",
                               strategy_options={"population_size": 3},
                               evaluator_options={"epochs": 1, "subset": 100, "build": dict(BUILD)})  # fmt: skip
    assert result.config["strategy_options"]["objectives"] == ["val_acc", "latency_ms"]
    assert result.front and all("latency_ms" in t.metrics for t in result.front)
    assert result.hypervolume is not None and result.hypervolume > 0
    with pytest.raises(ArchsearchError, match="nsga2 is multi-objective: name two or more --objectives"):
        archsearch.api.make_config(space="mobile", strategy="nsga2")


def test_a_call_overhead_timed_above_the_blocks_never_makes_a_prediction_negative(monkeypatch) -> None:
    """Noise on a few quick repeats can time the one-element ReLU above small blocks; the table then counts the
    overhead as at most its smallest entry, so every prediction stays a latency."""
    import archsearch.costs.lookup as lookup
    from archsearch.costs.runtime import Latency

    def timed(module, *args, **kwargs):  # type: ignore[no-untyped-def]
        ms = 5.0 if isinstance(module, torch.nn.ReLU) else 1.0 + 1e-4 * sum(p.numel() for p in module.parameters())
        return Latency("onnxruntime", ms, ms, ms, ms, ms, 1, 1, 1)

    monkeypatch.setattr(lookup, "measure", timed)
    table = build_table("macro", "onnxruntime", SHAPE, 4, {"width": 0.125}, calibrate=0, profile=0, **FAST)
    assert table.overhead_ms == min(table.entries.values())
    space = get_space("macro")
    assert all(table.predict(space.parse(text)) > 0 for text in ("00000000", "22222222", "21102120"))

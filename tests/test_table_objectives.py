"""Any table, any objective: joined tables, columns as objectives and constraints, params and FLOPs counted on a
table search, the multi-objective benchmark scored against the true front, and device latency models."""

from __future__ import annotations

import csv
import functools
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archsearch
import archsearch.costs.device_model
from archsearch import ArchsearchError
from archsearch.cli import main
from archsearch.comparison.pareto import TrueFront
from archsearch.evaluators import Table
from archsearch.objectives import Objective, hypervolume, non_dominated_sort, pareto_front
from archsearch.spaces import get_space
from archsearch.spaces.nb201 import NB201_OPS, NB201Genotype

#: a made-up device: each op costs this much per edge, plus a fixed 1 ms
OP_MS = {"none": 0.0, "skip_connect": 0.1, "avg_pool_3x3": 0.4, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}


def _phone_ms(ops: tuple[str, ...]) -> float:
    return 1.0 + sum(OP_MS[o] for o in ops)


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made-up measured latencies of every NB201 cell on two devices, in the layout of the shared device table."""
    path = tmp_path_factory.mktemp("devices") / "devices.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "arch", "phone_ms", "board_ms"])
        for n, ops in enumerate(itertools.product(NB201_OPS, repeat=6)):
            phone = _phone_ms(ops)
            writer.writerow([n, str(NB201Genotype(ops)), f"{phone:.4f}", f"{3 * phone + 0.5:.4f}"])
    return path


# --- fronts and hypervolume -------------------------------------------------------------------------------------
def test_hypervolume_of_a_tiny_front_by_hand() -> None:
    # maximise accuracy, minimise latency; reference (acc 50, 10 ms)
    points = np.array([[90.0, 8.0], [80.0, 4.0], [60.0, 2.0], [70.0, 9.0]])  # the last is dominated by (80, 4)
    # strips from the best accuracy down: (90-50)*(10-8) + (80-50)*(8-4) + (60-50)*(4-2) = 80 + 120 + 20
    assert hypervolume(points, (True, False), (50.0, 10.0)) == pytest.approx(220.0)
    assert pareto_front(points, (True, False)) == [0, 1, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30), st.booleans(),
       st.booleans())  # fmt: skip
def test_the_two_objective_sweep_finds_the_first_front_of_the_full_sort(pts: list, up_a: bool, up_b: bool) -> None:
    points = np.array(pts, dtype=float)
    assert pareto_front(points, (up_a, up_b)) == sorted(non_dominated_sort(points, (up_a, up_b))[0])


def test_the_true_front_of_a_made_up_table(tmp_path: Path) -> None:
    arch = [str(NB201Genotype((op,) * 6)) for op in NB201_OPS]
    rows = [(arch[0], 10.0, 10.0, 0.5), (arch[1], 50.0, 60.0, 1.0), (arch[2], 80.0, 85.0, 4.0),
            (arch[3], 90.0, 94.0, 8.0), (arch[4], 40.0, 45.0, 6.0)]  # fmt: skip
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("arch", "valid_acc_12ep", "test_acc_200ep", "ms"), *rows])
    objective = Objective.from_strings(objectives="valid_acc_12ep,ms:min")
    truth = TrueFront.of(Table(path), objective, get_space("nb201"))
    assert truth.names == ["test_acc_200ep", "ms"]  # scored on the reported accuracy
    assert sorted(truth.points[:, 0].tolist()) == [10.0, 60.0, 85.0, 94.0]  # the pool (45, 6 ms) is dominated
    assert truth.reference == [10.0, 8.0]  # the front's nadir
    # (94-10)*(8-8) + (85-10)*(8-4) + (60-10)*(4-1) + (10-10)*(1-0.5) = 300 + 150
    assert truth.volume == pytest.approx(450.0)
    assert truth.share(truth.points) == pytest.approx(100.0)
    assert truth.share(np.array([[85.0, 4.0]])) == pytest.approx(100 * 300 / 450)


# --- columns as objectives and constraints ----------------------------------------------------------------------
def test_a_column_needs_its_direction_and_a_table(made_table: Path, devices: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchsearchError, match="write phone_ms:min or phone_ms:max"):
        Objective.from_strings(objectives="val_acc,phone_ms")
    with pytest.raises(ArchsearchError, match="lower-is-better; it cannot be given :max"):
        Objective.from_strings(objectives="val_acc,params:max")
    assert Objective.from_strings(objectives="valid_acc_12ep,phone_ms:min").columns == {
        "valid_acc_12ep": True, "phone_ms": False}  # fmt: skip
    with pytest.raises(ArchsearchError, match="needs a search on that table"):
        archsearch.search(space="nb201", objectives="val_acc,phone_ms:min", budget=2, out=tmp_path / "a")
    with pytest.raises(ArchsearchError, match="speed_ms: not a column"):
        archsearch.search(space="nb201", table=[made_table, devices], constraints=["speed_ms<=3"], budget=2,
                          out=tmp_path / "b")  # fmt: skip
    assert not (tmp_path / "b").exists()
    with pytest.raises(ArchsearchError, match=r"missing\.csv: no such table file"):
        archsearch.search(space="nb201", table=[made_table, tmp_path / "missing.csv"], budget=2,
                          objectives="val_acc,phone_ms:min", out=tmp_path / "c")  # fmt: skip


def test_joined_tables_must_hold_the_same_architectures(made_table: Path, devices: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    lines = devices.read_text().splitlines()
    short.write_text("\n".join(lines[:-1]) + "\n")
    missing = lines[-1].split(",")[1]
    with pytest.raises(ArchsearchError, match=rf"short.csv: no row for architecture '{re.escape(missing[:20])}"):
        Table(made_table, join=[short])
    clash = tmp_path / "clash.csv"
    clash.write_text("arch,valid_acc_12ep\n" + "\n".join(f"{line.split(',')[1]},1" for line in lines[1:]) + "\n")
    with pytest.raises(ArchsearchError, match=r"\['valid_acc_12ep'\] are already in made_nb201.csv"):
        Table(made_table, join=[clash])


def test_a_column_constraint_and_objective_drive_the_search(made_table: Path, devices: Path, tmp_path: Path) -> None:
    result = archsearch.search(space="nb201", strategy="nsga2", table=[str(made_table), str(devices)], budget=60,
                               objectives="val_acc,phone_ms:min", constraints=["board_ms<=20"], seed=1,
                               out=tmp_path / "run")  # fmt: skip
    trials = result.best
    assert trials and result.front and result.hypervolume is not None and result.infeasible > 0
    for t in trials:  # the columns came from the joined table, row for row
        assert t.metrics["phone_ms"] == pytest.approx(_phone_ms(t.genotype.ops), abs=1e-3)
        assert t.metrics["board_ms"] <= 20
    assert result.config["objective"]["columns"] == {"phone_ms": False, "board_ms": None}
    assert main(["show", str(tmp_path / "run"), "--json"]) == 0
    page = archsearch.report(tmp_path / "run").path.read_text()  # the Pareto front drawn over the column
    assert "Pareto front" in page and "phone_ms" in page


def test_params_and_flops_are_counted_on_a_table_search(made_table: Path, tmp_path: Path) -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    for g in [space.sample(rng) for _ in range(3)]:  # the fast count equals a real build's
        assert space.counts(g) == super(type(space), space).counts(g)
    result = archsearch.search(space="nb201", strategy="nsga2", table=str(made_table), budget=30,
                               objectives="val_acc,params", constraints=["flops<=150M"],
                               out=tmp_path / "run")  # fmt: skip
    assert result.front and all(t.metrics["flops"] <= 150e6 for t in result.best)
    assert all(t.metrics["params"] == space.counts(t.genotype)["params"] for t in result.best)
    best = get_space("nb201").parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                                    "nor_conv_3x3~1|nor_conv_1x1~2|")  # fmt: skip
    assert space.counts(best)["params"] == 1_073_466  # NAS-Bench-201 lists this cell at 1.073 MB of parameters


# --- the benchmark on any table ---------------------------------------------------------------------------------
def test_benchmark_on_a_nas_bench_macro_table(tmp_path: Path, capsys) -> None:
    space = get_space("macro")
    score = {g.key: float(sum(int(c) * (i + 1) for i, c in enumerate(g.key))) for g in space.enumerate()}
    path = tmp_path / "macro.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "acc_run0", "acc_runs12"])
        writer.writerows((str(g), score[g.key], score[g.key] / 2) for g in space.enumerate())
    argv = ["benchmark", "--space", "macro", "--table", str(path), "--table-signal", "acc_run0", "--table-report",
            "acc_runs12", "--strategies", "random,evolution", "--queries", "40", "--seeds", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["strategy"] for r in rows] == ["random", "evolution"]
    assert all(0 < r["mean"] <= max(score.values()) / 2 for r in rows)


def test_multi_objective_benchmark_scores_fronts_against_the_true_one(made_table: Path, devices: Path,
                                                                        tmp_path: Path, capsys) -> None:  # fmt: skip
    report = tmp_path / "bench.html"
    argv = ["benchmark", "--table", str(made_table), "--table", str(devices), "--objectives",
            "valid_acc_12ep,phone_ms:min", "--strategies", "nsga2,random", "--queries", "60", "--seeds", "2",
            "--report", str(report), "--json"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    shares = {r["strategy"]: r for r in rows if "strategy" in r}
    assert set(shares) == {"nsga2", "random"}
    for r in shares.values():
        assert 0 < r["hv_share_mean"] <= 100 and set(r["by_budget"]) == {"25", "50", "60"}
        assert r["by_budget"]["25"] <= r["by_budget"]["60"]  # a front only grows
        assert 0 < r["searched_by_budget"]["60"] <= 100
    page = report.read_text()
    assert "Hypervolume share" in page and "true front" in page


def test_motpe_follows_every_objective_and_resumes_exactly(made_table: Path, devices: Path) -> None:
    """Optuna's multi-objective TPE is told each trial's objective values; its state rebuilds the same study."""
    from archsearch.strategies import get_strategy
    from archsearch.trial import COMPLETE, Trial

    space = get_space("nb201")
    table = Table(made_table, join=[devices])

    def drive(strategy, n: int, start: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
        keys = []
        for number in range(start, start + n):
            (g,) = strategy.ask(1)
            row = table.lookup(str(g))
            metrics = {"val_acc": row["valid_acc_12ep"], "phone_ms": row["phone_ms"]}
            strategy.tell([Trial(number, g, g.key, COMPLETE, metrics, metrics["val_acc"])])
            keys.append(g.key)
        return keys

    original = get_strategy("motpe", space, seed=3, startup=4, objectives=["val_acc", "phone_ms:min"])
    drive(original, 12)
    assert original.study.directions[1].name == "MINIMIZE" and len(original.study.best_trials) >= 1
    state = json.loads(json.dumps(original.state_dict()))
    restored = get_strategy("motpe", space, seed=3, startup=4, objectives=["val_acc", "phone_ms:min"])
    restored.load_state_dict(state)
    assert drive(original, 6, 12) == drive(restored, 6, 12)
    with pytest.raises(ArchsearchError, match="motpe needs two or more known objectives"):
        get_strategy("motpe", space, objectives=["val_acc", "phone_ms"])


def test_a_multi_objective_strategy_needs_objectives_in_the_benchmark(made_table: Path) -> None:
    with pytest.raises(ArchsearchError, match="nsga2 is multi-objective"):
        archsearch.benchmark(made_table, "nsga2", queries=5, seeds=1)


def test_strategy_options_reach_the_strategy_in_the_benchmark(made_table: Path, devices: Path, monkeypatch,
                                                             capsys) -> None:  # fmt: skip
    from archsearch.strategies.nsga2 import NSGA2

    sizes = []
    original = NSGA2.__init__

    @functools.wraps(original)  # the option check reads the signature
    def recording(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(kwargs.get("population_size"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(NSGA2, "__init__", recording)
    argv = ["benchmark", "--table", str(made_table), "--table", str(devices), "--objectives",
            "valid_acc_12ep,phone_ms:min", "--strategies", "nsga2", "--queries", "10", "--seeds", "1",
            "--strategy-option", "nsga2.population_size=4", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert sizes and set(sizes) == {4}
    assert main([*argv[:-1], "--strategy-option", "random.x=1"]) == 2
    assert "strategy options for random, which the benchmark does not run" in capsys.readouterr().err


# --- device latency models --------------------------------------------------------------------------------------
def _measured(path: Path, rows: list[tuple[str, float]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("arch", "latency_ms"), *rows])
    return path


def _sample(n: int, seed: int = 0) -> list[NB201Genotype]:
    space, rng = get_space("nb201"), np.random.default_rng(seed)
    out: dict[str, NB201Genotype] = {}
    while len(out) < n:
        g = space.sample(rng)
        out[g.key] = g
    return list(out.values())


def test_a_latency_model_learns_an_additive_device_from_twelve_networks(tmp_path: Path, capsys) -> None:
    measured = _measured(tmp_path / "phone.csv", [(str(g), _phone_ms(g.ops)) for g in _sample(12)])
    out = tmp_path / "phone.json"
    assert main(["latency-model", "fit", "--space", "nb201", "--measured", str(measured), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    model = archsearch.costs.device_model.LatencyModel.load(out)
    others = _sample(200, seed=1)
    predicted = model.predict(others, get_space("nb201"))
    assert np.allclose(predicted, [_phone_ms(g.ops) for g in others], rtol=0.02)
    arch = str(others[0])
    assert main(["cost", arch, "--space", "nb201", "--latency-model", str(out), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["latency_ms"] == pytest.approx(predicted[0])
    assert main(["cost", arch, "--latency-model", str(out), "--runs", "5"]) == 2
    assert "predicted, not timed" in capsys.readouterr().err
    with pytest.raises(ArchsearchError, match="latency=False skips latency; latency_model predicts it"):
        archsearch.cost([arch], latency=False, latency_model=out)


def test_a_latency_model_uses_a_reference_device(tmp_path: Path, devices: Path) -> None:
    """The phone is a non-linear function of the op counts here (squared), but a straight line of the board."""
    genotypes = _sample(10)
    measured = _measured(tmp_path / "m.csv", [(str(g), 0.2 * _phone_ms(g.ops) ** 2) for g in genotypes])
    ref = tmp_path / "ref.csv"
    with ref.open("w", newline="") as f:
        every = itertools.product(NB201_OPS, repeat=6)
        rows = [(str(NB201Genotype(o)), f"{_phone_ms(o) ** 2:.5f}") for o in every]
        csv.writer(f).writerows([("arch", "squared_ms"), *rows])
    written = archsearch.fit_latency_model("nb201", measured, tmp_path / "m.json", reference=ref)
    assert written.reference_columns == ["squared_ms"]
    assert any(m["features"].startswith("reference") for m in written.members)
    model = archsearch.costs.device_model.LatencyModel.load(written.path)
    others = _sample(100, seed=2)
    assert np.allclose(model.predict(others, get_space("nb201")), [0.2 * _phone_ms(g.ops) ** 2 for g in others],
                       rtol=0.05)  # fmt: skip


def test_a_latency_model_is_the_mean_of_its_choices_on_every_leave_one_out_subset() -> None:
    """A noisy, non-linear device: the feature sets chosen differ between subsets, and the merged members (one per
    feature set) predict exactly the mean of the k + 1 choices."""
    dm = archsearch.costs.device_model
    space, rng = get_space("nb201"), np.random.default_rng(3)
    genotypes = _sample(8, seed=4)
    measured = [(g, _phone_ms(g.ops) ** 1.5 * rng.uniform(0.8, 1.2)) for g in genotypes]
    model = dm.fit(measured, space)
    assert len({m.features for m in model.members}) == len(model.members)
    assert sum(m.weight for m in model.members) == pytest.approx(1.0)
    raws = [dm.raw_features(g, space, "ops+size", None) for g in genotypes]
    y = np.array([ms for _, ms in measured])
    others = _sample(50, seed=5)
    test = [dm.raw_features(g, space, "ops+size", None) for g in others]
    choices = []
    for keep in [list(range(8))] + [[j for j in range(8) if j != i] for i in range(8)]:
        chosen = dm.choose([raws[j] for j in keep], y[keep], dm.candidates(None))[1]
        for m in chosen:
            m.weight = 1 / len(chosen)
        choices.append(dm.LatencyModel("nb201", chosen, len(keep)).predict_features(test))
    assert len({tuple(np.round(c, 6)) for c in choices}) > 1  # the subsets do not all agree
    assert np.allclose(model.predict(others, space), np.mean(choices, axis=0), rtol=1e-9)


def test_a_search_on_the_table_meets_a_predicted_latency_limit(made_table: Path, devices: Path,
                                                              tmp_path: Path) -> None:  # fmt: skip
    measured = _measured(tmp_path / "phone.csv", [(str(g), _phone_ms(g.ops)) for g in _sample(10)])
    model = archsearch.fit_latency_model("nb201", measured, tmp_path / "phone.json").path
    result = archsearch.search(space="nb201", strategy="evolution", table=str(made_table), budget=60,
                               constraints=["latency_ms<=6"], latency_model=model, out=tmp_path / "run")  # fmt: skip
    assert result.winner is not None and _phone_ms(result.winner.genotype.ops) <= 6 + 0.1
    assert result.config["objective"]["latency_model"]["space"] == "nb201"  # the run keeps its model
    argv = ["search", "--table", str(made_table), "--trials", "3", "--constraint", "latency_ms<=6",
            "--latency-model", str(model), "--out", str(tmp_path / "cli")]  # fmt: skip
    assert main(argv) == 0
    config = archsearch.show(tmp_path / "cli").config
    assert config["objective"]["latency_model"] == json.loads(Path(model).read_text())  # the option reached it


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("Genotype(normal=[])", 1.0)] * 3, r"m.csv:2: arch .* is not a nb201 architecture"),
        ([("{a}", 1.0), ("{b}", 2.0), ("{a}", 3.0)], r"m.csv:4: architecture .* is measured twice \(line 2\)"),
        ([("{a}", 1.0), ("{b}", -2.0), ("{c}", 3.0)], r"m.csv:3: latency_ms must be a finite number >= 0, got -2.0"),
        ([("{a}", 1.0), ("{b}", 2.0)], r"m.csv: 2 measured network\(s\); a latency model needs at least 3"),
    ],
)
def test_bad_measurements_are_one_line_and_write_nothing(rows: list, message: str, tmp_path: Path, capsys) -> None:
    a, b, c = (str(g) for g in _sample(3))
    measured = _measured(tmp_path / "m.csv", [(arch.format(a=a, b=b, c=c), ms) for arch, ms in rows])
    out = tmp_path / "m.json"
    assert main(["latency-model", "fit", "--space", "nb201", "--measured", str(measured), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == [measured]


def test_a_model_of_another_space_is_refused(tmp_path: Path, made_table: Path, capsys) -> None:
    measured = _measured(tmp_path / "m.csv", [(str(g), _phone_ms(g.ops)) for g in _sample(5)])
    model = archsearch.fit_latency_model("nb201", measured, tmp_path / "m.json").path
    argv = ["search", "--space", "macro", "--trials", "2", "--constraint", "latency_ms<=6", "--latency-model",
            str(model), "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "fitted on space nb201, not macro" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    argv = ["search", "--table", str(made_table), "--trials", "2", "--constraint", "latency_ms<=6", "--latency-model",
            str(model), "--latency-target", "onnxruntime", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2 and "with --latency-model it is predicted" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**json.loads(Path(model).read_text()), "members": [{"features": "ops"}]}))
    with pytest.raises(ArchsearchError, match=r"broken\.json: a model member's names"):
        archsearch.costs.device_model.LatencyModel.load(broken)

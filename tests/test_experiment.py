import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from archsearch.api import search
from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective, hypervolume, non_dominated_sort, pareto_front, parse_limit
from archsearch.spaces import get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy
from archsearch.testing.strategy_suite import toy_score

SPACE = get_space("nb201")


class ToyEvaluator(Evaluator):
    """Scores cells by the toy objective; fails on request; counts calls; builds small NB201 networks."""

    name = "toy"

    def __init__(self, fail_every: int = 0, nan_every: int = 0) -> None:
        self.calls = 0
        self.fail_every, self.nan_every = fail_every, nan_every

    def network(self, genotype, seed=None):
        return SPACE.build(genotype, 3, 10, 8, seed=seed, channels=4, cells_per_stage=1), (3, 8, 8)

    def evaluate(self, genotype, fidelity=None, seed=None):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError(f"boom on call {self.calls}")
        if self.nan_every and self.calls % self.nan_every == 0:
            return {"val_acc": float("nan")}
        return {"val_acc": 100 * toy_score(genotype)}


def _run(
    tmp_path: Path,
    evaluator: Evaluator,
    trials: int = 30,
    objective: Objective | None = None,
    strategy: str = "evolution",
    **budget,
) -> tuple[Experiment, object]:
    store = Store(tmp_path)
    exp = Experiment(
        SPACE,
        get_strategy(strategy, SPACE, seed=0),
        evaluator,
        objective or Objective(),
        Budget(trials=trials, **budget),
        store,
    )
    return exp, exp.run()


def test_failed_and_nan_trials_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    exp, result = _run(tmp_path, ToyEvaluator(fail_every=4, nan_every=7), trials=30)
    trials = exp.store.trials(SPACE.from_json)
    assert len(trials) == 30 and result.trials == 30
    failed = [t for t in trials if t.status == "failed"]
    assert any("RuntimeError: boom" in t.error for t in failed)
    assert any("not finite" in t.error for t in failed)
    assert all(t.score is None for t in failed) and result.failed == len(failed) >= 6
    assert result.winner is not None and math.isfinite(result.winner.score)


def test_constraints_are_checked_before_evaluation_and_never_violated(tmp_path: Path) -> None:
    evaluator = ToyEvaluator()
    rng = np.random.default_rng(0)
    sizes = [sum(p.numel() for p in evaluator.network(SPACE.sample(rng))[0].parameters()) for _ in range(40)]
    limit = float(np.median(sizes))
    exp, result = _run(tmp_path, evaluator, trials=40, objective=Objective(limits={"params": limit}))
    trials = exp.store.trials(SPACE.from_json)
    complete = [t for t in trials if t.status == "complete"]
    infeasible = [t for t in trials if t.status == "infeasible"]
    assert complete and infeasible and result.infeasible == len(infeasible)
    assert all(t.metrics["params"] <= limit for t in complete)
    assert all(t.metrics["params"] > limit and "params" in t.error for t in infeasible)
    assert evaluator.calls == len(complete)  # infeasible networks were never evaluated


@pytest.mark.parametrize("limit", ["train_peak_mb", "latency_ms"])
def test_measured_constraints_need_an_evaluator_that_builds_networks(limit: str, tmp_path: Path,
                                                                     made_table: Path) -> None:  # fmt: skip
    """Params and FLOPs are counted on a table search (tests/test_table_objectives.py); what must be measured on a
    built network (peak memory, timed latency without a device model) is refused."""
    from archsearch.evaluators import TableEvaluator

    table = TableEvaluator(made_table)
    with pytest.raises(ArchsearchError, match="builds no network"):
        Experiment(
            SPACE, get_strategy("random", SPACE), table, Objective(limits={limit: 1e6}), Budget(5), Store(tmp_path)
        ).run()


class _Stubborn:
    """A strategy that proposes one cell forever."""

    name = "stubborn"

    def __init__(self) -> None:
        self.told = 0
        self.g = SPACE.sample(np.random.default_rng(0))

    def ask(self, n=1):
        return [self.g] * n

    def tell(self, trials):
        self.told += len(trials)

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_repeated_architectures_are_answered_from_the_store(tmp_path: Path) -> None:
    evaluator, strategy = ToyEvaluator(), _Stubborn()
    exp = Experiment(SPACE, strategy, evaluator, Objective(), Budget(trials=10, max_repeats=25), Store(tmp_path))
    result = exp.run()
    assert evaluator.calls == 1 and result.trials == 1 and result.repeats == 25
    assert result.stop_reason == "repeats" and strategy.told == 26


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    _run(tmp_path, ToyEvaluator(), trials=3)
    with pytest.raises(ArchsearchError, match="already holds an experiment"):
        _run(tmp_path, ToyEvaluator(), trials=3)


def test_seconds_budget_stops_the_search(tmp_path: Path) -> None:
    class Slow(ToyEvaluator):
        def evaluate(self, genotype, fidelity=None, seed=None):
            time.sleep(0.05)
            return super().evaluate(genotype, fidelity, seed)

    _, result = _run(tmp_path, Slow(), trials=1000, seconds=0.5)
    assert result.stop_reason == "seconds" and 3 <= result.trials < 30


def test_in_process_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    class Crash(ToyEvaluator):
        def evaluate(self, genotype, fidelity=None, seed=None):
            if self.calls == 12:
                raise KeyboardInterrupt  # like a Ctrl-C or kill mid-trial: not a trial failure
            return super().evaluate(genotype, fidelity, seed)

    for strategy in ("evolution", "bayes", "local", "reinforce"):
        full_dir, cut_dir = tmp_path / f"{strategy}-full", tmp_path / f"{strategy}-cut"
        full, _ = _run(full_dir, ToyEvaluator(), trials=25, strategy=strategy)
        with pytest.raises(KeyboardInterrupt):
            _run(cut_dir, Crash(), trials=25, strategy=strategy)
        store = Store(cut_dir)
        assert len(store.trials(SPACE.from_json)) == 12
        strategy_again = get_strategy(strategy, SPACE, seed=0)
        resumed = Experiment(SPACE, strategy_again, ToyEvaluator(), Objective(), Budget(25), store)
        resumed.run(resume=True)
        rows = lambda s: [(t.number, t.key, t.status, t.score) for t in s.trials(SPACE.from_json)]  # noqa: E731
        assert rows(store) == rows(full.store), strategy


def test_pareto_front_and_hypervolume_on_hand_made_points() -> None:
    # maximise accuracy, minimise params
    points = np.array([[90, 5], [92, 8], [85, 2], [91, 9], [92, 7], [80, 3], [85, 2]])
    dirs = (True, False)
    assert sorted(pareto_front(points, dirs)) == [0, 2, 4, 6]
    fronts = non_dominated_sort(points, dirs)
    # (92, 8) dominates (91, 9), so (91, 9) is alone in the third front
    assert [sorted(int(i) for i in f) for f in fronts] == [[0, 2, 4, 6], [1, 5], [3]]
    # reference (80 accuracy, 10 params): boxes from the front, sorted by accuracy
    # (92,7): 12*3 = 36; (90,5): 10*(5-3)... computed as the union area
    hv = hypervolume(points, dirs, (80, 10))
    assert hv == pytest.approx((92 - 80) * (10 - 7) + (90 - 80) * (7 - 5) + (85 - 80) * (5 - 2))
    assert hypervolume(points[:0], dirs, (80, 10)) == 0.0
    with pytest.raises(ArchsearchError, match="exactly two objectives"):
        hypervolume(np.ones((3, 3)), (True, True, True), (0, 0, 0))


def test_objective_parsing_and_errors() -> None:
    assert parse_limit("params<=1.5M") == ("params", 1.5e6)
    assert parse_limit("latency_ms<20") == ("latency_ms", 20.0)
    assert parse_limit("pixel3_ms<=5") == ("pixel3_ms", 5.0)  # a table's column: checked against the table
    for bad in ("val_acc<=3", "params=>3", "depth<=three"):  # a built-in metric that is not a cost; not a limit
        with pytest.raises(ArchsearchError, match="METRIC<=VALUE"):
            parse_limit(bad)
    with pytest.raises(ArchsearchError, match="cannot limit 'depth'"):
        Objective(limits={"depth": 3.0})
    with pytest.raises(ArchsearchError, match="unknown metric 'speed'"):
        Objective(metric="speed")
    assert Objective(metric="params").score({"params": 10}) == -10


def test_search_api_on_the_table(tmp_path: Path, nb201_table: Path) -> None:
    table = nb201_table
    result = search(
        space="nb201",
        strategy="local",
        budget=60,
        table=str(table),
        out=tmp_path / "run",
        seed=1,
        objectives="val_acc,valid_acc_200ep",
    )
    assert result.trials == 60 and result.winner.metrics["test_acc"] > 90
    assert result.front and result.hypervolume is not None and result.hypervolume > 0


def test_process_pool_records_every_trial_once(tmp_path: Path, made_table: Path) -> None:
    table = str(made_table)
    result = search(space="nb201", strategy="random", budget=12, table=table, out=tmp_path / "pool", workers=2)
    db = sqlite3.connect(tmp_path / "pool" / "experiment.sqlite")
    rows = db.execute("SELECT number, key, status FROM trials ORDER BY number").fetchall()
    assert result.trials == 12 and [r[0] for r in rows] == list(range(12))
    assert len({r[1] for r in rows}) == 12 and all(r[2] == "complete" for r in rows)


def _search_cmd(out: Path, trials: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "archsearch.cli",
        "search",
        "--space",
        "nb201",
        "--strategy",
        "evolution",
        "--dataset",
        "digits",
        "--evaluator",
        "proxy",
        "--subset",
        "200",
        "--epochs",
        "1",
        "--channels",
        "4",
        "--cells-per-stage",
        "1",
        "--trials",
        str(trials),
        "--out",
        str(out),
        "--json",
    ]


def _rows(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "experiment.sqlite")
    rows = db.execute("SELECT number, key, status, score, metrics FROM trials ORDER BY number").fetchall()
    db.close()
    return [
        (n, k, s, sc, {m: v for m, v in __import__("json").loads(me).items() if m != "train_seconds"})
        for n, k, s, sc, me in rows
    ]


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARCHSEARCH_TEST": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_search_cmd(full, 12), check=True, capture_output=True, env=env)
    proc = subprocess.Popen(_search_cmd(cut, 12), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.02)  # a trial takes about 0.1 s: poll often enough to kill the run half-way
        if (cut / "experiment.sqlite").exists():
            try:
                if len(_rows(cut)) >= 3:
                    break
            except sqlite3.OperationalError:
                continue
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    killed_at = len(_rows(cut))
    assert 3 <= killed_at < 12
    subprocess.run(_search_cmd(cut, 12)[:-1] + ["--resume", "--json"], check=True, capture_output=True, env=env)
    assert _rows(cut) == _rows(full)

"""Executors: worker processes with a per-trial timeout and retries of trials whose worker died; one worker
reproduces the inline sequence; kill -9 of the driver with trials in flight, then resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsearch.api import search
from archsearch.executors import EvaluatorSpec, ProcessExecutor, TrialTimeout, WorkerDied
from archsearch.spaces import get_space
from archsearch.testing.evaluators import FaultEvaluator

FAULT = "archsearch.testing.evaluators:FaultEvaluator"
SPACE = get_space("nb201")


def _rows(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "experiment.sqlite")
    rows = db.execute("SELECT number, key, status, score, error, attempts FROM trials ORDER BY number").fetchall()
    db.close()
    return rows


def test_timeout_fails_the_hanging_trial_and_the_search_goes_on(tmp_path: Path) -> None:
    hang = str(SPACE.sample(__import__("numpy").random.default_rng(0)))  # random search with seed 0 asks it first
    result = search(
        space="nb201",
        strategy="random",
        budget=4,
        out=tmp_path / "run",
        evaluator=FAULT,
        evaluator_options={"hang": [hang], "seconds": 0.05},
        trial_timeout=3,
        workers=2,
    )
    rows = _rows(tmp_path / "run")
    assert result.trials == 4 and len(rows) == 4
    hung = [r for r in rows if r[1] == hang]
    assert len(hung) == 1 and hung[0][2] == "failed" and "TrialTimeout: timed out after 3 s" in hung[0][4]
    assert sum(r[2] == "complete" for r in rows) == 3


def test_a_killed_worker_is_retried_then_given_up(tmp_path: Path) -> None:
    genotypes = [SPACE.sample(__import__("numpy").random.default_rng(s)) for s in range(3)]
    log = tmp_path / "log"
    log.mkdir()
    options = {"crash_first": [genotypes[0].key], "log_dir": str(log)}
    executor = ProcessExecutor(2, EvaluatorSpec(FAULT, "nb201", {}, options), retries=1)
    try:
        futures = [executor.submit(g, None, 0) for g in genotypes]
        results = [f.result(timeout=120) for f in futures]
    finally:
        executor.shutdown()
    assert futures[0].attempts == 2 and "killed by SIGKILL" in futures[0].causes[0]
    assert [f.attempts for f in futures[1:]] == [1, 1] and all("val_acc" in r for r in results)
    runs = FaultEvaluator(log_dir=str(log))
    assert [runs.runs_of(g.key) for g in genotypes] == [2, 1, 1]

    # with no retries left, the trial fails with the cause
    (log / "runs.log").unlink()
    executor = ProcessExecutor(1, EvaluatorSpec(FAULT, "nb201", {}, options), retries=0)
    try:
        future = executor.submit(genotypes[0], None, 0)
        with pytest.raises(WorkerDied, match="killed by SIGKILL"):
            future.result(timeout=120)
        assert executor.submit(genotypes[1], None, 0).result(timeout=120)["val_acc"] >= 0  # a fresh worker
    finally:
        executor.shutdown()


def test_timeout_error_from_the_executor() -> None:
    g = SPACE.sample(__import__("numpy").random.default_rng(1))
    executor = ProcessExecutor(1, EvaluatorSpec(FAULT, "nb201", {}, {"hang": [g.key]}), trial_timeout=1.0)
    try:
        with pytest.raises(TrialTimeout, match="timed out after 1 s"):
            executor.submit(g, None, 0).result(timeout=60)
    finally:
        executor.shutdown()


def test_one_worker_reproduces_the_inline_sequence(tmp_path: Path) -> None:
    common = dict(space="nb201", strategy="evolution", budget=12, evaluator=FAULT, evaluator_options={}, seed=3)
    search(out=tmp_path / "inline", **common)
    search(out=tmp_path / "worker", trial_timeout=60, **common)  # a timeout needs a worker process
    assert [r[:4] for r in _rows(tmp_path / "inline")] == [r[:4] for r in _rows(tmp_path / "worker")]


def _cmd(out: Path, log: Path) -> list[str]:
    # 2 s a trial: on a loaded machine (CI beside other work) a 1 s trial seen in flight by the poll could finish
    # before the kill reached it, leaving one trial in flight instead of two
    return [
        sys.executable, "-m", "archsearch.cli", "search", "--space", "nb201", "--strategy", "evolution",
        "--evaluator", FAULT, "--evaluator-option", "seconds=2.0", "--evaluator-option", f"log_dir={log}",
        "--trials", "10", "--workers", "2", "--out", str(out), "--json",
    ]  # fmt: skip


def test_kill_9_of_the_driver_with_trials_in_flight_then_resume(tmp_path: Path) -> None:
    out, log = tmp_path / "run", tmp_path / "log"
    log.mkdir()
    proc = subprocess.Popen(
        _cmd(out, log), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            rows = _rows(out)
        except sqlite3.OperationalError:
            continue
        running = [r[1] for r in rows if r[2] == "running"]
        # kill only once both in-flight trials have started evaluating (logged by their workers): a trial marked
        # running may not yet have reached its worker, and then it would run once, not twice
        if sum(r[2] == "complete" for r in rows) >= 3 and len(running) == 2:
            runs = FaultEvaluator(log_dir=str(log))
            if all(runs.runs_of(key) == 1 for key in running):
                break
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, no cleanup
    proc.wait()
    before = _rows(out)
    finished = {r[0]: r for r in before if r[2] != "running"}
    in_flight = {r[0]: r[1] for r in before if r[2] == "running"}
    assert len(in_flight) == 2 and len(finished) >= 3
    subprocess.run(_cmd(out, log)[:-1] + ["--resume", "--json"], check=True, capture_output=True)
    after = _rows(out)
    assert [r[0] for r in after] == list(range(10)) and all(r[2] == "complete" for r in after)
    assert len({r[1] for r in after}) == 10
    for number, row in finished.items():  # nothing finished was lost or run again
        assert after[number] == row
    runs = FaultEvaluator(log_dir=str(log))
    for number, key in in_flight.items():  # in flight at the kill: run once more, and recorded so
        assert runs.runs_of(key) == 2 and after[number][5] == 2 and "interrupted" in after[number][4]
    assert all(runs.runs_of(r[1]) == 1 for r in after if r[0] not in in_flight)


def test_executor_options_are_checked() -> None:
    from archsearch.api import make_config
    from archsearch.errors import ArchsearchError

    with pytest.raises(ArchsearchError, match="--ray-address needs --executor ray"):
        make_config(ray_address="auto")
    with pytest.raises(ArchsearchError, match="executor must be one of process, ray"):
        make_config(executor="dask")
    with pytest.raises(ArchsearchError, match="trial timeout must be > 0"):
        make_config(trial_timeout=0)
    with pytest.raises(ArchsearchError, match="retries >= 0"):
        make_config(retries=-1)
    with pytest.raises(ArchsearchError, match="cannot import Nope"):
        search(space="nb201", budget=1, evaluator="archsearch.testing.evaluators:Nope", evaluator_options={})


def test_a_worker_that_cannot_build_its_evaluator_fails_every_trial_with_the_reason(tmp_path: Path) -> None:
    from archsearch.errors import ArchsearchError

    with pytest.raises(ArchsearchError, match="no_such_option"):  # the driver checks first
        search(space="nb201", budget=3, out=tmp_path / "run", evaluator=FAULT, evaluator_options={"no_such_option": 1})
    # a worker whose build fails (here: options only the worker sees) fails every trial with that reason
    executor = ProcessExecutor(2, EvaluatorSpec(FAULT, "nb201", {}, {"no_such_option": 1}))
    try:
        futures = [executor.submit(SPACE.sample(__import__("numpy").random.default_rng(s)), None, 0) for s in range(3)]
        for future in futures:
            with pytest.raises(ArchsearchError, match="no_such_option"):
                future.result(timeout=120)
    finally:
        executor.shutdown()

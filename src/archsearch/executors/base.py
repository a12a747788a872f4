"""The executor seam: ``submit(genotype, fidelity, seed) -> Future`` of the trial's metrics.

Executors differ in where an evaluation runs (inline, local processes, Ray tasks) and share the fault rules:
a trial past ``trial_timeout`` seconds fails with :class:`TrialTimeout` (its worker is stopped); a trial whose
worker dies (killed, out of memory) is run again up to ``retries`` times, then fails with :class:`WorkerDied`.
An exception raised by the evaluation itself fails the trial at once (it would raise again). The future carries
``attempts`` (runs started) and ``causes`` (why earlier runs ended), which the experiment records.
"""

from __future__ import annotations

import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluators import Evaluator, make_evaluator
from archsearch.spaces import get_space


class TrialTimeout(ArchsearchError):
    """A trial ran longer than the executor's ``trial_timeout``."""


class WorkerDied(ArchsearchError):
    """The process running a trial died (every allowed retry included)."""


class RemoteTrialError(Exception):
    """An evaluation error from another process that could not travel as itself (it did not pickle)."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.remote_traceback = type_name, remote_traceback


@dataclass
class EvaluatorSpec:
    """How a worker builds its evaluator: by registered name (or ``module:Class``) and JSON-able options."""

    evaluator: str
    space: str
    space_options: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1

    def build(self) -> tuple[Any, Evaluator]:
        """The space and the evaluator (with torch limited to ``threads`` threads)."""
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        space = get_space(self.space, **self.space_options)
        return space, make_evaluator(self.evaluator, space, self.options)


_built: dict[str, tuple[Any, Evaluator]] = {}  # per worker process: spec (as text) -> (space, evaluator)


def evaluate_in_worker(
    spec: EvaluatorSpec, genotype_json: dict[str, Any], fidelity: float | None, seed: int
) -> dict[str, float]:
    """Evaluate one trial in a worker process, building the evaluator on first use and keeping it
    (``genotype_json`` None: only build it)."""
    key = repr(spec)
    if key not in _built:
        _built[key] = spec.build()
    space, evaluator = _built[key]
    if genotype_json is None:
        return {}
    return run_evaluation(evaluator, space.from_json(genotype_json), fidelity, seed)


def run_evaluation(evaluator: Evaluator, genotype: Any, fidelity: float | None, seed: int) -> dict[str, float]:
    """Evaluate one trial."""
    return evaluator.evaluate(genotype, fidelity, seed=seed)


@dataclass
class PendingTrial:
    """A submitted trial as an executor holds it: what to evaluate, its future, when its current run started."""

    genotype_json: dict[str, Any]
    fidelity: float | None
    seed: int
    future: Future[dict[str, float]]
    started: float = 0.0


def new_future() -> Future[dict[str, float]]:
    """A future with the attempt bookkeeping the experiment reads."""
    future: Future[dict[str, float]] = Future()
    future.attempts = 0  # type: ignore[attr-defined]
    future.causes = []  # type: ignore[attr-defined]
    return future


class InlineExecutor:
    """Runs each evaluation at once in the calling process (no timeout, nothing to retry)."""

    workers = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def submit(self, genotype: Any, fidelity: float | None, seed: int) -> Future[dict[str, float]]:
        future = new_future()
        future.attempts = 1  # type: ignore[attr-defined]
        try:
            future.set_result(run_evaluation(self.evaluator, genotype, fidelity, seed))
        except Exception as exc:  # recorded as a failed trial by the experiment
            exc.add_note(traceback.format_exc(limit=3))
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        """Nothing to stop."""

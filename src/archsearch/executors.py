"""Where evaluations run: inline in the driver, or in a local process pool (``workers`` processes).

Both return ``concurrent.futures.Future`` objects, so the experiment keeps several trials in flight and handles
results as they arrive. Workers build their evaluator once, from the same name and options the store records, and
receive genotypes as JSON. Only the driver writes the store.
"""

from __future__ import annotations

import multiprocessing
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from archsearch.evaluators import Evaluator, make_evaluator
from archsearch.spaces import get_space

_worker: dict[str, Any] = {}


def _init_worker(
    evaluator: str, space: str, space_options: dict[str, Any], options: dict[str, Any], threads: int | None
) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    sp = get_space(space, **space_options)
    _worker["space"] = sp
    _worker["evaluator"] = make_evaluator(evaluator, sp, options)


def _evaluate(genotype_json: dict[str, Any], fidelity: float | None, seed: int) -> dict[str, float]:
    return run_evaluation(_worker["evaluator"], _worker["space"].from_json(genotype_json), fidelity, seed)


def run_evaluation(evaluator: Evaluator, genotype: Any, fidelity: float | None, seed: int) -> dict[str, float]:
    """Evaluate one trial."""
    return evaluator.evaluate(genotype, fidelity, seed=seed)


class InlineExecutor:
    """Runs each evaluation at once in the calling process."""

    workers = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def submit(self, genotype: Any, fidelity: float | None, seed: int) -> Future[dict[str, float]]:
        future: Future[dict[str, float]] = Future()
        try:
            future.set_result(run_evaluation(self.evaluator, genotype, fidelity, seed))
        except Exception as exc:  # recorded as a failed trial by the experiment
            exc.add_note(traceback.format_exc(limit=3))
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        """Nothing to stop."""


class ProcessExecutor:
    """A pool of ``workers`` spawned processes, each with its own evaluator (and ``threads`` torch threads)."""

    def __init__(
        self,
        workers: int,
        evaluator: str,
        space: str,
        space_options: dict[str, Any],
        options: dict[str, Any],
        threads: int | None = 1,
    ) -> None:
        self.workers = workers
        self.args = (evaluator, space, space_options, options, threads)
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=self.args
        )

    def submit(self, genotype: Any, fidelity: float | None, seed: int) -> Future[dict[str, float]]:
        return self.pool.submit(_evaluate, genotype.to_json(), fidelity, seed)

    def restart(self) -> None:
        """Replace a broken pool (a worker died)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._start()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

"""Trials as Ray tasks, on a local Ray instance or a running cluster (``address``: ``auto`` or ``HOST:PORT``).

Each trial is one task with its resources (``cpus_per_trial``, ``gpus_per_trial``); Ray places it on any node and
ships the result back to the driver, which alone writes the store. A task whose worker process or node dies is
resubmitted by the driver (up to ``retries`` times, so the count and causes are recorded like the process
executor's); one past ``trial_timeout`` is cancelled with its worker killed. Ray calls all happen on one driver
thread, which also resolves the futures the experiment waits on.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.executors.base import (
    EvaluatorSpec,
    PendingTrial,
    TrialTimeout,
    WorkerDied,
    evaluate_in_worker,
    new_future,
)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ArchsearchError("--executor ray needs Ray: pip install 'archsearch[ray]' (or pip install ray)") from None
    return ray


def _run_trial(spec: EvaluatorSpec, genotype_json: dict[str, Any], fidelity: float | None, seed: int) -> Any:
    """The Ray task: evaluate in this Ray worker (which keeps the built evaluator between tasks)."""
    return os.getpid(), evaluate_in_worker(spec, genotype_json, fidelity, seed)


class RayExecutor:
    """Up to ``workers`` trials in flight as Ray tasks."""

    def __init__(
        self,
        workers: int,
        spec: EvaluatorSpec,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        trial_timeout: float | None = None,
        retries: int = 2,
    ) -> None:
        ray = _ray()
        self.workers, self.trial_timeout, self.retries = workers, trial_timeout, retries
        spec = EvaluatorSpec(spec.evaluator, spec.space, spec.space_options, spec.options, max(1, int(cpus_per_trial)))
        start = time.perf_counter()
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except ConnectionError as exc:
                raise ArchsearchError(f"cannot reach the Ray cluster at {address}: {exc}") from None
        self.startup_seconds = time.perf_counter() - start
        self.remote = ray.remote(_run_trial).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)
        self.spec_ref = ray.put(spec)
        self.queue: deque[PendingTrial] = deque()
        self.running: dict[Any, PendingTrial] = {}  # ObjectRef -> task
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self._watch, name="archsearch-ray", daemon=True)
        self.thread.start()

    def submit(self, genotype: Any, fidelity: float | None, seed: int) -> Future[dict[str, float]]:
        future = new_future()
        future.set_running_or_notify_cancel()
        with self.lock:  # launched at once (Ray's API is thread-safe); the watcher picks it up at its next wait
            self.queue.append(PendingTrial(genotype.to_json(), fidelity, seed, future))
        self._launch()
        self.wake.set()
        return future

    def shutdown(self) -> None:
        """Stop watching; cancel what is still running; leave a cluster we joined, stop one we started."""
        ray = _ray()
        self.closing = True
        self.wake.set()
        self.thread.join()
        for ref, task in self.running.items():
            ray.cancel(ref, force=True)
            task.future.set_exception(WorkerDied("the search stopped while this trial ran"))
        if self.owns_ray:
            ray.shutdown()

    # --- the driver thread ----------------------------------------------------------------------------------------
    def _launch(self) -> None:
        with self.lock:  # from the experiment's thread (submit) and from the watcher (retries)
            while self.queue:
                task = self.queue.popleft()
                task.future.attempts += 1  # type: ignore[attr-defined]
                task.started = time.monotonic()
                ref = self.remote.remote(self.spec_ref, task.genotype_json, task.fidelity, task.seed)
                self.running[ref] = task

    def _settle(self, ref: Any, task: PendingTrial) -> None:
        ray = _ray()
        from ray import exceptions as rx

        try:
            _, metrics = ray.get(ref)
        except rx.RayTaskError as exc:  # the evaluation raised: fail the trial with the original error
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            task.future.set_exception(cause)
            return
        except (rx.WorkerCrashedError, rx.NodeDiedError, rx.OutOfMemoryError, rx.ObjectLostError) as exc:
            reason = f"worker process died ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            task.future.causes.append(reason)  # type: ignore[attr-defined]
            if task.future.attempts <= self.retries:  # type: ignore[attr-defined]
                with self.lock:
                    self.queue.appendleft(task)
            else:
                runs = task.future.attempts  # type: ignore[attr-defined]
                task.future.set_exception(WorkerDied(f"{reason} (in {runs} runs of this trial)"))
            return
        except Exception as exc:
            task.future.set_exception(exc)
            return
        task.future.set_result(metrics)

    def _watch(self) -> None:
        ray = _ray()
        try:
            while not self.closing:
                self._launch()
                if not self.running:
                    self.wake.wait(0.5)
                    self.wake.clear()
                    continue
                with self.lock:
                    refs = list(self.running)
                done, _ = ray.wait(refs, num_returns=1, timeout=0.05)
                for ref in done:
                    with self.lock:
                        task = self.running.pop(ref)
                    self._settle(ref, task)
                if self.trial_timeout is not None:
                    now = time.monotonic()
                    with self.lock:
                        overdue = [(r, t) for r, t in self.running.items() if now - t.started >= self.trial_timeout]
                        for ref, _ in overdue:
                            del self.running[ref]
                    for ref, task in overdue:
                        ray.cancel(ref, force=True)
                        task.future.causes.append(f"timed out after {self.trial_timeout:g} s")  # type: ignore[attr-defined]
                        task.future.set_exception(TrialTimeout(f"timed out after {self.trial_timeout:g} s"))
        except Exception as exc:  # never leave the experiment waiting on futures nobody will resolve
            error = WorkerDied(f"the Ray watcher stopped: {type(exc).__name__}: {exc}")
            for task in [*self.running.values(), *self.queue]:
                if not task.future.done():
                    task.future.set_exception(error)
            raise

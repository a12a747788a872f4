"""Local worker processes: ``workers`` spawned processes, each building its evaluator once and running one trial
at a time, watched by one driver thread that enforces the timeout and retries trials whose worker died.

Written on ``multiprocessing`` rather than ``ProcessPoolExecutor`` because the pool cannot stop one hung task, and
loses every task in flight when one worker dies (``BrokenProcessPool``); here only the affected trial is touched.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any

from archsearch.executors.base import (
    EvaluatorSpec,
    PendingTrial,
    RemoteTrialError,
    TrialTimeout,
    WorkerDied,
    evaluate_in_worker,
    new_future,
)


def _picklable(exc: Exception, text: str) -> Exception:
    try:
        pickle.dumps(exc)
    except Exception:
        return RemoteTrialError(type(exc).__name__, str(exc), text)
    exc.add_note(text)
    return exc


def _worker_main(conn: Connection, spec: EvaluatorSpec) -> None:
    """A worker: build the evaluator and send ("ready", None) (or ("broken", exception)), then receive
    (genotype JSON, fidelity, seed) and send ("ok", metrics) or ("error", exception), one trial at a time."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the driver, which stops the workers
    try:
        evaluate_in_worker(spec, None, None, 0)  # builds and keeps the evaluator; the trial clock starts after
    except Exception as exc:
        conn.send(("broken", _picklable(exc, traceback.format_exc(limit=5))))
        return
    conn.send(("ready", None))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            conn.send(("ok", evaluate_in_worker(spec, *task)))
        except Exception as exc:
            conn.send(("error", _picklable(exc, traceback.format_exc(limit=5))))


class _Worker:
    def __init__(self, context: Any, spec: EvaluatorSpec) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.task: PendingTrial | None = None
        self.ready = False  # the evaluator is built
        self.started = 0.0

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(OSError):  # already dead
                self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def describe_exit(code: int | None) -> str:
    """A dead process's exit code in words (``killed by SIGKILL`` for -9)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessExecutor:
    """``workers`` spawned processes with ``threads`` torch threads each; ``trial_timeout`` seconds per trial
    (None: no limit), ``retries`` re-runs of a trial whose worker died."""

    def __init__(
        self,
        workers: int,
        spec: EvaluatorSpec,
        trial_timeout: float | None = None,
        retries: int = 2,
    ) -> None:
        self.workers, self.spec = workers, spec
        self.trial_timeout, self.retries = trial_timeout, retries
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[_Worker | None] = [None] * workers
        self.queue: deque[PendingTrial] = deque()
        self.lock = threading.Lock()
        self.wake_read, self.wake_write = self.context.Pipe(duplex=False)
        self.closing = False
        self.broken: Exception | None = None  # a worker could not build the evaluator: every trial fails so
        self.thread = threading.Thread(target=self._watch, name="archsearch-workers", daemon=True)
        self.thread.start()

    def submit(self, genotype: Any, fidelity: float | None, seed: int) -> Future[dict[str, float]]:
        future = new_future()
        if self.broken is not None:
            future.set_exception(self.broken)
            return future
        with self.lock:
            self.queue.append(PendingTrial(genotype.to_json(), fidelity, seed, future))
        self.wake_write.send(b"")
        return future

    def shutdown(self) -> None:
        """Stop the watcher and the workers; trials still queued or running fail as cancelled."""
        self.closing = True
        self.wake_write.send(b"")
        self.thread.join()
        for i, worker in enumerate(self.slots):
            if worker is not None:
                if worker.task is not None and not worker.task.future.done():
                    worker.task.future.cancel()
                worker.stop(kill=worker.task is not None)
                self.slots[i] = None
        for task in self.queue:
            task.future.cancel()

    # --- the watcher thread ---------------------------------------------------------------------------------------
    def _assign(self) -> None:
        with self.lock:
            for i in range(self.workers):
                if not self.queue:
                    return
                worker = self.slots[i]
                if worker is not None and worker.task is None and not worker.process.is_alive():
                    worker.stop()  # died while idle: replace it
                    worker = self.slots[i] = None
                if worker is None:
                    worker = self.slots[i] = _Worker(self.context, self.spec)
                if worker.task is not None or not worker.ready:
                    continue
                task = self.queue.popleft()
                first = task.future.attempts == 0  # type: ignore[attr-defined]
                if first and not task.future.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                worker.task, worker.started = task, time.monotonic()
                task.future.attempts += 1  # type: ignore[attr-defined]
                # a worker that died just now fails the send; the watcher then sees its sentinel and retries
                with contextlib.suppress(OSError):
                    worker.conn.send((task.genotype_json, task.fidelity, task.seed))

    def _lost(self, slot: int, cause: str, kill: bool, retry: bool) -> None:
        """The worker in ``slot`` is gone (dead or stopped): retry or fail its trial, and free the slot."""
        worker = self.slots[slot]
        assert worker is not None
        worker.stop(kill=kill)
        self.slots[slot] = None
        task = worker.task
        if task is None:
            return
        task.future.causes.append(cause)  # type: ignore[attr-defined]
        if retry and task.future.attempts <= self.retries:  # type: ignore[attr-defined]
            with self.lock:
                self.queue.appendleft(task)
        elif retry:
            runs = task.future.attempts  # type: ignore[attr-defined]
            task.future.set_exception(WorkerDied(f"{cause} (in {runs} run{'s' if runs > 1 else ''} of this trial)"))
        else:
            task.future.set_exception(TrialTimeout(cause))

    def _check_start(self, worker: _Worker, ready: list[Any]) -> None:
        if worker.conn in ready:
            try:
                kind, value = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(timeout=5)
                code = describe_exit(worker.process.exitcode)
                kind, value = "broken", WorkerDied(f"a worker died while starting ({code})")
            if kind == "ready":
                worker.ready = True
                return
        elif worker.process.sentinel in ready:
            worker.process.join(timeout=5)
            kind, value = (
                "broken",
                WorkerDied(f"a worker died while starting ({describe_exit(worker.process.exitcode)})"),
            )
        else:
            return
        # the evaluator cannot be built (bad options, missing data): no trial can run anywhere
        self.broken = value
        with self.lock:
            waiting, self.queue = list(self.queue), deque()
        for task in waiting:
            task.future.set_exception(value)

    def _watch(self) -> None:
        try:
            self._watch_loop()
        except Exception as exc:  # never leave the experiment waiting on futures nobody will resolve
            error = WorkerDied(f"the worker watcher stopped: {type(exc).__name__}: {exc}")
            tasks = [w.task for w in self.slots if w is not None and w.task is not None] + list(self.queue)
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(error)
            raise

    def _watch_loop(self) -> None:
        while not self.closing:
            self._assign()
            starting = [w for w in self.slots if w is not None and not w.ready]
            busy = [(i, w) for i, w in enumerate(self.slots) if w is not None and w.task is not None]
            timeout = 1.0
            if self.trial_timeout is not None and busy:
                now = time.monotonic()
                timeout = max(0.0, min(w.started + self.trial_timeout - now for _, w in busy))
            handles: list[Any] = [self.wake_read]
            for w in starting:
                handles += [w.conn, w.process.sentinel]
            for _, w in busy:
                handles += [w.conn, w.process.sentinel]
            ready = wait(handles, timeout=timeout)
            if self.wake_read in ready:
                while self.wake_read.poll():
                    self.wake_read.recv_bytes()
            for w in starting:
                self._check_start(w, ready)
            for slot, worker in busy:
                task = worker.task
                assert task is not None
                if worker.conn in ready:
                    try:
                        kind, value = worker.conn.recv()
                    except (EOFError, OSError):  # the pipe closed: the worker died (its sentinel may lag)
                        worker.process.join(timeout=5)
                        self._lost(slot, f"worker process died ({describe_exit(worker.process.exitcode)})", False, True)
                        continue
                    worker.task = None
                    if kind == "ok":
                        task.future.set_result(value)
                    else:
                        task.future.set_exception(value)
                elif worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join(timeout=5)  # sets the exit code
                    self._lost(slot, f"worker process died ({describe_exit(worker.process.exitcode)})", False, True)
                elif self.trial_timeout is not None and time.monotonic() - worker.started >= self.trial_timeout:
                    self._lost(slot, f"timed out after {self.trial_timeout:g} s", True, False)

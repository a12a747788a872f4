"""An experiment: ask -> check -> evaluate -> tell under a budget of trials and seconds, recorded in a store.

Every asked trial is stored as ``running`` with the strategy's state before it is evaluated, and stored finished with
the state after the tell, each in one transaction; ``resume`` re-runs what was in flight and continues. A genotype
already evaluated is answered from the store. A trial that raises, returns NaN or runs out of memory is recorded
failed with its error; one that breaks a constraint is recorded infeasible with the measured costs, untrained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ArchsearchError, GenotypeError
from archsearch.evaluators import Evaluator
from archsearch.evaluators.base import clean_metrics
from archsearch.multifidelity import MultiFidelity
from archsearch.objectives import Objective
from archsearch.run_summary import SearchResult, summarize
from archsearch.rundir import versions
from archsearch.spaces import Space
from archsearch.store import Store
from archsearch.strategies import Strategy
from archsearch.trial import COMPLETE, FAILED, INFEASIBLE, RUNNING, Trial
from archsearch.trial_costs import CostMeter


@dataclass
class Budget:
    """Stop after ``trials`` evaluated trials or ``seconds`` of search time (across resumes), whichever first."""

    trials: int = 50
    seconds: float | None = None
    #: stop when the strategy proposes only already-evaluated architectures this many times in a row
    max_repeats: int = 1000

    def __post_init__(self) -> None:
        if self.trials < 1 or (self.seconds is not None and self.seconds <= 0):
            raise ArchsearchError(f"the budget needs trials >= 1 and seconds > 0, got {self.trials}, {self.seconds}")


def _trial_seed(seed: int, number: int) -> int:
    return (seed * 1_000_003 + number * 7919) % (2**31)


class Experiment:
    """Runs a strategy against an evaluator under a budget, recording everything in ``store``."""

    def __init__(
        self,
        space: Space[Any],
        strategy: Strategy,
        evaluator: Evaluator,
        objective: Objective,
        budget: Budget,
        store: Store,
        executor: Any = None,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        on_trial: Callable[[Trial, Experiment], None] | None = None,
        fidelity: MultiFidelity | None = None,
    ) -> None:
        from archsearch.executors import InlineExecutor

        self.space, self.strategy, self.evaluator = space, strategy, evaluator
        self.objective, self.budget, self.store, self.seed = objective, budget, store, seed
        self.executor = executor or InlineExecutor(evaluator)
        self.on_trial = on_trial
        self.config = config or {}
        self.fidelity: MultiFidelity | None = fidelity
        self.finished: dict[str, Trial] = {}  # key -> first finished trial of that architecture
        self.in_flight: dict[Future[dict[str, float]], tuple[Trial, float]] = {}
        self.costs = CostMeter(space, evaluator, objective)
        self.repeats = 0
        self.saved_repeats = 0  # the repeats count that goes with the strategy state last written
        self.consecutive_repeats = 0
        self.pending_duplicates: list[Any] = []  # asked while the same architecture was in flight
        self.elapsed_before = 0.0
        self.done = 0  # finished trials in the store
        self.next_number = 0
        self.start = time.perf_counter()

    # --- bookkeeping ----------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.start

    def _load(self) -> list[Trial]:
        """Read a previous run's trials and strategy state; return the trials that were in flight."""
        trials = self.store.trials(self.space.from_json)
        running = [t for t in trials if t.status == RUNNING]
        for t in trials:
            if t.status != RUNNING and t.key not in self.finished:
                self.finished[t.key] = t
        state = self.store.strategy_state()
        if state is not None:
            self.strategy.load_state_dict(state)
        if self.fidelity is not None:
            sign = 1.0 if self.objective.direction(self.objective.metric) else -1.0
            self.fidelity.rebuild((t.metrics for t in trials), sign)  # in-flight rows hold their lower rungs
        progress = self.store.progress()
        self.elapsed_before = float(progress.get("elapsed", 0.0))
        self.repeats = self.saved_repeats = int(progress.get("repeats", 0))
        self.done = sum(t.status != RUNNING for t in trials)
        self.next_number = 1 + max((t.number for t in trials), default=-1)
        return running

    def _save_progress(self, db: Any, stop: str | None = None) -> None:
        progress: dict[str, Any] = {"elapsed": self.elapsed, "repeats": self.repeats}
        if stop is not None:
            progress["stop"] = stop
        stable = getattr(self.strategy, "stable_state_keys", ())
        self.store.put_state(db, self.strategy.state_dict(), progress, stable)
        self.saved_repeats = self.repeats

    # --- the steps ------------------------------------------------------------------------------------------------
    def _costs(self, genotype: Any) -> dict[str, float]:
        return self.costs.of(genotype)

    def _finish(self, trial: Trial, started: float) -> None:
        self.done += 1
        if trial.key not in self.finished:
            self.finished[trial.key] = trial
        self._tell([trial])
        with self.store.transaction() as db:
            self.store.put_trial(db, trial, started, time.time())
            self._save_progress(db)
        if self.on_trial is not None:
            self.on_trial(trial, self)

    def _record_result(self, trial: Trial, started: float, future: Future[dict[str, float]]) -> None:
        trial.seconds += time.time() - started
        trial.attempts = max(trial.attempts, 1) + max(getattr(future, "attempts", 1) - 1, 0)  # runs, retries included
        earlier = list(getattr(future, "causes", []))
        try:
            who = getattr(self.evaluator, "name", type(self.evaluator).__name__)
            metrics = clean_metrics(future.result(), f"the {who} evaluator")
            metrics.update(self.costs.cache.get(trial.key, {}))
            trial.metrics = {**trial.metrics, **metrics}
            trial.score, trial.status = self.objective.score(metrics), COMPLETE
            if self.fidelity is not None and trial.fidelity is not None:
                trial.metrics[self.fidelity.key(trial.fidelity)] = metrics[self.objective.metric]
                promoted = self.fidelity.record(trial.fidelity, trial.score)
                if promoted is not None:
                    trial.fidelity, trial.status, trial.score = promoted, RUNNING, None
                    self._submit(trial)
                    return
        except MemoryError:
            trial.status, trial.error = FAILED, "out of memory"
        except Exception as exc:  # any evaluation error fails this trial only
            trial.status, trial.error = FAILED, f"{type(exc).__name__}: {exc}"
        if trial.status == COMPLETE and (earlier or trial.error):
            # the error column of a complete trial says why earlier runs of it ended
            trial.error = "; ".join(filter(None, [trial.error, *(f"run ended: {c}" for c in earlier)]))
        self._finish(trial, started)

    def _submit(self, trial: Trial) -> None:
        started = time.time()
        if self.executor.workers > 1:
            # Several trials in flight: mark this one so a resume re-runs it (the strategy will not re-propose it).
            # With one worker the state saved at the last tell re-proposes it on resume, so no write is needed.
            with self.store.transaction() as db:
                self.store.put_trial(db, trial, started, None)
                self._save_progress(db)
        future = self.executor.submit(trial.genotype, trial.fidelity, trial.seed)
        self.in_flight[future] = (trial, started)

    def _strategy_call(self, method: str, *args: Any) -> Any:
        """``strategy.method(*args)``; an exception from the strategy's code (yours, when you registered it) stops
        the search as one error naming the strategy and the call (the trials recorded so far stay)."""
        try:
            return getattr(self.strategy, method)(*args)
        except ArchsearchError:
            raise
        except Exception as exc:
            raise ArchsearchError(f"strategy {self.strategy.name!r} ({type(self.strategy).__name__}) raised in "
                                  f"{method}(): {type(exc).__name__}: {str(exc)[:300]}") from exc  # fmt: skip

    def _tell(self, trials: list[Trial]) -> None:
        self._strategy_call("tell", trials)

    def _asked(self) -> Any:
        """The strategy's next genotype, checked against the space: a strategy that hands out something else stops
        the search with one error naming it (the trials recorded so far stay)."""
        asked = self._strategy_call("ask", 1)
        if not isinstance(asked, (list, tuple)) or len(asked) != 1:
            raise ArchsearchError(
                f"strategy {self.strategy.name!r}: ask(1) must return a list of one genotype, got {asked!r}"[:300]
            )
        try:
            return self.space.validate(asked[0])
        except GenotypeError as exc:
            raise ArchsearchError(
                f"strategy {self.strategy.name!r} asked for a genotype that is not in space {self.space.name!r}: {exc}"
            ) from None

    def _next(self, number: int) -> Trial | str:
        """Ask for one genotype and check it. Returns the trial to run, or what happened instead: ``"answered"``
        (evaluated before: told from the store), ``"recorded"`` (infeasible or unbuildable: stored as such) or
        ``"wait"`` (the same architecture is in flight)."""
        genotype = self._asked()
        trial = Trial(number, genotype, genotype.key, seed=_trial_seed(self.seed, number))
        if self.fidelity is not None:
            trial.fidelity = self.fidelity.start(number)
        known = self.finished.get(genotype.key)
        if known is not None:
            self.repeats += 1
            self.consecutive_repeats += 1
            answer = known.answer(genotype)
            self._tell([answer])
            if self.consecutive_repeats % 50 == 0:
                with self.store.transaction() as db:
                    self._save_progress(db)
            return "answered"
        if any(t.key == genotype.key for t, _ in self.in_flight.values()):
            self.pending_duplicates.append(genotype)
            return "wait"
        self.consecutive_repeats = 0
        reason = self.space.degenerate(genotype) if getattr(self.evaluator, "network", None) is not None else None
        if reason is not None:  # nothing to train: recorded, and the strategy told, without building a network
            trial.status, trial.error = INFEASIBLE, f"degenerate: {reason}"
            self._finish(trial, time.time())
            return "recorded"
        try:
            values = self._costs(genotype)
        except ArchsearchError:
            raise  # a configuration error (e.g. constraints the evaluator cannot check): stop the search
        except Exception as exc:  # the network would not even build: a failed trial
            trial.status, trial.error = FAILED, f"building the network failed: {type(exc).__name__}: {exc}"
            self._finish(trial, time.time())
            return "recorded"
        broken = self.objective.violations(values)
        if broken:
            trial.status, trial.metrics = INFEASIBLE, dict(values)
            trial.error = "; ".join(f"{k} {v:g} > limit {lim:g}" for k, (v, lim) in broken.items())
            self._finish(trial, time.time())
            return "recorded"
        return trial

    def _answer_duplicates(self) -> None:
        """Tell the strategy the results of architectures it asked for again while they were in flight."""
        waiting, self.pending_duplicates = self.pending_duplicates, []
        for genotype in waiting:
            known = self.finished.get(genotype.key)
            if known is None:
                self.pending_duplicates.append(genotype)
                continue
            self.repeats += 1
            self._tell([known.answer(genotype)])

    # --- the loop -------------------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> SearchResult:
        """Search until the budget is spent; with ``resume``, continue the run recorded in the store."""
        if resume:
            if self.config:
                self.store.set_meta("config", self.config)  # with the budget or workers the resume may have changed
            for trial in self._load():
                # its run was lost with the interrupted driver: counted, and run once more
                trial.status, trial.error = RUNNING, "run ended: the search was interrupted"
                trial.attempts = max(trial.attempts, 1) + 1
                self._submit(trial)
        elif self.store.count(finished_only=False):
            raise ArchsearchError(f"{self.store.run_dir} already holds an experiment; resume it or choose a new --out")
        else:
            if self.config:  # an experiment inside another run (SPOS's search over sub-networks) has none
                self.store.set_meta("config", self.config)
                self.store.set_meta("versions", versions())
            with self.store.transaction() as db:
                self._save_progress(db)
        self.start = time.perf_counter()
        stop = ""
        try:
            while True:
                out_of_time = self.budget.seconds is not None and self.elapsed >= self.budget.seconds
                stuck = self.consecutive_repeats >= self.budget.max_repeats
                room = self.done + len(self.in_flight) < self.budget.trials
                must_wait = False
                if room and not out_of_time and not stuck and len(self.in_flight) < self.executor.workers:
                    step = self._next(self.next_number)
                    if isinstance(step, Trial):
                        self._submit(step)
                    if isinstance(step, Trial) or step == "recorded":
                        self.next_number += 1
                    must_wait = step == "wait" or len(self.in_flight) >= self.executor.workers
                    if not must_wait:
                        continue
                if not self.in_flight:
                    break
                finished, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=lambda f: self.in_flight[f][0].number):
                    trial, started = self.in_flight.pop(future)
                    self._record_result(trial, started, future)
                self._answer_duplicates()
            stop = "trials" if self.done >= self.budget.trials else "seconds" if out_of_time else "repeats"
            # everything asked was recorded or answered: the state and the counters agree
            with self.store.transaction() as db:
                self._save_progress(db, stop)
        except BaseException as exc:
            # Only the counters: the strategy may have asked for a trial that was never recorded, and a resume must
            # find the state that re-proposes it, so the repeats counted since that state was written are dropped
            # (the resumed strategy asks them again).
            stop = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {type(exc).__name__}: {exc}"
            with self.store.transaction() as db:
                self.store.put_progress(db, {"elapsed": self.elapsed, "repeats": self.saved_repeats, "stop": stop})
            raise
        finally:
            self.executor.shutdown()
        return summarize(self.store, self.space, self.objective, stop)

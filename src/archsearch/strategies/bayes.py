"""Bayesian optimisation with Optuna's TPE sampler, driven by ask/tell over the space's decision view."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class BayesianOptimization(Strategy):
    """Optuna's ``TPESampler`` (multivariate, seeded) proposes each decision; results go back with ``study.tell``.

    ``state_dict`` keeps the told trials as plain data (each decision's choices once, then per trial its values and
    score) and the number of asks, which seeds the sampler, so a resumed search rebuilds the same study and continues
    exactly.
    """

    name = "bayes"

    def __init__(self, space: Any, seed: int = 0, startup: int = 10, multivariate: bool = True) -> None:
        super().__init__(space, seed)
        self.startup, self.multivariate = startup, multivariate
        self.study = self._new_study()
        self.pending: dict[str, list[Any]] = {}  # key -> asked Optuna trials not yet told
        self.choices: dict[str, list[Any]] = {}  # decision name -> its choices
        self.history: list[list[Any]] = []  # [params, value or None] of every told trial
        self.asks = 0

    def _new_study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # ``group`` (TPE per group of co-occurring parameters) only matters when decisions depend on earlier
            # ones; on a fixed decision list it costs time on every ask and changes nothing
            group = self.multivariate and not self.space.fixed_decisions
            sampler = optuna.samplers.TPESampler(
                seed=self.seed, n_startup_trials=self.startup, multivariate=self.multivariate, group=group
            )
        return optuna.create_study(directions=self.directions(), sampler=sampler)

    def directions(self) -> list[str]:
        """The study's directions: one score to maximise (the multi-objective subclass has one per objective)."""
        return ["maximize"]

    def value(self, trial: Trial) -> float | list[float] | None:
        """What the study is told for a finished trial (``None``: it failed or broke a limit)."""
        return trial.score

    def _sampler_random_states(self) -> list[np.random.RandomState]:
        """The TPE sampler's generator and that of its start-up random sampler."""
        import optuna

        sampler = self.study.sampler
        try:
            return [sampler._rng.rng, sampler._random_sampler._rng.rng]
        except AttributeError as exc:
            raise ArchsearchError(
                f"optuna {optuna.__version__} keeps TPESampler's random state elsewhere ({exc}); archsearch seeds "
                "it per ask so that the bayes strategy resumes exactly (known to work with optuna 3.4 to 5.0)"
            ) from None

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            # Each ask draws from generators seeded by (seed, ask number): the sampler's random state is then a
            # function of a counter, so saving it after every trial costs nothing (pickling the sampler instead
            # cost more than the rest of a trial: it carries caches that grow with the study).
            for offset, rng in enumerate(self._sampler_random_states()):
                rng.seed(np.random.SeedSequence([self.seed, self.asks, offset]).generate_state(1)[0])
            self.asks += 1
            trial = self.study.ask()
            g = self.space.decide(lambda name, choices, trial=trial: trial.suggest_categorical(name, list(choices)))
            self.pending.setdefault(g.key, []).append(trial)
            self.asked.add(g.key)
            out.append(g)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        import optuna

        for t in trials:
            numbers = self.pending.get(t.key)
            if not numbers:  # asked before a resume: its result reaches the study through history only
                continue
            trial = numbers.pop(0)
            if not numbers:
                del self.pending[t.key]
            # the decisions are what the trial suggested (Optuna's own accessors deep-copy on every call)
            params = {}
            for d in self.space.decisions(t.genotype):
                known = self.choices.setdefault(d.name, list(d.choices))
                if known != list(d.choices):
                    raise ArchsearchError(
                        f"decision {d.name!r} offered {known} earlier and {list(d.choices)} now; the bayes strategy "
                        "needs each decision name to keep its choices"
                    )
                params[d.name] = d.value
            value = self.value(t)
            if value is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, value)
            self.history.append([params, value])

    def extra_state(self) -> dict[str, Any]:
        return {"choices": self.choices, "history": self.history, "asks": self.asks}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution

        if "asks" not in state:
            raise ArchsearchError(
                "this run's bayes state was saved by an older archsearch (a pickled sampler); start the search "
                "afresh or resume it with the version that wrote it"
            )
        self.study = self._new_study()
        self.choices = {k: list(v) for k, v in state["choices"].items()}
        for params, value in state["history"]:
            dists = {k: CategoricalDistribution(self.choices[k]) for k in params}
            fail = optuna.trial.TrialState.FAIL
            told = {"values": value} if isinstance(value, list) else {"value": value}
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    state=optuna.trial.TrialState.COMPLETE if value is not None else fail,
                    **told,
                )
            )
        self.asks = int(state["asks"])
        self.history = [list(h) for h in state["history"]]
        self.pending = {}

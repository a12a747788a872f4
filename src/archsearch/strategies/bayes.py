"""Bayesian optimisation with Optuna's TPE sampler, driven by ask/tell over the space's decision view."""

from __future__ import annotations

import base64
import pickle
import warnings
from collections.abc import Sequence
from typing import Any

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class BayesianOptimization(Strategy):
    """Optuna's ``TPESampler`` (multivariate, seeded) proposes each decision; results go back with ``study.tell``.

    ``state_dict`` keeps the finished Optuna trials as plain data and the sampler (its random state) pickled, so a
    resumed search rebuilds the same study and continues exactly.
    """

    name = "bayes"

    def __init__(self, space: Any, seed: int = 0, startup: int = 10, multivariate: bool = True) -> None:
        super().__init__(space, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # ``group`` (TPE per group of co-occurring parameters) only matters when decisions depend on earlier
            # ones; on a fixed decision list it costs time on every ask and changes nothing
            group = multivariate and not self.space.fixed_decisions
            sampler = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=multivariate, group=group
            )
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.pending: dict[str, list[Any]] = {}  # key -> asked Optuna trials not yet told
        self.history: list[list[Any]] = []  # [params, choices per param, value or None] of every told trial

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
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
            choices = {k: list(d.choices) for k, d in trial.distributions.items()}
            params = dict(trial.params)
            if t.score is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, t.score)
            self.history.append([params, choices, t.score])

    def extra_state(self) -> dict[str, Any]:
        sampler = base64.b64encode(pickle.dumps(self.study.sampler)).decode()
        return {"history": self.history, "sampler": sampler}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution

        # The sampler blob is one this class wrote into the experiment's own store, not outside input.
        sampler = pickle.loads(base64.b64decode(state["sampler"]))
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        for params, choices, value in state["history"]:
            dists = {k: CategoricalDistribution(v) for k, v in choices.items()}
            fail = optuna.trial.TrialState.FAIL
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=dists,
                    value=value,
                    state=optuna.trial.TrialState.COMPLETE if value is not None else fail,
                )
            )
        self.history = [list(h) for h in state["history"]]
        self.pending = {}

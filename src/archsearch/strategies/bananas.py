"""BANANAS (White et al. 2021): Bayesian optimisation with a neural ensemble predictor.

After ``initial`` random architectures, each round fits the predictor on every result so far, makes a pool of
mutations of the best architectures, scores the pool with an acquisition function and evaluates the best ``batch``
of it. Acquisitions: independent Thompson sampling (``its``: one draw from each candidate's predicted normal),
upper confidence bound (``ucb``: mean + ``kappa`` x std) and the predicted mean alone (``mean``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archsearch.strategies.surrogate import SurrogateStrategy

ACQUISITIONS = ("its", "ucb", "mean")


class Bananas(SurrogateStrategy):
    """``pool`` candidates per round, mutated from the ``parents`` best results; ``batch`` evaluated per round."""

    name = "bananas"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        initial: int = 10,
        pool: int = 200,
        parents: int = 10,
        batch: int = 1,
        acquisition: str = "its",
        kappa: float = 0.5,
        predictor: str = "mlp",
        encoding: str = "path",
    ) -> None:
        super().__init__(space, seed, predictor=predictor, initial=initial, refit=batch, encoding=encoding)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acquisition!r} (allowed: {', '.join(ACQUISITIONS)})")
        if pool < 1 or parents < 1 or batch < 1:
            raise ValueError(f"pool, parents and batch must be >= 1, got {pool}, {parents}, {batch}")
        self.pool, self.parents, self.batch = pool, parents, batch
        self.acquisition, self.kappa = acquisition, kappa
        self.queue: list[Any] = []

    def _round(self) -> list[Any]:
        """The ``batch`` candidates of one round, best acquisition first."""
        best = sorted(self.history, key=lambda m: -m[1])[: self.parents]
        candidates = self.mutants([g for g, _ in best], self.pool)
        if not candidates:
            return [self.sample_new()]
        mean, std = self.predict(candidates)
        if self.acquisition == "its":
            value = mean + std * self.rng.standard_normal(len(mean))
        elif self.acquisition == "ucb":
            value = mean + self.kappa * std
        else:
            value = mean
        order = np.argsort(-value, kind="stable")[: self.batch]
        chosen = [candidates[i] for i in order]
        self.asked.update(g.key for g in chosen)
        return chosen

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if self.warming_up():
                out.append(self.random_new())
                continue
            if not self.queue:
                self.queue = self._round()
            out.append(self.queue.pop(0))
        return out

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "queue": [g.to_json() for g in self.queue]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.queue = [self._g(g) for g in state["queue"]]

"""The shared part of predictor-guided strategies: every told result kept, a performance predictor fitted on them,
and candidate pools made by mutating good architectures.

The predictor is refitted from the history alone, with a seed derived from the strategy's seed and the history's
length, so a strategy restored from ``state_dict`` refits the same model and continues identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.strategies.base import Strategy
from archsearch.strategies.predictors import ENCODINGS, PREDICTORS, Predictor, features, make_predictor
from archsearch.trial import Trial


class SurrogateStrategy(Strategy):
    """Keeps ``history`` (genotype, score) of completed trials; ``initial`` random genotypes come first; the
    ``predictor`` (``mlp`` or ``gbt``, on the space's ``path`` or ``onehot`` encoding) is refitted once at least
    ``refit`` new results have arrived."""

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        predictor: str = "mlp",
        initial: int = 10,
        refit: int = 1,
        encoding: str = "path",
    ) -> None:
        super().__init__(space, seed)
        PREDICTORS.get(predictor)
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r} (allowed: {', '.join(ENCODINGS)})")
        self.encoding = encoding
        if initial < 2:
            raise ValueError(f"initial must be >= 2 (the predictor needs two results), got {initial}")
        if refit < 1:
            raise ValueError(f"refit must be >= 1, got {refit}")
        self.predictor, self.initial, self.refit = predictor, initial, refit
        self.history: list[tuple[Any, float]] = []
        self.initial_asked = 0
        self._model: Predictor | None = None
        self._fitted_on = 0

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is not None and not t.cached:
                self.history.append((t.genotype, float(t.score)))

    def warming_up(self) -> bool:
        """Whether the next genotype is still one of the random initial ones."""
        return self.initial_asked < self.initial or len(self.history) < 2

    def model(self) -> Predictor:
        """The predictor fitted on the first ``n`` results, ``n`` the history's length rounded down to a multiple of
        ``refit`` (a function of the length alone, so a restored strategy fits the same model)."""
        length = len(self.history)
        n = length - length % self.refit if length >= self.refit else length
        if self._model is None or self._fitted_on != n:
            rows = self.history[:n]
            self._model = make_predictor(self.predictor, seed=self.seed * 100_003 + n).fit(
                features(self.space, [g for g, _ in rows], encoding=self.encoding), np.array([s for _, s in rows])
            )
            self._fitted_on = n
        return self._model

    def predict(self, genotypes: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and uncertainty of each genotype's score."""
        return self.model().predict(features(self.space, genotypes, encoding=self.encoding))

    def mutants(self, parents: Sequence[Any], count: int, max_edits: int = 2) -> list[Any]:
        """Up to ``count`` distinct genotypes not asked before, each 1..``max_edits`` mutations from a parent
        (parents taken in turn)."""
        out: dict[str, Any] = {}
        tries = 0
        while len(out) < count and tries < 20 * count:
            g = parents[tries % len(parents)]
            tries += 1
            for _ in range(1 + int(self.rng.integers(max_edits))):
                g = self.space.mutate(g, self.rng)
            if g.key not in self.asked:
                out.setdefault(g.key, g)
        return list(out.values())

    def random_new(self) -> Any:
        """A random genotype for the initial phase."""
        self.initial_asked += 1
        return self.sample_new()

    def extra_state(self) -> dict[str, Any]:
        return {"history": [[g.to_json(), s] for g, s in self.history], "initial_asked": self.initial_asked}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.history = [(self._g(g), float(s)) for g, s in state["history"]]
        self.initial_asked = int(state["initial_asked"])
        self._model, self._fitted_on = None, 0

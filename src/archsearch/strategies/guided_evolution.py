"""Predictor-guided regularized evolution: each child is the best *predicted* of several mutations of the
tournament winner, so only promising children are evaluated (the population ages out its oldest member as in
regularized evolution)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.strategies.surrogate import SurrogateStrategy
from archsearch.trial import Trial


class GuidedEvolution(SurrogateStrategy):
    """A population of ``population_size``; per child, ``candidates`` mutations of the best of ``sample_size``
    random members are scored by the predictor and the highest predicted mean is evaluated."""

    name = "guided_evolution"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        population_size: int = 20,
        sample_size: int = 5,
        candidates: int = 50,
        refit: int = 1,
        predictor: str = "mlp",
        encoding: str = "path",
    ) -> None:
        super().__init__(space, seed, predictor=predictor, initial=population_size, refit=refit, encoding=encoding)
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size}, {population_size}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.population_size, self.sample_size, self.candidates = population_size, sample_size, candidates
        self.population: deque[tuple[Any, float]] = deque()

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if self.warming_up() or not self.population:
                out.append(self.random_new())
                continue
            idx = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
            parent = max((self.population[i] for i in idx), key=lambda m: m[1])[0]
            children = self.mutants([parent], self.candidates, max_edits=1)
            if not children:
                out.append(self.sample_new())
                continue
            mean, _ = self.predict(children)
            child = children[int(np.argmax(mean))]
            self.asked.add(child.key)
            out.append(child)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        super().tell(trials)
        for t in trials:
            if t.score is None:
                continue
            self.population.append((t.genotype, float(t.score)))
            if len(self.population) > self.population_size:
                self.population.popleft()

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "population": [[g.to_json(), s] for g, s in self.population]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.population = deque((self._g(g), float(s)) for g, s in state["population"])

"""Regularized evolution (Real et al. 2019): tournament selection, mutation of the winner, removal of the oldest."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class RegularizedEvolution(Strategy):
    """A population of ``population_size``: the first members are random; then each child mutates the best of
    ``sample_size`` members drawn at random, joins the population, and the oldest member leaves."""

    name = "evolution"

    def __init__(self, space: Any, seed: int = 0, population_size: int = 10, sample_size: int = 3) -> None:
        super().__init__(space, seed)
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size}, {population_size}")
        self.population_size, self.sample_size = population_size, sample_size
        self.population: deque[tuple[Any, float]] = deque()
        self.initial_asked = 0

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if self.initial_asked < self.population_size or not self.population:
                self.initial_asked += 1
                out.append(self.sample_new())
                continue
            idx = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
            parent = max((self.population[i] for i in idx), key=lambda m: m[1])[0]
            child = self.space.mutate(parent, self.rng)
            for _ in range(20):  # prefer a child not seen before
                if child.key not in self.asked:
                    break
                child = self.space.mutate(parent, self.rng)
            self.asked.add(child.key)
            out.append(child)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is None:
                continue
            self.population.append((t.genotype, t.score))
            if len(self.population) > self.population_size:
                self.population.popleft()

    def extra_state(self) -> dict[str, Any]:
        return {"population": [[g.to_json(), s] for g, s in self.population], "initial_asked": self.initial_asked}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.population = deque((self._g(g), s) for g, s in state["population"])
        self.initial_asked = state["initial_asked"]

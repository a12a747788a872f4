"""Genetic search: generations, tournament selection, crossover, mutation rate, elitism."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class GeneticSearch(Strategy):
    """Generational GA: the first generation is random; each next one keeps the ``elites`` best of all so far and
    fills up with children of two tournament winners (crossover with ``crossover_rate``, then mutation with
    ``mutation_rate``)."""

    name = "genetic"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        population_size: int = 20,
        tournament_size: int = 3,
        crossover_rate: float = 0.7,
        mutation_rate: float = 0.8,
        elites: int = 2,
    ) -> None:
        super().__init__(space, seed)
        if not 1 <= tournament_size <= population_size or not 0 <= elites < population_size:
            raise ValueError("need 1 <= tournament_size <= population_size and 0 <= elites < population_size")
        self.population_size, self.tournament_size, self.elites = population_size, tournament_size, elites
        self.crossover_rate, self.mutation_rate = crossover_rate, mutation_rate
        self.evaluated: list[tuple[Any, float]] = []  # this generation's told members
        self.parents: list[tuple[Any, float]] = []  # the previous generation (with elites)
        self.queue: list[Any] = []  # genotypes of the current generation not yet asked
        self.generation = 0

    def _tournament(self) -> Any:
        idx = self.rng.choice(len(self.parents), size=min(self.tournament_size, len(self.parents)), replace=False)
        return max((self.parents[i] for i in idx), key=lambda m: m[1])[0]

    def _next_generation(self) -> None:
        pool = sorted(self.parents + self.evaluated, key=lambda m: -m[1])
        self.parents = pool[: self.population_size] if pool else []
        self.evaluated = []
        self.generation += 1
        children = []
        while len(children) < self.population_size - self.elites:
            if not self.parents:
                children.append(self.sample_new())
                continue
            a = self._tournament()
            if self.rng.random() < self.crossover_rate:
                child = self.space.crossover(a, self._tournament(), self.rng)
            else:
                child = a
            if self.rng.random() < self.mutation_rate or child.key in self.asked:
                child = self.space.mutate(child, self.rng)
            self.asked.add(child.key)
            children.append(child)
        self.queue = children

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if self.generation == 0:
                self.queue = [self.sample_new() for _ in range(self.population_size)]
                self.generation = 1
            if not self.queue:
                self._next_generation()
            out.append(self.queue.pop(0))
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is not None:
                self.evaluated.append((t.genotype, t.score))

    def extra_state(self) -> dict[str, Any]:
        ser = lambda ms: [[g.to_json(), s] for g, s in ms]  # noqa: E731
        return {
            "evaluated": ser(self.evaluated),
            "parents": ser(self.parents),
            "queue": [g.to_json() for g in self.queue],
            "generation": self.generation,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.evaluated = [(self._g(g), s) for g, s in state["evaluated"]]
        self.parents = [(self._g(g), s) for g, s in state["parents"]]
        self.queue = [self._g(g) for g in state["queue"]]
        self.generation = state["generation"]

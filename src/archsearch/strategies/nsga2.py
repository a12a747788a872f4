"""NSGA-II (Deb et al., 2002): multi-objective evolution by non-dominated sorting and crowding distance.

Each generation of ``population_size`` children is bred from the parents by binary tournaments (lower front wins,
then larger crowding distance), the space's own crossover and mutation; the next parents are the best
``population_size`` of parents and children together (elitist), taken front by front, the last front cut by
crowding distance. The objectives are the search's (``--objectives val_acc,latency_ms``), read from each trial's
metrics with their directions; a trial that failed or broke a constraint never becomes a parent (feasibility first,
as Deb's constrained NSGA-II ranks it).

Written here rather than through Optuna's ``NSGAIISampler``: that sampler breeds in Optuna's per-parameter view, which
cannot use a space's own crossover and mutation (a stage taken whole, a depth change that adds layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.objectives import DIRECTIONS, non_dominated_sort, parse_objective
from archsearch.strategies.base import Strategy
from archsearch.trial import Trial

Member = tuple[Any, list[float]]


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Each point's crowding distance within its front (boundary points: infinite)."""
    n, m = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return distance


def rank_and_crowd(points: np.ndarray, directions: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(front index, crowding distance) of every point."""
    rank, crowd = np.zeros(len(points), dtype=int), np.zeros(len(points))
    for r, front in enumerate(non_dominated_sort(points, directions)):
        rank[front] = r
        crowd[front] = crowding_distance(points[front])
    return rank, crowd


class NSGA2(Strategy):
    """NSGA-II over the search's objectives (see the module docstring)."""

    name = "nsga2"
    multi_objective = True

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        population_size: int = 20,
        crossover_rate: float = 0.9,
        mutation_rate: float = 1.0,
        objectives: Sequence[str] | None = None,
    ) -> None:
        """``objectives``: the metrics to optimise (a search passes its ``--objectives``; default val_acc, params)."""
        super().__init__(space, seed)
        objectives = ("val_acc", "params") if objectives is None else tuple(objectives)
        if population_size < 2 or not 0 <= crossover_rate <= 1 or not 0 <= mutation_rate <= 1:
            raise ArchsearchError("nsga2 needs population_size >= 2 and rates in [0, 1]")
        parsed = [parse_objective(o) for o in objectives]
        if len(objectives) < 2 or any(way is None for _, way in parsed):
            raise ArchsearchError(f"nsga2 needs two or more known objectives (built-in: "
                                  f"{', '.join(DIRECTIONS)}; a table column as name:min or name:max), "
                                  f"got {list(objectives)}")  # fmt: skip
        self.objectives = [name for name, _ in parsed]
        self.directions = [bool(way) for _, way in parsed]
        self.population_size, self.crossover_rate, self.mutation_rate = population_size, crossover_rate, mutation_rate
        self.evaluated: list[Member] = []  # children told in this generation
        self.parents: list[Member] = []
        self.queue: list[Any] = []
        self.generation = 0

    def _select(self) -> None:
        """The next parents: the best ``population_size`` of parents and children, front by front."""
        pool = self.parents + self.evaluated
        self.evaluated = []
        if not pool:
            return
        rank, crowd = rank_and_crowd(np.array([v for _, v in pool]), self.directions)
        order = sorted(range(len(pool)), key=lambda i: (rank[i], -crowd[i], i))
        self.parents = [pool[i] for i in order[: self.population_size]]

    def _tournament(self, rank: np.ndarray, crowd: np.ndarray) -> Any:
        i, j = (int(k) for k in self.rng.choice(len(self.parents), size=2, replace=len(self.parents) < 2))
        better = i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j
        return self.parents[better][0]

    def _breed(self) -> None:
        self._select()
        self.generation += 1
        if not self.parents:
            self.queue = [self.sample_new() for _ in range(self.population_size)]
            return
        rank, crowd = rank_and_crowd(np.array([v for _, v in self.parents]), self.directions)
        children = []
        while len(children) < self.population_size:
            child = self._tournament(rank, crowd)
            if self.rng.random() < self.crossover_rate:
                child = self.space.crossover(child, self._tournament(rank, crowd), self.rng)
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
                self._breed()
            out.append(self.queue.pop(0))
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is None:
                continue
            values = [t.metrics.get(o) for o in self.objectives]
            if any(v is None for v in values):
                missing = [o for o, v in zip(self.objectives, values) if v is None]
                raise ArchsearchError(f"nsga2 was told trial {t.number} without its objective(s) {missing}")
            self.evaluated.append((t.genotype, [float(v) for v in values]))  # type: ignore[arg-type]

    def extra_state(self) -> dict[str, Any]:
        ser = lambda ms: [[g.to_json(), v] for g, v in ms]  # noqa: E731
        return {"evaluated": ser(self.evaluated), "parents": ser(self.parents),
                "queue": [g.to_json() for g in self.queue], "generation": self.generation}  # fmt: skip

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.evaluated = [(self._g(g), list(v)) for g, v in state["evaluated"]]
        self.parents = [(self._g(g), list(v)) for g, v in state["parents"]]
        self.queue = [self._g(g) for g in state["queue"]]
        self.generation = state["generation"]

"""Local search: hill climbing over the space's one-edit neighbours, restarting at random from local optima."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class LocalSearch(Strategy):
    """Start from the best of ``initial`` random genotypes; evaluate the neighbours of the current centre in random
    order and, once all are known, move to the best one if it beats the centre; at a local optimum, restart from a
    new random genotype. (White et al. 2021 found this simple loop state of the art on NAS benchmarks.)"""

    name = "local"

    def __init__(self, space: Any, seed: int = 0, initial: int = 10) -> None:
        super().__init__(space, seed)
        self.initial = initial
        self.initial_asked = 0
        self.scores: dict[str, float | None] = {}
        self.best: tuple[Any, float] | None = None  # best told so far (chooses the first centre)
        self.center: tuple[Any, float] | None = None
        self.queue: list[Any] = []
        self.restart_key: str | None = None  # the random restart whose result will become the centre
        self.restarts = 0

    def _climb(self) -> bool:
        """Queue unasked neighbours of the centre, moving uphill while every neighbour is known; False when none
        can be queued (a local optimum, or neighbours still running)."""
        while self.center is not None:
            neighbours = self.space.neighbors(self.center[0])
            fresh = [g for g in neighbours if g.key not in self.asked]
            if fresh:
                self.queue = [fresh[i] for i in self.rng.permutation(len(fresh))]
                return True
            if any(g.key not in self.scores for g in neighbours):
                return False
            scored = [(g, self.scores[g.key]) for g in neighbours if self.scores[g.key] is not None]
            top = max(scored, key=lambda m: m[1], default=None)
            if top is None or top[1] <= self.center[1]:
                self.center = None
                self.restarts += 1
                return False
            self.center = top
        return False

    def ask(self, n: int = 1) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            if self.initial_asked < self.initial:
                self.initial_asked += 1
                out.append(self.sample_new())
            elif self.queue or self._climb():
                g = self.queue.pop(0)
                self.asked.add(g.key)
                out.append(g)
            elif self.center is None and self.restarts == 0 and self.best is not None:
                self.center = self.best  # the first climb starts from the best initial sample
            else:
                g = self.sample_new()
                if self.center is None and self.restart_key is None:
                    self.restart_key = g.key
                out.append(g)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            self.scores[t.key] = t.score
            if t.score is not None and (self.best is None or t.score > self.best[1]):
                self.best = (t.genotype, t.score)
            if t.key == self.restart_key:
                self.restart_key = None
                if t.score is not None and self.center is None:
                    self.center = (t.genotype, t.score)

    def extra_state(self) -> dict[str, Any]:
        pair = lambda m: None if m is None else [m[0].to_json(), m[1]]  # noqa: E731
        return {
            "initial_asked": self.initial_asked,
            "scores": self.scores,
            "best": pair(self.best),
            "center": pair(self.center),
            "queue": [g.to_json() for g in self.queue],
            "restart_key": self.restart_key,
            "restarts": self.restarts,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        unpair = lambda m: None if m is None else (self._g(m[0]), m[1])  # noqa: E731
        self.initial_asked, self.scores = state["initial_asked"], dict(state["scores"])
        self.best, self.center = unpair(state["best"]), unpair(state["center"])
        self.queue = [self._g(g) for g in state["queue"]]
        self.restart_key, self.restarts = state["restart_key"], state["restarts"]

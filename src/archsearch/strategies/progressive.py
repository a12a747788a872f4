"""Progressive search: the allowed complexity of architectures grows in stages.

Stage ``s`` of ``stages`` admits genotypes whose ``space.complexity`` is at most the ``(s + 1) / stages`` quantile of
the complexity of random samples (the last stage admits everything). Within a stage, new candidates are mutations
of the best architectures found so far, kept under the stage's limit, with a share of random exploration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class ProgressiveSearch(Strategy):
    """Stages of ``stage_size`` trials with a growing complexity limit; candidates mutate the ``top_k`` best."""

    name = "progressive"

    def __init__(
        self, space: Any, seed: int = 0, stages: int = 4, stage_size: int = 25, top_k: int = 5, explore: float = 0.2
    ) -> None:
        super().__init__(space, seed)
        self.stages, self.stage_size, self.top_k, self.explore = stages, stage_size, top_k, explore
        probe = np.random.default_rng(seed + 7919)
        sample = np.array([space.complexity(space.sample(probe)) for _ in range(500)])
        self.limits = [float(np.quantile(sample, (s + 1) / stages)) for s in range(stages - 1)] + [float("inf")]
        self.asked_count = 0
        self.elite: list[tuple[Any, float]] = []

    @property
    def stage(self) -> int:
        return min(self.asked_count // self.stage_size, self.stages - 1)

    def _candidate(self, limit: float) -> Any:
        for _ in range(200):
            if not self.elite or self.rng.random() < self.explore:
                g = self.space.sample(self.rng)
            else:
                parent = self.elite[int(self.rng.integers(len(self.elite)))][0]
                g = self.space.mutate(parent, self.rng)
            if self.space.complexity(g) <= limit and g.key not in self.asked:
                return g
        return self.sample_new()

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            g = self._candidate(self.limits[self.stage])
            self.asked.add(g.key)
            self.asked_count += 1
            out.append(g)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is not None:
                self.elite.append((t.genotype, t.score))
        self.elite = sorted(self.elite, key=lambda m: -m[1])[: self.top_k]

    def extra_state(self) -> dict[str, Any]:
        limits = [None if x == float("inf") else x for x in self.limits]
        return {"asked_count": self.asked_count, "elite": [[g.to_json(), s] for g, s in self.elite], "limits": limits}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.asked_count = state["asked_count"]
        self.elite = [(self._g(g), s) for g, s in state["elite"]]
        self.limits = [float("inf") if x is None else float(x) for x in state["limits"]]

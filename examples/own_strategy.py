"""Your own search strategy: a (1+1) evolution strategy with restarts, in the ask / tell interface.

    python examples/own_strategy.py

It keeps the best architecture so far and asks for a mutation of it; with probability ``restart`` it asks for a
random one instead. Its state (random generator, the best so far) is JSON, so a killed search resumes exactly.
Registered, it runs on every space and passes the reusable strategy suite (``archsearch.testing.strategy_suite``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import archsearch
from archsearch import Strategy, Trial, register_strategy


@register_strategy
class OnePlusOne(Strategy):
    """Mutate the best architecture found so far; restart from a random one with probability ``restart``."""

    name = "one_plus_one"

    def __init__(self, space: Any, seed: int = 0, restart: float = 0.1) -> None:
        super().__init__(space, seed)
        if not 0.0 <= restart <= 1.0:
            raise ValueError(f"restart is a probability in [0, 1], got {restart}")
        self.restart = restart
        self.best: tuple[float, Any] | None = None  # (score, genotype)

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if self.best is None or self.rng.random() < self.restart:
                out.append(self.sample_new())
            else:
                out.append(self.space.mutate(self.best[1], self.rng))
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is not None and (self.best is None or t.score > self.best[0]):
                self.best = (t.score, t.genotype)

    def extra_state(self) -> dict[str, Any]:
        return {"best": None if self.best is None else [self.best[0], self.best[1].to_json()]}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        best = state["best"]
        self.best = None if best is None else (best[0], self.space.from_json(best[1]))


if __name__ == "__main__":
    narrow = {"channels": 8, "cells_per_stage": 1}  # one narrow cell a stage: a trial in a second or two
    result = archsearch.search(space="nb201", strategy="one_plus_one", dataset="digits", budget=4,
                               strategy_options={"restart": 0.2},
                               evaluator_options={"epochs": 1, "build": narrow})  # fmt: skip
    print(f"best: {result.winner.genotype}  val_acc {result.winner.metrics['val_acc']:.2f}%")
    print(f"run: {result.run_dir}  (archsearch show / report / export read it)")

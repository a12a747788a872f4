"""Random search: uniform samples of the space, without repeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.strategies.base import Strategy
from archsearch.trial import Trial


class RandomSearch(Strategy):
    """Samples genotypes uniformly (over the space's decisions), never asking the same one twice."""

    name = "random"

    def ask(self, n: int = 1) -> list[Any]:
        return [self.sample_new() for _ in range(n)]

    def tell(self, trials: Sequence[Trial]) -> None:
        """Random search learns nothing."""

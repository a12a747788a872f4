"""Multi-trial strategies by name; each is one file implementing ask / tell / state_dict / load_state_dict."""

from __future__ import annotations

import inspect
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.registry import Registry
from archsearch.spaces import Space, get_space
from archsearch.strategies.bananas import Bananas
from archsearch.strategies.base import Strategy
from archsearch.strategies.bayes import BayesianOptimization
from archsearch.strategies.evolution import RegularizedEvolution
from archsearch.strategies.genetic import GeneticSearch
from archsearch.strategies.guided_evolution import GuidedEvolution
from archsearch.strategies.local import LocalSearch
from archsearch.strategies.progressive import ProgressiveSearch
from archsearch.strategies.random import RandomSearch
from archsearch.strategies.reinforce import Reinforce

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
for _cls in (
    RandomSearch,
    RegularizedEvolution,
    GeneticSearch,
    Reinforce,
    BayesianOptimization,
    LocalSearch,
    ProgressiveSearch,
    Bananas,
    GuidedEvolution,
):
    STRATEGIES.add(_cls.name, _cls)


def get_strategy(strategy: str | Strategy, space: str | Space[Any], seed: int = 0, **options: Any) -> Strategy:
    """A strategy by name for ``space`` (with its options), or the given strategy object unchanged."""
    if isinstance(strategy, Strategy):
        return strategy
    cls = STRATEGIES.get(strategy)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "space", "seed")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(allowed) or "none"
        raise ArchsearchError(f"strategy {strategy!r} has no option(s) {unknown} (allowed: {names})")
    return cls(get_space(space), seed=seed, **options)


__all__ = ["STRATEGIES", "Strategy", "get_strategy"]

"""Multi-trial strategies by name; each is one file implementing ask / tell / state_dict / load_state_dict."""

from __future__ import annotations

import inspect
from typing import Any

from archsearch.errors import ArchsearchError, OptionError
from archsearch.registry import Registry
from archsearch.spaces import Space, get_space
from archsearch.strategies.bananas import Bananas
from archsearch.strategies.base import Strategy
from archsearch.strategies.bayes import BayesianOptimization
from archsearch.strategies.evolution import RegularizedEvolution
from archsearch.strategies.genetic import GeneticSearch
from archsearch.strategies.guided_evolution import GuidedEvolution
from archsearch.strategies.local import LocalSearch
from archsearch.strategies.motpe import MultiObjectiveTPE
from archsearch.strategies.nsga2 import NSGA2
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
    NSGA2,
    MultiObjectiveTPE,
):
    STRATEGIES.add(_cls.name, _cls)


def register_strategy(cls: type[Strategy] | None = None, *, name: str | None = None) -> Any:
    """Register a strategy class (a decorator, or a call) under its ``name`` attribute (or ``name``). It subclasses
    :class:`Strategy`, takes ``(space, seed=0, **options)`` and implements ask / tell / state_dict /
    load_state_dict; check it with :mod:`archsearch.testing.strategy_suite` (``examples/own_strategy.py``)."""

    def register(strategy_cls: type[Strategy]) -> type[Strategy]:
        if not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
            raise ArchsearchError(f"register_strategy takes a subclass of archsearch.Strategy, got {strategy_cls!r}")
        key = name or getattr(strategy_cls, "name", None)
        if not isinstance(key, str) or not key.isidentifier():
            raise ArchsearchError(f"{strategy_cls.__name__} needs a name that is an identifier, got {key!r}")
        if getattr(strategy_cls, "__abstractmethods__", None):
            missing = ", ".join(sorted(strategy_cls.__abstractmethods__))
            raise ArchsearchError(f"strategy {strategy_cls.__name__} does not implement {missing}")
        STRATEGIES.add(key, strategy_cls)  # first: a refused name changes nothing
        strategy_cls.name = key
        return strategy_cls

    return register if cls is None else register(cls)


def get_strategy(strategy: str | Strategy, space: str | Space[Any], seed: int = 0, **options: Any) -> Strategy:
    """A strategy by name for ``space`` (with its options), or the given strategy object unchanged."""
    if isinstance(strategy, Strategy):
        return strategy
    cls = STRATEGIES.get(strategy)
    params = {
        name: p
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name not in ("self", "space", "seed")
    }
    unknown = sorted(set(options) - set(params))
    if unknown:
        names = ", ".join(params) or "none"
        raise ArchsearchError(f"strategy {strategy!r} has no option(s) {unknown} (allowed: {names})")
    for name, value in options.items():
        _check_option_type(strategy, name, value, params[name].default)
    try:
        return cls(get_space(space), seed=seed, **options)
    except (ValueError, TypeError) as exc:  # the strategy's own checks of its option values
        raise OptionError(f"strategy {strategy!r}: {exc}") from None


def _check_option_type(strategy: str, name: str, value: Any, default: Any) -> None:
    """An option must have its default's type (an int where a float is expected is fine)."""
    if default is inspect.Parameter.empty or default is None:
        return
    kinds: tuple[type, ...] = (int, float) if isinstance(default, float) else (type(default),)
    if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, kinds):
        raise ArchsearchError(
            f"strategy {strategy!r}: option {name} must be {type(default).__name__} like its default {default!r}, "
            f"got {value!r}"
        )


__all__ = ["STRATEGIES", "Strategy", "get_strategy", "register_strategy"]

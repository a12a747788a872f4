"""Evaluators by name: ``train`` (from scratch), ``proxy`` (cheap knobs), ``table`` (a tabular benchmark),
``zero_cost`` (proxies of the untrained network)."""

from __future__ import annotations

from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator
from archsearch.evaluators.benchmark import Table, TableEvaluator
from archsearch.evaluators.train import ProxyEvaluator, TrainEvaluator
from archsearch.evaluators.zero_cost import ZeroCostEvaluator
from archsearch.registry import Registry
from archsearch.spaces import Space

EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
EVALUATORS.add("train", TrainEvaluator)
EVALUATORS.add("proxy", ProxyEvaluator)
EVALUATORS.add("table", TableEvaluator)
EVALUATORS.add("zero_cost", ZeroCostEvaluator)


def make_evaluator(name: str, space: str | Space[Any], options: dict[str, Any]) -> Evaluator:
    """Build an evaluator from its registered name, or ``package.module:Class`` for one of your own (importable
    wherever trials run, as worker processes and Ray tasks build their evaluator from this name), and JSON-able
    options."""
    if ":" in name:
        import importlib

        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ArchsearchError(f"evaluator {name!r}: cannot import {attr} from {module_name} ({exc})") from None
        try:
            return cls(space, **options)  # type: ignore[no-any-return]
        except TypeError as exc:  # most often an option the class does not take
            raise ArchsearchError(f"evaluator {name!r}: {exc}") from None
    cls = EVALUATORS.get(name)
    if cls is TableEvaluator:
        return TableEvaluator(**options)
    return cls(space, **options)  # type: ignore[call-arg]


__all__ = [
    "EVALUATORS",
    "Evaluator",
    "ProxyEvaluator",
    "Table",
    "TableEvaluator",
    "TrainEvaluator",
    "ZeroCostEvaluator",
    "make_evaluator",
]

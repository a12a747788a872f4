"""Evaluators by name: ``train`` (from scratch), ``proxy`` (cheap knobs), ``table`` (a tabular benchmark),
``zero_cost`` (proxies of the untrained network)."""

from __future__ import annotations

from typing import Any

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
    """Build a registered evaluator from its name and JSON-able options."""
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

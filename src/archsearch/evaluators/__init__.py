"""Evaluators by name: ``train`` (from scratch), ``proxy`` (cheap knobs), ``table`` (a tabular benchmark),
``zero_cost`` (proxies of the untrained network)."""

from __future__ import annotations

from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator, clean_metrics
from archsearch.evaluators.table import Table, TableEvaluator
from archsearch.evaluators.train import ProxyEvaluator, TrainEvaluator
from archsearch.evaluators.zero_cost import ZeroCostEvaluator
from archsearch.registry import Registry
from archsearch.spaces import Space

EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
EVALUATORS.add("train", TrainEvaluator)
EVALUATORS.add("proxy", ProxyEvaluator)
EVALUATORS.add("table", TableEvaluator)
EVALUATORS.add("zero_cost", ZeroCostEvaluator)


class FunctionEvaluator(Evaluator):
    """An evaluator made from a function ``f(genotype, space, **options) -> {metric: value}`` (see
    :func:`register_evaluator`)."""

    name = "function"
    function: Any = None

    def __init__(self, space: str | Space[Any], **options: Any) -> None:
        from archsearch.spaces import get_space

        self.space = get_space(space)
        self.options = options

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        return clean_metrics(type(self).function(genotype, self.space, **self.options), f"evaluator {self.name!r}")


def register_evaluator(obj: Any = None, *, name: str | None = None) -> Any:
    """Register an evaluator under a name: an :class:`Evaluator` subclass taking ``(space, **options)``, or a
    function ``f(genotype, space, **options)`` returning metrics (``{"val_acc": ...}``). A decorator or a call;
    ``name`` defaults to the class's ``name`` or the function's ``__name__``. Searches then name it like a built-in
    (``evaluator="mine"``), and options given to the search reach it as keyword arguments."""

    def register(target: Any) -> Any:
        if isinstance(target, type) and issubclass(target, Evaluator):
            if getattr(target, "__abstractmethods__", None):
                raise ArchsearchError(f"evaluator {target.__name__} does not implement evaluate")
            cls = target
            key = name or getattr(target, "name", None)
        elif callable(target) and not isinstance(target, type):
            key = name or getattr(target, "__name__", None)
            # named after the function, so defining the same function again replaces it and another one clashes
            body = {"name": key, "function": staticmethod(target), "__module__": target.__module__,
                    "__qualname__": getattr(target, "__qualname__", key)}  # fmt: skip
            cls = type(f"FunctionEvaluator_{key}", (FunctionEvaluator,), body)
        else:
            raise ArchsearchError(f"register_evaluator takes an Evaluator subclass or a function, got {target!r}")
        if not isinstance(key, str) or not key.isidentifier():
            raise ArchsearchError(f"an evaluator needs a name that is an identifier, got {key!r}")
        EVALUATORS.add(key, cls)  # first: a refused name changes nothing
        cls.name = key
        return target

    return register if obj is None else register(obj)


def accepts(name: str, option: str) -> bool:
    """Whether the registered evaluator ``name`` takes keyword ``option`` (a function evaluator takes any)."""
    import inspect

    cls = EVALUATORS.get(name)
    if issubclass(cls, FunctionEvaluator):
        params = inspect.signature(cls.function).parameters
    else:
        params = inspect.signature(cls.__init__).parameters
    return option in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


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
        return TableEvaluator(space=space, **options)
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
    "register_evaluator",
]

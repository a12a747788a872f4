"""Reading what a run directory stores, every field checked: a run directory is data, possibly tampered with or
written by another version, and what reads it (``show``, ``report``, ``export``) either gets well-typed values or a
clear error naming the field; nothing stored is imported or run.

A run made with a space or evaluator registered in the process that ran it (``register_space``,
``register_evaluator``) is read by every command: where the space is not registered here, its genotypes are shown as
stored (:class:`archsearch.spaces.StoredGenotype`) and never built.
"""

from __future__ import annotations

import json
import math
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.trial import STATUSES


def finite_or_none(value: Any) -> float | None:
    """A stored number as a finite float, or None (missing, text, boolean, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def stored_metrics(text: Any) -> dict[str, float]:
    """A trial's stored metrics (JSON text of an object of numbers); raises ValueError saying what is wrong."""
    obj = json.loads(text) if isinstance(text, (str, bytes)) else text
    if not isinstance(obj, dict):
        raise ValueError(f"metrics are {type(obj).__name__}, not an object")
    out = {}
    for name, value in obj.items():
        number = finite_or_none(value)
        if number is None:
            raise ValueError(f"metric {name!r} is {value!r:.40}, not a finite number")
        out[str(name)] = number
    return out


def check_trial_fields(number: Any, status: Any, score: Any, error: Any, fidelity: Any, seconds: Any) -> None:
    """Raise ValueError naming the first stored trial field of the wrong type."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"trial number {number!r:.40}")
    if status not in STATUSES:
        raise ValueError(f"status {status!r:.40} (allowed: {', '.join(STATUSES)})")
    for name, value in (("score", score), ("fidelity", fidelity)):
        if value is not None and finite_or_none(value) is None:
            raise ValueError(f"{name} {value!r:.40}, not a finite number")
    if finite_or_none(seconds) is None:
        raise ValueError(f"seconds {seconds!r:.40}, not a finite number")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"error {error!r:.40}, not text")


def check_config(config: Any, where: str) -> dict[str, Any]:
    """A search's stored config with the fields readers use checked (types, finite limits); the first wrong one is
    an :class:`ArchsearchError` naming it."""

    def wrong(field: str, value: Any, wanted: str) -> ArchsearchError:
        return ArchsearchError(f"{where}: the recorded config's {field} is {value!r:.80}, not {wanted} (the run "
                               "directory was changed by something other than archsearch)")  # fmt: skip

    if not isinstance(config, dict):
        raise wrong("record", config, "an object")
    for field in ("space", "strategy", "evaluator"):
        if not isinstance(config.get(field), str):
            raise wrong(field, config.get(field), "text")
    for field in ("space_options", "strategy_options", "evaluator_options"):
        if not isinstance(config.get(field, {}), dict):
            raise wrong(field, config.get(field), "an object")
    for field in ("objective", "budget"):
        if not isinstance(config.get(field), dict):
            raise wrong(field, config.get(field), "an object")
    build = config.get("evaluator_options", {}).get("build", {})
    if not isinstance(build, dict) or any(not isinstance(v, (int, float, bool, type(None))) for v in build.values()):
        raise wrong("evaluator_options.build", build, "an object of numbers")
    objective = config["objective"]
    if not isinstance(objective.get("metric"), str):
        raise wrong("objective.metric", objective.get("metric"), "text")
    limits = objective.get("limits")
    if not isinstance(limits, dict) or any(finite_or_none(v) is None for v in limits.values()):
        raise wrong("objective.limits", limits, "an object of finite numbers")
    columns = objective.get("columns", {})
    if not isinstance(columns, dict) or any(not isinstance(v, (bool, type(None))) for v in columns.values()):
        raise wrong("objective.columns", columns, "an object of directions (true, false or null)")
    if not isinstance(objective.get("latency_model", {}), (dict, type(None))):
        raise wrong("objective.latency_model", objective.get("latency_model"), "an object")
    objectives = objective.get("objectives")
    if not isinstance(objectives, list) or not all(isinstance(o, str) for o in objectives):
        raise wrong("objective.objectives", objectives, "a list of metric names")
    budget = config["budget"]
    for field in ("trials", "seconds"):
        value = budget.get(field)
        if value is not None and finite_or_none(value) is None:
            raise wrong(f"budget.{field}", value, "a number")
    seed = config.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise wrong("seed", seed, "a whole number")
    return config

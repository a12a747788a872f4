"""Objectives: which metric to maximise (or minimise), constraints checked before training, and Pareto fronts.

A constraint is a limit on a cost metric (``params``, ``flops``, ``latency_ms``, ``train_peak_mb``...). Cheap costs
are measured on the built network before any training; a network that breaks a limit is never trained and is recorded
as infeasible with the measured values. Several objectives give a Pareto front (non-dominated sorting) and its
hypervolume.

A search on a table may also name any numeric column of the table (``pixel3_ms``) as an objective or a constraint:
such a column is a *column metric*, read from the table like a cost. Its direction is known for built-in names
(:data:`DIRECTIONS`, :data:`KNOWN_COLUMNS`), given as ``name:min`` / ``name:max``, or the objective is refused; a
constraint ``name<=VALUE`` needs no direction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError

# Metrics and their direction: True = higher is better.
DIRECTIONS: dict[str, bool] = {
    "val_acc": True,
    "test_acc": True,
    "valid_acc_200ep": True,  # a tabular benchmark's validation accuracy after full training (NB201)
    "params": False,
    "flops": False,
    "latency_ms": False,
    "forward_peak_mb": False,
    "train_peak_mb": False,
    "train_seconds": False,
    "zc_score": True,  # the zero-cost evaluator's score (one proxy, or the ensemble of several)
}
COST_METRICS = ("params", "flops", "latency_ms", "forward_peak_mb", "train_peak_mb")
#: table columns whose direction is known without being told (NAS-Bench-201's accuracies)
KNOWN_COLUMNS: dict[str, bool] = {"valid_acc_12ep": True, "valid_acc_200ep": True, "test_acc_200ep": True}
_UNITS = {"k": 1e3, "m": 1e6, "g": 1e9}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_limit(text: str) -> tuple[str, float]:
    """``'params<=1.5M'`` -> ``('params', 1.5e6)``. Units k/M/G are allowed. A name that is not a cost metric is a
    table column (checked against the table by the search)."""
    m = re.fullmatch(rf"\s*({_NAME})\s*<=?\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if not m or (m[1] in DIRECTIONS and m[1] not in COST_METRICS):
        raise ArchsearchError(
            f"cannot read constraint {text!r}: expected METRIC<=VALUE with METRIC one of "
            f"{', '.join(COST_METRICS)} or a numeric column of the searched table (e.g. params<=1.5M, "
            "latency_ms<=20, pixel3_ms<=5)"
        )
    return m[1], float(m[2]) * _UNITS.get(m[3].lower(), 1.0)


def parse_objective(text: str) -> tuple[str, bool | None]:
    """``'pixel3_ms:min'`` -> ``('pixel3_ms', False)``; a name without ``:min``/``:max`` gets its known direction,
    or ``None`` when it has none (the caller refuses it)."""
    name, _, way = text.strip().partition(":")
    if not re.fullmatch(_NAME, name) or way not in ("", "min", "max"):
        raise ArchsearchError(f"cannot read objective {text!r}: expected a metric name, optionally with :min or :max "
                              "(e.g. val_acc, params, pixel3_ms:min)")  # fmt: skip
    known = DIRECTIONS.get(name, KNOWN_COLUMNS.get(name))
    if way:
        if known is not None and known != (way == "max"):
            raise ArchsearchError(f"{name} is {'higher' if known else 'lower'}-is-better; it cannot be given :{way}")
        return name, way == "max"
    return name, known


@dataclass
class Objective:
    """Maximise ``metric`` (or minimise it when its direction is lower-is-better) subject to ``limits``.

    ``objectives`` (two or more metric names) asks for a Pareto front in the report; strategies are still driven
    by the scalar :meth:`score` of the first objective.
    """

    metric: str = "val_acc"
    limits: dict[str, float] = field(default_factory=dict)
    objectives: tuple[str, ...] = ()
    latency_device: str = "cpu"
    latency_batch_size: int = 1
    #: the runtime ``latency_ms`` is measured on (eager, torchscript, onnxruntime) and its thread count
    latency_target: str = "eager"
    latency_threads: int = 1
    #: a latency lookup table (its JSON) that predicts ``latency_ms`` instead of measuring it
    latency_table: dict[str, Any] | None = None
    #: with a table: measure the networks it predicts near a latency limit (False: the prediction decides, and the
    #: caller measures what it keeps, as a one-shot search's sub-network search does with its winner)
    latency_verify: bool = True
    #: a fitted device latency model (its JSON) that predicts ``latency_ms`` from the architecture
    latency_model: dict[str, Any] | None = None
    #: table columns named as objectives or limits -> their direction (``None``: only limited, no direction needed)
    columns: dict[str, bool | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (self.metric, *self.objectives):
            if name not in DIRECTIONS and self.columns.get(name) is None:
                raise ArchsearchError(
                    f"unknown metric {name!r}: the built-in ones are {', '.join(DIRECTIONS)}; a table column needs "
                    f"its direction ({name}:min or {name}:max)"
                )
        for name, value in self.limits.items():
            if name not in COST_METRICS and name not in self.columns:
                raise ArchsearchError(f"cannot limit {name!r} (allowed: {', '.join(COST_METRICS)} or a table column)")
            if value <= 0:
                raise ArchsearchError(f"the limit on {name} must be positive, got {value}")
        if self.objectives and self.objectives[0] != self.metric:
            self.metric = self.objectives[0]

    @classmethod
    def from_strings(cls, metric: str = "val_acc", constraints: Sequence[str] = (), objectives: str = "") -> Objective:
        """Build from CLI text: ``--constraint params<=1M`` and ``--objectives val_acc,params`` (a table column as
        ``pixel3_ms:min``; ``--constraint pixel3_ms<=5``)."""
        limits = dict(parse_limit(c) for c in constraints)
        parsed = [parse_objective(o) for o in objectives.split(",") if o.strip()]
        metric_name, metric_way = parse_objective(metric)
        columns: dict[str, bool | None] = {n: None for n in limits if n not in COST_METRICS}
        for name, way in [*parsed, (metric_name, metric_way)]:
            if name not in DIRECTIONS:
                if way is None:
                    raise ArchsearchError(f"{name!r} is not a built-in metric, so its direction is unknown: write "
                                          f"{name}:min or {name}:max (built-in: {', '.join(DIRECTIONS)})")  # fmt: skip
                columns[name] = way
        return cls(metric=metric_name, limits=limits, objectives=tuple(n for n, _ in parsed), columns=columns)

    def direction(self, name: str) -> bool:
        """True when higher is better for metric ``name`` (a built-in metric or a column of this objective)."""
        way = DIRECTIONS.get(name, self.columns.get(name))
        if way is None:
            raise ArchsearchError(f"the direction of {name!r} is unknown (built-in: {', '.join(DIRECTIONS)})")
        return way

    def specs(self) -> list[str]:
        """The objectives as text a strategy reads back with :func:`parse_objective` (columns with :min/:max)."""
        return [o if o in DIRECTIONS else f"{o}:{'max' if self.direction(o) else 'min'}" for o in self.objectives]

    def score(self, metrics: Mapping[str, float]) -> float:
        """The higher-is-better scalar strategies are told."""
        value = float(metrics[self.metric])
        return value if self.direction(self.metric) else -value

    def violations(self, costs: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """Every limit broken: metric -> (value, limit)."""
        return {k: (float(costs[k]), v) for k, v in self.limits.items() if k in costs and costs[k] > v}

    def needed_costs(self) -> set[str]:
        """Which cost metrics must be measured before training: those limited, and those among the objectives."""
        named = {self.metric, *self.objectives}
        return set(self.limits) | {o for o in named if o in COST_METRICS or o in self.columns}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Objective:
        """The objective :meth:`to_json` wrote (as a run's config records it)."""
        keys = ("latency_target", "latency_threads", "latency_table", "latency_verify", "latency_model", "columns")
        extra = {k: obj[k] for k in keys if k in obj}
        return cls(metric=obj["metric"], limits=dict(obj["limits"]), objectives=tuple(obj["objectives"]), **extra)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "limits": self.limits, "objectives": list(self.objectives)}
        if self.columns:
            out["columns"] = dict(self.columns)
        if "latency_ms" in self.needed_costs():
            out.update(latency_target=self.latency_target, latency_threads=self.latency_threads,
                       latency_table=self.latency_table)  # fmt: skip
            if not self.latency_verify:
                out["latency_verify"] = False
            if self.latency_model is not None:
                out["latency_model"] = self.latency_model
        return out


def _as_max(points: np.ndarray, directions: Sequence[bool]) -> np.ndarray:
    signs = np.array([1.0 if d else -1.0 for d in directions])
    return points * signs


def non_dominated_sort(points: np.ndarray, directions: Sequence[bool]) -> list[list[int]]:
    """Fronts of point indices, best first (Deb's fast non-dominated sort)."""
    p = _as_max(np.asarray(points, dtype=float), directions)
    n = len(p)
    dominates = [[] for _ in range(n)]
    count = np.zeros(n, dtype=int)
    for i in range(n):
        better_eq = np.all(p[i] >= p, axis=1) & np.any(p[i] > p, axis=1)
        dominates[i] = list(np.nonzero(better_eq)[0])
        count[i] = int(np.sum(np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)))
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominates[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def pareto_front(points: np.ndarray, directions: Sequence[bool]) -> list[int]:
    """Indices of the non-dominated points, ascending (two objectives: a sort and a sweep, so a whole table's
    front takes milliseconds; more: the first front of :func:`non_dominated_sort`)."""
    if not len(points):
        return []
    p = _as_max(np.asarray(points, dtype=float), directions)
    if p.shape[1] != 2:
        return non_dominated_sort(points, directions)[0]
    order = np.lexsort((-p[:, 1], -p[:, 0]))  # x descending, then y descending
    front, best, k = [], -np.inf, 0
    while k < len(order):
        x, top = p[order[k], 0], p[order[k], 1]  # the group of equal x starts with its highest y
        while k < len(order) and p[order[k], 0] == x:
            if top > best and p[order[k], 1] == top:
                front.append(int(order[k]))
            k += 1
        best = max(best, top)
    return sorted(front)


def hypervolume(points: np.ndarray, directions: Sequence[bool], reference: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` and bounded by ``reference`` (two objectives exactly; more by Monte Carlo
    would hide error, so it is refused)."""
    p = _as_max(np.asarray(points, dtype=float), directions)
    ref = _as_max(np.asarray(reference, dtype=float)[None], directions)[0]
    if p.ndim != 2 or p.shape[1] != 2:
        raise ArchsearchError(f"hypervolume is computed for exactly two objectives, got {p.shape[-1]}")
    p = p[np.all(p > ref, axis=1)]
    if not len(p):
        return 0.0
    front = p[pareto_front(p, (True, True))]
    front = front[np.argsort(-front[:, 0])]
    volume, prev_y = 0.0, ref[1]
    for x, y in front:
        if y > prev_y:
            volume += (x - ref[0]) * (y - prev_y)
            prev_y = y
    return float(volume)

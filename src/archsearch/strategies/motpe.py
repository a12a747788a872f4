"""Multi-objective TPE: Optuna's ``TPESampler`` over several objectives (MOTPE, Ozaki et al. 2020), driven by
ask/tell over the space's decision view like ``bayes``.

Each trial is told the values of the search's objectives (``--objectives val_acc,latency_ms``), with their
directions; a trial that failed or broke a constraint is told as failed. Resume rebuilds the study from the told
values exactly as ``bayes`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.objectives import DIRECTIONS, parse_objective
from archsearch.strategies.bayes import BayesianOptimization
from archsearch.trial import Trial


class MultiObjectiveTPE(BayesianOptimization):
    """Optuna's TPE sampler with one study direction per objective (see the module docstring)."""

    name = "motpe"
    multi_objective = True

    def __init__(self, space: Any, seed: int = 0, startup: int = 10, multivariate: bool = True,
                 objectives: Sequence[str] | None = None) -> None:  # fmt: skip
        """``objectives``: the metrics to optimise (a search passes its ``--objectives``; default val_acc, params)."""
        parsed = [parse_objective(o) for o in (("val_acc", "params") if objectives is None else objectives)]
        if len(parsed) < 2 or any(way is None for _, way in parsed):
            raise ArchsearchError(f"motpe needs two or more known objectives (built-in: {', '.join(DIRECTIONS)}; a "
                                  f"table column as name:min or name:max), got {list(objectives or [])}")  # fmt: skip
        self.objectives = [name for name, _ in parsed]
        self.ways = [bool(way) for _, way in parsed]
        super().__init__(space, seed, startup, multivariate)

    def directions(self) -> list[str]:
        return ["maximize" if up else "minimize" for up in self.ways]

    def value(self, trial: Trial) -> list[float] | None:
        if trial.score is None:
            return None
        values = [trial.metrics.get(o) for o in self.objectives]
        if any(v is None for v in values):
            missing = [o for o, v in zip(self.objectives, values) if v is None]
            raise ArchsearchError(f"motpe was told trial {trial.number} without its objective(s) {missing}")
        return [float(v) for v in values]  # type: ignore[arg-type]

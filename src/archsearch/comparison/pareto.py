"""Scoring multi-objective strategies on a table, where the true Pareto front is known.

A run's front is the non-dominated set of the architectures it evaluated, by the search's objectives (what a user
of the run would be shown); it is scored on the *reported* columns (the table's reported accuracy in place of the
search signal, any other column as itself) by its hypervolume as a share of the true front's, the front of the
whole table on the same columns. The reference point is the true front's nadir (its worst value on each
objective), so only the region the true front spans counts: a share of 100% means the run found every corner of
the front. Because the front is chosen by the search signal and scored on the reported accuracy, even a run that
evaluated every architecture can fall short of 100% (the signal's noise); the shares on the searched columns
themselves are kept beside (``searched``), the score of the search alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.comparison.strategies import OverSeeds
from archsearch.evaluators import Table
from archsearch.objectives import Objective, hypervolume, pareto_front

BUDGETS = (25, 50, 100, 150, 200, 300, 500, 1000)


def reported_names(objective: Objective, table: Table, on: str = "reported") -> list[str]:
    """The column each objective is scored on: the reported column for the search signal, else itself (``on=
    "searched"``: the searched columns themselves, a score of the search alone, without the signal's noise)."""
    accuracy = table.report if on == "reported" else table.signal
    return [accuracy if o in ("val_acc", table.signal) else o for o in objective.objectives]


def _row_values(table: Table, key: str, names: Sequence[str], space: Any) -> list[float]:
    row = table.rows[key]
    missing = [n for n in names if n not in row]
    counted = table.values(space.parse(table.texts[key]), missing, space) if missing else {}
    return [row[n] if n in row else counted[n] for n in names]


@dataclass
class TrueFront:
    """The table's Pareto front on the reported columns and its hypervolume from the front's nadir."""

    names: list[str]
    directions: list[bool]
    points: np.ndarray  # the front's points
    reference: list[float]
    volume: float

    @classmethod
    def of(cls, table: Table, objective: Objective, space: Any, on: str = "reported") -> TrueFront:
        names = reported_names(objective, table, on)
        directions = [objective.direction(o) for o in objective.objectives]
        points = np.array([_row_values(table, key, names, space) for key in table.rows])
        front = points[pareto_front(points, directions)]
        reference = [float(front[:, k].min() if d else front[:, k].max()) for k, d in enumerate(directions)]
        return cls(names, directions, front, reference, hypervolume(front, directions, reference))

    def share(self, points: np.ndarray) -> float:
        """Hypervolume of ``points`` as a percentage of the true front's."""
        if not len(points) or self.volume <= 0:
            return 0.0
        return 100.0 * hypervolume(points, self.directions, self.reference) / self.volume


def run_front(run: Any, table: Table, objective: Objective, space: Any, budget: int,
              on: str = "reported") -> np.ndarray:  # fmt: skip
    """The reported (or searched) points of the run's front among its first ``budget`` evaluated architectures."""
    if not run.points:
        return np.zeros((0, len(objective.objectives)))
    points = np.array(run.points[:budget], dtype=float)
    directions = [objective.direction(o) for o in objective.objectives]
    chosen = pareto_front(points, directions)
    names = reported_names(objective, table, on)
    return np.array([_row_values(table, run.evaluated[i], names, space) for i in chosen], dtype=float)


@dataclass
class ParetoScore(OverSeeds):
    """One strategy's hypervolume shares over its seeds, at each budget."""

    strategy: str
    shares: dict[int, list[float]]  # budget -> each seed's share (%)
    ms_per_trial: float
    runs: list[Any] = field(default_factory=list)
    median_front: list[list[float]] = field(default_factory=list)  # the front of the seed with the median share
    searched: dict[int, list[float]] = field(default_factory=dict)  # the shares on the searched columns

    @property
    def picks(self) -> list[float]:  # type: ignore[override]
        """Each seed's share at the largest budget."""
        return self.shares[max(self.shares)]

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "hv_share_mean": round(self.mean, 3),
            "hv_share_std": round(self.std, 3),
            "runs": len(self.picks),
            "by_budget": {str(b): round(statistics.fmean(v), 3) for b, v in sorted(self.shares.items())},
            "searched_by_budget": {str(b): round(statistics.fmean(v), 3) for b, v in sorted(self.searched.items())},
            "ms_per_trial": round(self.ms_per_trial, 4),
        }


def pareto_scores(scores: Sequence[Any], table: Table, objective: Objective, space: Any, queries: int
                  ) -> tuple[TrueFront, list[ParetoScore]]:  # fmt: skip
    """Each strategy's runs scored against the true front at every budget up to ``queries``."""
    truth = TrueFront.of(table, objective, space)
    searched_truth = TrueFront.of(table, objective, space, "searched")
    budgets = sorted({b for b in BUDGETS if b < queries} | {queries})
    out = []
    for s in scores:
        shares = {b: [truth.share(run_front(r, table, objective, space, b)) for r in s.runs] for b in budgets}
        searched = {b: [searched_truth.share(run_front(r, table, objective, space, b, "searched")) for r in s.runs]
                    for b in budgets}  # fmt: skip
        final = shares[queries]
        median = sorted(range(len(final)), key=final.__getitem__)[len(final) // 2] if final else None
        front = [] if median is None else run_front(s.runs[median], table, objective, space, queries).tolist()
        out.append(ParetoScore(s.strategy, shares, s.ms_per_trial, s.runs, front, searched))
    return truth, out

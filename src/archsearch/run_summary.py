"""What a search found, read from its store: the trials best first, the Pareto front and its hypervolume, failures
and why the search stopped. Below both the API (which returns it) and the report (which shows it)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archsearch.objectives import Objective
from archsearch.spaces import Space, space_for_reading
from archsearch.store import Store, open_existing
from archsearch.trial import FAILED, INFEASIBLE, RUNNING, Trial


@dataclass
class SearchResult:
    """What a search found: trials best first, the Pareto front (if several objectives), counts."""

    best: list[Trial]
    front: list[Trial]
    trials: int
    failed: int
    infeasible: int
    repeats: int
    seconds: float
    stop_reason: str
    hypervolume: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the errors of failed trials, most frequent first, with how many trials each ended
    failures: list[tuple[str, int]] = field(default_factory=list)
    #: the run's config and directory (set by :func:`archsearch.search`)
    config: dict[str, Any] | None = None
    run_dir: Path | None = None

    @property
    def winner(self) -> Trial | None:
        return self.best[0] if self.best else None

    def to_json(self, top: int = 5) -> list[dict[str, Any]]:
        """The records ``archsearch search --json`` prints: the ``top`` trials, the Pareto front, a summary."""
        out = [{"rank": rank, **t.summary()} for rank, t in enumerate(self.best[:top], start=1)]
        out += [{"front": True, **t.summary()} for t in self.front]
        out.append({"summary": True, "trials": self.trials, "complete": len(self.best), "failed": self.failed,
                    "infeasible": self.infeasible, "repeats": self.repeats, "seconds": self.seconds,
                    "stop_reason": self.stop_reason, "hypervolume": self.hypervolume,
                    "failures": [{"error": e, "trials": n} for e, n in self.failures]})  # fmt: skip
        return out


def summarize(store: Store, space: Space[Any], objective: Objective, stop_reason: str = "",
              skip_malformed: bool = False) -> SearchResult:  # fmt: skip
    """The result of a (finished or interrupted) run from its store (``skip_malformed``: see :meth:`Store.trials`)."""
    import numpy as np

    from archsearch.objectives import hypervolume, pareto_front

    trials = [t for t in store.trials(space.from_json, skip_malformed=skip_malformed) if t.status != RUNNING]
    stop_reason = stop_reason or str(store.progress().get("stop", ""))
    complete = sorted((t for t in trials if t.ok), key=lambda t: (-(t.score or 0.0), t.number))
    front: list[Trial] = []
    hv = None
    if objective.objectives:
        names = objective.objectives
        usable = [t for t in complete if all(n in t.metrics for n in names)]
        if usable:
            points = np.array([[t.metrics[n] for n in names] for t in usable])
            dirs = [objective.direction(n) for n in names]
            front = sorted((usable[i] for i in pareto_front(points, dirs)), key=lambda t: -(t.score or 0.0))
            if len(names) == 2:
                worst = [points[:, k].min() if d else points[:, k].max() for k, d in enumerate(dirs)]
                hv = hypervolume(points, dirs, worst)
    return SearchResult(
        best=complete,
        front=front,
        trials=len(trials),
        failed=sum(t.status == FAILED for t in trials),
        infeasible=sum(t.status == INFEASIBLE for t in trials),
        repeats=int(store.progress().get("repeats", 0)),
        seconds=float(store.progress().get("elapsed", 0.0)),
        stop_reason=stop_reason,
        hypervolume=hv,
        failures=Counter(t.error or "unknown error" for t in trials if t.status == FAILED).most_common(),
    )


def summarize_run(run_dir: str | Path, config: dict[str, Any], skip_malformed: bool = False
                  ) -> tuple[Objective, SearchResult]:  # fmt: skip
    """The objective and the result (best trials, front, failures, stop cause) of the search recorded in
    ``run_dir`` under ``config``, read without writing (``skip_malformed``: leave out tampered trial rows)."""
    objective = Objective.from_json(config["objective"])
    store = open_existing(run_dir)
    try:
        space = space_for_reading(config["space"], config.get("space_options"), str(run_dir))
        return objective, summarize(store, space, objective, skip_malformed=skip_malformed)
    finally:
        store.close()

"""A trial: one architecture proposed by a strategy, checked, evaluated and recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COMPLETE, FAILED, INFEASIBLE, RUNNING = "complete", "failed", "infeasible", "running"
STATUSES = (COMPLETE, FAILED, INFEASIBLE, RUNNING)


@dataclass
class Trial:
    """What a strategy is told: the genotype, its status, its metrics and the objective's score.

    ``score`` is higher-is-better (the objective's scalar); it is ``None`` for failed and infeasible trials.
    """

    number: int
    genotype: Any
    key: str
    status: str = RUNNING
    metrics: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    error: str | None = None
    fidelity: float | None = None
    seed: int = 0
    seconds: float = 0.0
    cached: bool = False  # answered from the store: the same architecture was evaluated before
    attempts: int = 0  # runs started (more than 1: a worker died, or the search was interrupted, mid-trial)

    @property
    def ok(self) -> bool:
        return self.status == COMPLETE and self.score is not None

    def answer(self, genotype: Any) -> Trial:
        """This trial's result as the answer to ``genotype`` asked again (same architecture): marked cached."""
        return Trial(
            self.number,
            genotype,
            self.key,
            self.status,
            self.metrics,
            self.score,
            self.error,
            self.fidelity,
            self.seed,
            0.0,
            cached=True,
            attempts=self.attempts,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-able view of the trial."""
        return {
            "number": self.number,
            "arch": str(self.genotype),
            "key": self.key,
            "status": self.status,
            "score": self.score,
            "metrics": self.metrics,
            "error": self.error,
            "fidelity": self.fidelity,
            "seed": self.seed,
            "seconds": round(self.seconds, 4),
            "cached": self.cached,
            "attempts": self.attempts,
        }

"""Multi-fidelity evaluation over epochs, for any strategy: successive halving and Hyperband, asynchronously.

Rungs are fidelities ``min, min * eta, min * eta**2, ...`` up to ``max`` (epochs). A trial starts at its bracket's
first rung; when it finishes a rung it is promoted to the next one if its score is in the top ``1 / eta`` of the
scores recorded at that rung so far (asynchronous successive halving, Li et al. 2020), so no trial waits for others.
Successive halving starts every trial at the lowest rung; Hyperband cycles trials through brackets that start at
higher rungs. The strategy is told each trial once, with its score at the highest rung it reached; the score at
every rung is kept in the trial's metrics as ``<metric>@<epochs>``, from which a resumed search rebuilds the rungs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from archsearch.errors import ArchsearchError

KINDS = ("sh", "hyperband")


class MultiFidelity:
    """Rungs between ``min_fidelity`` and ``max_fidelity`` with reduction factor ``eta``."""

    def __init__(
        self, kind: str = "sh", min_fidelity: float = 1, max_fidelity: float = 9, eta: int = 3, metric: str = "val_acc"
    ) -> None:
        if kind not in KINDS:
            raise ArchsearchError(f"multi-fidelity kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not 0 < min_fidelity < max_fidelity or eta < 2:
            raise ArchsearchError(
                f"need 0 < min < max fidelity and eta >= 2; got {min_fidelity}, {max_fidelity}, {eta}"
            )
        self.kind, self.eta, self.metric = kind, eta, metric
        rungs = [float(min_fidelity)]
        while rungs[-1] * eta < max_fidelity:
            rungs.append(rungs[-1] * eta)
        rungs.append(float(max_fidelity))
        self.rungs = rungs
        self.scores: dict[float, list[float]] = {r: [] for r in rungs}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "min": self.rungs[0], "max": self.rungs[-1], "eta": self.eta}

    def start(self, number: int) -> float:
        """The fidelity trial ``number`` starts at (Hyperband: its bracket's first rung)."""
        if self.kind == "sh":
            return self.rungs[0]
        return self.rungs[number % (len(self.rungs))]

    def key(self, fidelity: float) -> str:
        return f"{self.metric}@{fidelity:g}"

    def record(self, fidelity: float, score: float) -> float | None:
        """Record a finished rung; return the next rung's fidelity if the trial is promoted, else None."""
        scores = self.scores.setdefault(fidelity, [])
        scores.append(score)
        index = self.rungs.index(fidelity)
        if index == len(self.rungs) - 1:
            return None
        keep = len(scores) // self.eta
        if keep == 0:
            return None
        threshold = sorted(scores, reverse=True)[keep - 1]
        return self.rungs[index + 1] if score >= threshold else None

    def rebuild(self, metrics: Iterable[dict[str, float]], sign: float) -> None:
        """Restore the rung records from finished trials' metrics (``sign`` turns a metric into a score)."""
        for m in metrics:
            for r in self.rungs:
                if self.key(r) in m:
                    self.scores[r].append(sign * m[self.key(r)])

"""The evaluator interface: a genotype (and optionally a fidelity) in, metrics out.

Evaluators never choose architectures. ``evaluate`` returns a dict of metrics that includes the search metric
(``val_acc``); metrics meant only for the final report (``test_acc``) are kept apart by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class Evaluator(ABC):
    """Scores genotypes. ``fidelity`` (epochs, for evaluators that train) is optional."""

    name: ClassVar[str]
    #: the largest fidelity this evaluator accepts (None: it has no fidelity knob)
    max_fidelity: float | None = None

    @abstractmethod
    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        """Metrics of ``genotype`` (``seed`` seeds any randomness of the evaluation); raise to fail the trial,
        which is then recorded with the error."""

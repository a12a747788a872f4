"""The evaluator interface: a genotype (and optionally a fidelity) in, metrics out.

Evaluators never choose architectures. ``evaluate`` returns a dict of metrics that includes the search metric
(``val_acc``); metrics meant only for the final report (``test_acc``) are kept apart by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from archsearch.errors import ArchsearchError


class Evaluator(ABC):
    """Scores genotypes. ``fidelity`` (epochs, for evaluators that train) is optional."""

    name: ClassVar[str]
    #: the largest fidelity this evaluator accepts (None: it has no fidelity knob)
    max_fidelity: float | None = None

    @abstractmethod
    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        """Metrics of ``genotype`` (``seed`` seeds any randomness of the evaluation); raise to fail the trial,
        which is then recorded with the error."""


def clean_metrics(metrics: Any, who: str) -> dict[str, float]:
    """What an evaluator returned as ``{name: float}``: a dict of real numbers (Python or NumPy ints and floats),
    finite; a boolean (``True`` is no accuracy), text or a non-finite number is an error naming ``who``."""
    import math
    import numbers

    if not isinstance(metrics, dict):
        raise ArchsearchError(f"{who} must return a dict of metric name -> number, got {type(metrics).__name__}")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
            raise ArchsearchError(f"{who} returned {name!r}: {value!r:.80} ({type(value).__name__}); a metric is a "
                                  "real number (int or float), not a boolean or text")  # fmt: skip
        number = float(value)
        if not math.isfinite(number):
            raise ArchsearchError(f"{who} returned {name!r}: {number}, which is not finite")
        out[str(name)] = number
    return out

"""``archsearch latency-model fit``: a device latency model from a few networks timed on the device."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archsearch.costs.device_model import LatencyModel, fit, read_measured, read_reference
from archsearch.errors import ArchsearchError
from archsearch.outputs import check_output, write_file
from archsearch.spaces import get_space


@dataclass
class LatencyModelWritten:
    """A fitted latency model saved as JSON."""

    path: Path
    space: str
    measured: int
    members: list[dict[str, Any]]  # each feature set: its leave-one-out error (ms) and weight
    reference_columns: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "space": self.space, "measured": self.measured, "members": self.members,
                "reference_columns": self.reference_columns}  # fmt: skip


def fit_latency_model(space: str, measured: str | Path, out: str | Path, reference: str | Path | None = None,
                      reference_columns: Sequence[str] | None = None, force: bool = False) -> LatencyModelWritten:
    """Fit a latency model of ``space`` on ``measured`` (a CSV of ``arch, latency_ms``) and save it to ``out``
    (replaced only with ``force``). ``reference``: a CSV of the same architectures' latencies on other devices
    (``reference_columns``: which of its columns; default all), kept inside the model. Nothing is written when
    any input is wrong."""
    if reference_columns and reference is None:
        raise ArchsearchError("reference columns choose among a reference table's columns: give --reference CSV")
    sp = get_space(space)
    target = check_output(out, force, "the latency model")
    rows = read_measured(measured, sp)
    ref = None if reference is None else read_reference(reference, sp, reference_columns)
    if ref is not None:
        lost = [g.key for g, _ in rows if g.key not in ref["rows"]]
        if lost:
            raise ArchsearchError(f"{reference}: no row for measured architecture {lost[0][:80]!r}")
    model = fit(rows, sp, ref, fitted_on=Path(measured).name)
    write_file(json.dumps(model.to_json()), target)
    LatencyModel.load(target)  # read back: what was written is a model
    members = [{"features": m.features, "loo_rmse_ms": round(m.loo_rmse_ms, 4), "weight": round(m.weight, 4)}
               for m in sorted(model.members, key=lambda m: -m.weight)]  # fmt: skip
    return LatencyModelWritten(target, sp.name, len(rows), members, [] if ref is None else list(ref["columns"]))


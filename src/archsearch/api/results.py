"""The typed results of the API functions. Each ``to_json()`` gives exactly the record the matching command prints
with ``--json``, so a script that parses the command's output and one that calls the function see the same fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class SpaceInfo:
    """A registered search space: ``archsearch spaces``."""

    name: str
    size: int | None
    ops: list[str]
    description: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CostRecord:
    """Parameters, multiply-adds and (when measured) latency and peak memory of one architecture: ``archsearch
    cost``."""

    arch: str
    space: str
    key: str
    input_shape: list[int]
    params: int
    flops: int
    latency_ms: float | None = None
    forward_peak_mb: float | None = None
    train_peak_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainRecord:
    """One network trained from scratch: ``archsearch train``."""

    arch: str
    dataset: str
    val_acc: float
    test_acc: float | None
    params: int
    epochs: int
    seconds: float
    status: str
    message: str
    seed: int
    history: list[dict[str, Any]]
    best_epoch: int = 0
    saved: str | None = None
    precision: str = "float32"  # the type it trained in (the trainer's --precision, resolved)

    @property
    def ok(self) -> bool:
        return self.status != "nan_loss"  # as the trainer's own result says

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        del record["best_epoch"], record["saved"]
        return record


@dataclass
class ScoreResult:
    """Zero-cost proxy scores of architectures: ``archsearch score``. ``rows`` hold one record per architecture in
    the order asked (``shown`` is the order printed: best first with ``top``); ``spearman`` the rank correlation of
    each column with a table's 200-epoch test accuracy when a table was given."""

    columns: list[str]
    rows: list[dict[str, Any]]
    shown: list[int]
    spearman: dict[str, float] | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> list[dict[str, Any]]:
        """The records ``--json`` prints: the shown rows, then the correlations if any."""
        out = [self.rows[i] for i in self.shown]
        if self.spearman is not None:
            out.append({"spearman_vs_test_acc_200ep": self.spearman, "n": len(self.rows)})
        return out


@dataclass
class BenchmarkResult:
    """Strategies compared on a tabular benchmark over many seeds: ``archsearch benchmark``."""

    queries: int
    seeds: int
    scores: list[Any]  # archsearch.comparison.strategies.StrategyScore, one per strategy
    report: Path | None = None

    def to_json(self) -> list[dict[str, Any]]:
        out = [s.to_json() for s in self.scores]
        if self.report is not None:
            out.append({"report": str(self.report), "bytes": self.report.stat().st_size})
        return out


@dataclass
class OneShotRun:
    """What ``archsearch show`` says of a one-shot run directory."""

    method: str | None
    space: str | None
    epochs: int | None
    genotype: str | None
    stopped: str | None
    trials: int
    table: dict[str, float] | None = None  # the derived genotype's row of the table the search looked it up in
    #: under a latency target: target_ms, the table, the derived network's measured_ms and the derivation's notes
    latency: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"oneshot": True, **asdict(self)}


@dataclass
class RunView:
    """What a run directory holds, read without writing: ``archsearch show``. ``busy``: a process writes it now."""

    run_dir: Path
    busy: bool
    config: dict[str, Any] | None = None
    objective: Any = None
    result: Any = None  # archsearch.experiment.SearchResult of a multi-trial search
    oneshot: OneShotRun | None = None


@dataclass
class ReportFile:
    """A written report: ``archsearch report``."""

    path: Path
    bytes: int
    seconds: float
    png: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"report": str(self.path), "bytes": self.bytes, "seconds": round(self.seconds, 3), "png": self.png}


@dataclass
class Drawing:
    """An architecture drawn to files: ``archsearch draw``."""

    arch: str
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

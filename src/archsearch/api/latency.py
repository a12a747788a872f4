"""Latency on the runtime a network is deployed to (``archsearch latency``) and per-block lookup tables that predict
it without running the network (``archsearch latency-table``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archsearch.api.exports import network_of
from archsearch.costs.lookup import LatencyTable, build_table
from archsearch.costs.runtime import check_target, measure
from archsearch.errors import ArchsearchError
from archsearch.outputs import check_output
from archsearch.spaces import Space


@dataclass
class LatencyRecord:
    """One network's latency on one target: ``archsearch latency`` (``predicted_ms`` with a latency table)."""

    arch: str
    space: str
    target: str
    input_shape: list[int]
    batch_size: int
    threads: int
    median_ms: float
    q25_ms: float
    q75_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    predicted_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TableWritten:
    """A latency table built and saved: ``archsearch latency-table``."""

    path: str
    space: str
    target: str
    threads: int
    batch_size: int
    input_shape: list[int]
    blocks: int
    overhead_ms: float
    scale: float
    calibrated_on: int
    built_seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _targets(targets: str | Sequence[str]) -> list[str]:
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else list(targets)
    if not names or not all(names):
        raise ArchsearchError("name at least one latency target (eager, torchscript, onnxruntime)")
    return [check_target(t) for t in names]


def latency(
    arch: Any,
    targets: str | Sequence[str] = ("eager", "onnxruntime"),
    space: str | Space[Any] | None = None,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    build: dict[str, Any] | None = None,
    batch_size: int = 1,
    threads: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    latency_table: str | Path | None = None,
    on_record: Callable[[LatencyRecord], None] | None = None,
) -> list[LatencyRecord]:
    """Measure ``arch`` (a run directory's winner, or an architecture) on each target: PyTorch eager, TorchScript
    (traced, frozen) or ONNX Runtime (CPU), median of ``repeats`` calls after ``warmup``, with the quartiles. With
    ``latency_table``, each record also holds the table's prediction (the table must be for the same setting)."""
    names = _targets(targets)
    sp, genotype, model, shape, classes, options = network_of(arch, space, input_shape, num_classes, weights, build)
    table = None
    if latency_table is not None:
        table = LatencyTable.load(latency_table)
        table.check(sp.name, None, shape, classes, options, where=str(latency_table))
        if (table.threads, table.batch_size) != (threads, batch_size):
            raise ArchsearchError(f"{latency_table} was measured with {table.threads} thread(s) at batch "
                                  f"{table.batch_size}; measure with the same (--threads, --batch-size)")  # fmt: skip
        if table.target not in names:
            raise ArchsearchError(f"{latency_table} predicts {table.target} latency; measure that target too")
    out = []
    for target in names:
        # a table predicts for the one target it was measured on
        predicted = table.predict(genotype, sp) if table is not None and table.target == target else None
        lat = measure(model, shape, target, batch_size, threads, warmup, repeats)
        record = LatencyRecord(str(genotype), sp.name, target, list(shape), batch_size, threads, lat.median_ms,
                               lat.q25_ms, lat.q75_ms, lat.min_ms, lat.max_ms, lat.repeats, predicted)  # fmt: skip
        out.append(record)
        if on_record is not None:
            on_record(record)
    return out


def latency_table(
    space: str | Space[Any],
    out: str | Path,
    target: str = "onnxruntime",
    input_shape: Sequence[int] = (3, 224, 224),
    num_classes: int = 1000,
    build: dict[str, Any] | None = None,
    threads: int = 1,
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    calibrate: int = 10,
    profile: int = 30,
    on_block: Callable[[int, str, float], None] | None = None,
    force: bool = False,
) -> TableWritten:
    """Build a latency lookup table for ``space`` on ``target`` (every distinct block measured once; on eager also
    inside ``profile`` sampled networks; then ``calibrate`` whole networks for its scale) and save it as JSON (an
    existing ``out`` is replaced only with ``force``)."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ArchsearchError(f"input_shape is C,H,W, got {shape}")
    check_output(out, force)  # before the measuring, not after
    given = {k: v for k, v in (build or {}).items() if v is not None}
    table = build_table(space, target, shape, num_classes, given, threads, batch_size, warmup, repeats,  # type: ignore[arg-type]
                        calibrate, profile, on_block)  # fmt: skip
    path = table.save(out)
    return TableWritten(str(path), table.space, table.target, table.threads, table.batch_size, list(table.input_shape),
                        len(table.entries), table.overhead_ms, table.scale, table.calibrated_on,
                        table.built_seconds)  # fmt: skip

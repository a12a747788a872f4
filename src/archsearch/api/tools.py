"""The small commands as functions: list spaces, sample genotypes, measure costs, draw an architecture, read a run
directory and write its report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch import costs as cost_metrics
from archsearch.api.results import CostRecord, Drawing, OneShotRun, ReportFile, RunView, SpaceInfo
from archsearch.costs.runtime import REPEATS
from archsearch.devices import check_device
from archsearch.errors import ArchsearchError
from archsearch.outputs import check_output
from archsearch.rundir import DB_NAME, describe, is_busy
from archsearch.spaces import SPACES, Space, get_space, parse_arch


def genotypes(archs: Iterable[Any], space: str | Space[Any] | None = None) -> list[tuple[Space[Any], Any]]:
    """(space, genotype) of each architecture: a genotype object, or text as ``archsearch cost`` takes it (an NB201
    string, a DARTS ``Genotype(...)`` or published name, a chain, JSON, or a registered space's own text with
    ``space``); with ``space`` every one must belong to it."""
    out = []
    for n, arch in enumerate(archs, start=1):
        if isinstance(arch, str):
            try:
                out.append(parse_arch(arch, space))
            except ArchsearchError as exc:
                raise ArchsearchError(f"architecture {n}: {exc}") from None
            continue
        found = get_space(space) if space is not None else get_space(arch.to_json()["space"])
        out.append((found, found.validate(arch)))
    return out


def check_build(space: Space[Any], build: dict[str, Any] | None) -> dict[str, Any]:
    """``build`` with unset (``None``) entries dropped; an option the space does not take is an error naming the
    ones it does."""
    options = {k: v for k, v in (build or {}).items() if v is not None and v is not False}
    allowed = space.build_options()
    for name in options:
        if name not in allowed:
            known = ", ".join(o for o in allowed if o != "drop_path") or "none"
            raise ArchsearchError(f"build option {name!r} does not apply to space {space.name!r} (its options: "
                                  f"{known}){space.renamed_hint([name])}")  # fmt: skip
    return options


def spaces() -> list[SpaceInfo]:
    """Every registered space with its size and ops."""
    out = []
    for name in SPACES:
        space = get_space(name)
        out.append(SpaceInfo(name, space.size(), space.ops(), space.description))
    return out


def sample(space: str | Space[Any], n: int = 1, seed: int = 0) -> list[Any]:
    """``n`` random genotypes of ``space`` drawn with ``seed``."""
    if n < 1:
        raise ArchsearchError(f"n must be >= 1, got {n}")
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    return [sp.sample(rng) for _ in range(n)]


def cost(
    archs: Iterable[Any],
    space: str | Space[Any] | None = None,
    input_shape: Sequence[int] = (3, 32, 32),
    classes: int = 10,
    build: dict[str, Any] | None = None,
    latency: bool = True,
    memory: bool = False,
    batch_size: int = 1,
    device: str = "cpu",
    threads: int | None = None,
    runs: int = REPEATS,
    on_record: Callable[[CostRecord], None] | None = None,
    latency_model: str | Path | None = None,
) -> list[CostRecord]:
    """Parameters, multiply-adds (MACs, PyTorch's FLOP counter halved) and, unless ``latency`` is off, the median
    latency over ``runs`` of each architecture for ``input_shape`` (C, H, W) images; ``memory`` adds peak memory of
    a forward pass and a training step (batch 32). ``latency_model``: ``latency_ms`` is that device model's
    prediction instead of a measurement here."""
    check_device(device)
    shape = tuple(int(v) for v in input_shape)
    predictor = None
    if latency_model is not None and not latency:
        raise ArchsearchError("latency=False skips latency; latency_model predicts it: give one of them")
    if latency_model is not None:
        from archsearch.costs.device_model import LatencyModel

        predictor = LatencyModel.load(latency_model)
    out = []
    for sp, genotype in genotypes(archs, space):
        model = sp.build(genotype, in_channels=shape[0], num_classes=classes, input_size=shape[1], seed=0,
                         **check_build(sp, build))  # fmt: skip
        measured = cost_metrics.measure(model, shape, device=device, latency=latency and predictor is None,
                                        memory=memory, batch_size=batch_size, threads=threads, runs=runs)  # fmt: skip
        record = CostRecord(str(genotype), sp.name, genotype.key, list(shape), **measured.to_json())
        if predictor is not None:
            record.latency_ms = predictor.predict([genotype], sp)[0]
        out.append(record)
        if on_record is not None:
            on_record(record)
    return out


def draw(arch: Any, out: str | Path, space: str | Space[Any] | None = None, force: bool = False) -> Drawing:
    """Draw one architecture to ``out`` (``.svg`` or ``.png``; DARTS writes ``_normal`` and ``_reduce`` files);
    existing files are replaced only with ``force``."""
    from archsearch.reporting.drawings import draw as draw_figures
    from archsearch.reporting.drawings import save_figure

    ((_, genotype),) = genotypes([arch], space)
    target = Path(out)
    if target.suffix.lower() not in (".svg", ".png"):
        raise ArchsearchError(f"{target}: the drawing's file must end in .svg or .png")
    figures = draw_figures(genotype)
    paths = [target if len(figures) == 1 else target.with_name(f"{target.stem}_{part}{target.suffix}")
             for part, _ in figures]  # fmt: skip
    for path in paths:
        check_output(path, force)
    written = [str(save_figure(fig, path)) for (_, fig), path in zip(figures, paths)]
    return Drawing(str(genotype), written)


def report(run_dir: str | Path, out: str | Path | None = None, png: str | Path | None = None,
           force: bool = False) -> ReportFile:  # fmt: skip
    """Write the self-contained HTML report of a run directory (a search or a one-shot search) to ``out`` (default
    ``RUN/report.html``; an existing ``out`` is replaced only with ``force``); with ``png`` every figure also as a
    PNG in that folder."""
    from archsearch.reporting.run_report import build_run_report

    start = time.perf_counter()
    path = build_run_report(run_dir, out, png, force)
    return ReportFile(path, path.stat().st_size, time.perf_counter() - start, None if png is None else str(png))


def watch_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    png: str | Path | None = None,
    every: float = 5.0,
    on_write: Callable[[ReportFile], None] | None = None,
    force: bool = False,
) -> None:
    """Rewrite the report every ``every`` seconds while a process writes the run, and once more when it stops (an
    existing ``out`` is replaced only with ``force``; the rewrites replace the watch's own)."""
    from archsearch.reporting.html import watch

    written: list[ReportFile] = []

    def build() -> Path:
        written.append(report(run_dir, out, png, force=force or bool(written)))
        return written[-1].path

    watch(build, lambda: is_busy(run_dir), every, lambda _: on_write(written[-1]) if on_write else None)


def _latency_outcome(info: dict[str, Any], found: dict[str, Any] | None) -> dict[str, Any] | None:
    """A one-shot run's latency target, the derived network's measured latency and the derivation's notes."""
    target = info.get("latency")
    if not isinstance(target, dict):
        return None
    measured = None if not found else found.get("measured_ms")
    notes = [] if not found else [str(n) for n in found.get("notes") or []]
    return {"target_ms": target.get("target_ms"), "table": target.get("table"), "measured_ms": measured,
            "notes": notes}  # fmt: skip


def show(run_dir: str | Path) -> RunView:
    """What a run directory holds, read without writing a byte: a search's config, objective and result (best
    trials, failures, Pareto front), or a one-shot search's method and genotype."""
    from archsearch.api.multitrial import resume_config
    from archsearch.run_summary import summarize_run

    kind, meta = describe(run_dir)
    busy = is_busy(run_dir)
    running = " (a process is writing it now)" if busy else ""
    if kind == "nothing":
        raise ArchsearchError(f"{run_dir}: no run here (no {DB_NAME} and no one-shot checkpoint)")
    if kind == "empty":
        raise ArchsearchError(f"{run_dir}: the store holds no run yet (no config and no trial recorded){running}")
    view = RunView(Path(run_dir), busy)
    if kind == "oneshot":
        info = meta.get("oneshot") or {}
        found = meta.get("oneshot_result")
        genotype = None if not found else str(get_space(found["genotype"]["space"]).from_json(found["genotype"]))
        view.oneshot = OneShotRun(
            info.get("method"),
            info.get("space"),
            (info.get("config") or {}).get("epochs"),
            genotype,
            None if not found else found.get("stopped"),
            meta.get("_trials", 0),
            None if not found else found.get("table"),
            _latency_outcome(info, found),
        )
        return view
    view.config = resume_config(run_dir, reading=True)  # shown, never built
    view.objective, view.result = summarize_run(run_dir, view.config)
    return view

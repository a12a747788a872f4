"""Exporting a found network: from a run directory (its winner, with the retrained weights when the run retrained
it) or from an architecture, in any format of :mod:`archsearch.export.formats`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from archsearch.api.tools import check_build, genotypes, show
from archsearch.checkpoints import load_into
from archsearch.errors import ArchsearchError
from archsearch.evaluators.train import scaled_build
from archsearch.export.formats import Exported, export_network
from archsearch.rundir import describe, names_directory, run_file
from archsearch.spaces import Space, get_space


def _from_run(run: Path, input_shape: Any, num_classes: Any, build: dict[str, Any]) -> tuple[Any, ...]:
    """(space, genotype, input shape, classes, build options, weights file or None) of a run's winner."""
    _, meta = describe(run)
    retrained = (meta.get("retrain") or {}).get("winner_network")
    weights = run_file(run, retrained.get("weights"), "the retrained winner's weights") if retrained else None
    if retrained and weights is not None and weights.is_file():
        space = get_space(retrained["space"])
        shape = tuple(input_shape or retrained["input_shape"])
        return (space, space.from_json(retrained["genotype"]), shape, num_classes or retrained["num_classes"],
                {**space.current_build_options(retrained["build"]), **build}, weights)  # fmt: skip
    view = show(run)
    if view.oneshot is not None:
        if view.oneshot.genotype is None:
            raise ArchsearchError(f"{run}: the one-shot search derived no genotype yet; nothing to export")
        space = get_space(view.oneshot.space or "")
        genotype, options = space.parse(view.oneshot.genotype), {}
    else:
        if view.result is None or view.result.winner is None:
            raise ArchsearchError(f"{run}: the search has no finished trial; nothing to export")
        config = view.config or {}
        space = get_space(config["space"], **config.get("space_options", {}))
        ev = config.get("evaluator_options", {})
        genotype = view.result.winner.genotype
        options = scaled_build(space, ev.get("build"), float(ev.get("width", 1.0))) if "width" in ev else \
            space.current_build_options(ev.get("build"))  # fmt: skip
        dataset = config.get("evaluator_options", {}).get("dataset")
        if input_shape is None and isinstance(dataset, str) and not config.get("in_memory_data"):
            from archsearch.data import as_data

            data = as_data(dataset, config["evaluator_options"].get("data_dir"))
            input_shape, num_classes = data.input_shape, num_classes or data.num_classes
    if input_shape is None:
        raise ArchsearchError(f"{run}: the run holds no data shape (a table or in-memory data); give input_shape "
                              "(--input-shape C,H,W) and num_classes")  # fmt: skip
    return space, genotype, tuple(input_shape), num_classes or 10, {**options, **build}, None


def network_of(
    arch: Any,
    space: str | Space[Any] | None = None,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    build: dict[str, Any] | None = None,
) -> tuple[Space[Any], Any, torch.nn.Module, tuple[int, int, int], int, dict[str, Any]]:
    """(space, genotype, network with its weights, input shape, classes, build options) of a run directory's winner
    (retrained weights when the run retrained it) or of an architecture (default input 3,32,32 and 10 classes)."""
    given = {k: v for k, v in (build or {}).items() if v is not None}
    if names_directory(arch):
        sp, genotype, shape, classes, options, stored = _from_run(Path(arch), input_shape, num_classes, given)
    else:
        ((sp, genotype),) = genotypes([arch], space)
        shape, classes, options, stored = tuple(input_shape or (3, 32, 32)), num_classes or 10, given, None
    if len(shape) != 3:
        raise ArchsearchError(f"input_shape is C,H,W, got {shape}")
    c, h, _ = (int(v) for v in shape)
    options = check_build(sp, options)
    model = sp.build(genotype, c, classes, h, seed=0, **options)
    source_of_weights = weights or stored
    if source_of_weights is not None:
        load_into(model, source_of_weights)
    return sp, genotype, model, (c, h, h), classes, options


def export(
    arch: Any,
    format: str,
    out: str | Path,
    space: str | Space[Any] | None = None,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    build: dict[str, Any] | None = None,
    force: bool = False,
) -> Exported:
    """Export ``arch`` to the folder ``out`` as ``format`` (``onnx``, ``pt2``, ``torchscript`` or ``python``) and check
    the written file against PyTorch. ``arch`` is a run directory (its winner: the retrained network and weights when
    the run retrained it, else the winner as searched, freshly initialised) or an architecture (a genotype or its
    text) with ``input_shape`` (default 3,32,32) and ``num_classes`` (default 10). ``weights``: a state dict file
    (``model.pt`` of ``archsearch train --save``, ``weights.pt``) to load first. ``out`` must be new or hold only
    files export writes; those are replaced only with ``force``."""
    sp, genotype, model, shape, classes, options = network_of(arch, space, input_shape, num_classes, weights, build)
    source = None
    if format == "python":
        from archsearch.export.standalone import standalone_source

        source = standalone_source(sp, genotype, shape[0], classes, shape[1], options)
    return export_network(model, shape, format, out, source, force)

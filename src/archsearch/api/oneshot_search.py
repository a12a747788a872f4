"""One-shot search from Python: :func:`oneshot` runs a registered method on its space's supernet; for a method that
searches sub-networks (SPOS) it supplies that search, regularized evolution over sub-networks scored with the trained
supernet's inherited weights, which needs the multi-trial machinery that the ``oneshot`` package sits below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from archsearch import options
from archsearch.costs.lookup import LatencyTable
from archsearch.data import Data, as_data
from archsearch.errors import ArchsearchError
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.oneshot import METHODS, SUPERNETS, OneShotConfig, Supernet, default_config
from archsearch.oneshot.distributed import current_world
from archsearch.oneshot.latency import LatencyTarget, first_measured_within
from archsearch.oneshot.search import OneShotResult, SubnetworkFound, SubnetworkSearch, run_oneshot
from archsearch.spaces import Space, get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy


def subnetwork_objective(target: LatencyTarget) -> Objective:
    """What a search over a supernet's sub-networks optimises under the target: validation accuracy, with
    ``latency_ms`` at most the target as the table predicts it. The prediction alone decides during the search (a
    measurement costs more than scoring a sub-network); then
    :func:`~archsearch.oneshot.latency.first_measured_within` measures the winners."""
    t = target.table
    return Objective(limits={"latency_ms": target.target_ms}, latency_table=t.to_json(), latency_target=t.target,
                     latency_threads=t.threads, latency_batch_size=t.batch_size, latency_verify=False)  # fmt: skip


def subnetwork_search(data: Data, trials: int, device: Any, strategy: str = "evolution",
                      latency: LatencyTarget | None = None) -> SubnetworkSearch:  # fmt: skip
    """A search over a trained supernet's sub-networks: ``strategy`` for ``trials`` sub-networks, each scored by
    validation accuracy with inherited weights after batch-norm recalibration, recorded in the run's store. With
    ``latency``: only sub-networks the table predicts within the target are scored, and the winner is the best that
    also meets it when measured on the table's runtime (:func:`~archsearch.oneshot.latency.first_measured_within`)."""
    from archsearch.evaluators.supernet import StandaloneSupernetEvaluator, SupernetEvaluator

    def search(net: Supernet, space: Space[Any], store: Store, config: OneShotConfig) -> SubnetworkFound:
        if latency is None:
            evaluator: SupernetEvaluator = SupernetEvaluator(net, data, device=device)
            objective = Objective()
        else:
            evaluator = StandaloneSupernetEvaluator(net, data, latency.table, device=device)
            objective = subnetwork_objective(latency)
        chosen = get_strategy(strategy, space, seed=config.seed)
        result = Experiment(space, chosen, evaluator, objective, Budget(trials=trials), store, seed=config.seed).run()
        if result.winner is None:
            raise ArchsearchError("the search over sub-networks found none that could be evaluated"
                                  + (f" within the {latency.target_ms:g} ms target" if latency else ""))  # fmt: skip
        if latency is None:
            return SubnetworkFound(result.winner.genotype, result.trials)
        winner, notes, ms = first_measured_within(net, [t.genotype for t in result.best], latency)
        return SubnetworkFound(winner, result.trials, notes, ms)

    return search


def oneshot(
    method: str,
    space: str | Space[Any],
    dataset: Any,
    run_dir: str | Path,
    config: OneShotConfig | None = None,
    supernet_options: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    subnetwork_trials: int = 100,
    extra_meta: dict[str, Any] | None = None,
    data_dir: str | Path | None = None,
    subset: int | None = None,
    image_size: int | None = None,
    plots: bool = True,
    plot_edges: list[int] | None = None,
    table: str | Path | None = None,
    latency_table: str | Path | None = None,
    latency_target_ms: float | None = None,
    **settings: Any,
) -> OneShotResult:
    """Run one-shot ``method`` (a name in :data:`archsearch.oneshot.METHODS`) on ``space``'s supernet over
    ``dataset`` (anything :func:`archsearch.data.as_data` takes; ``subset``: a seeded subset of its training split),
    recording in ``run_dir``; see :func:`archsearch.oneshot.search.run_oneshot`. SPOS scores ``subnetwork_trials``
    sub-networks afterwards. A method that learns architecture weights gets, on the main process, PNG plots of
    their evolution (``plot_edges``: only these edges) and of the derived ops in ``run_dir`` (unless ``plots`` is
    off), and the result says how far they separated. ``table``: a benchmark table of the space (NAS-Bench-201's
    CSV) in which the cell derived after every epoch and the final one are looked up, as the NAS-Bench-201 protocol
    judges one-shot methods: recorded in ``history[i]["table"]`` and ``result.table``, never fed to the search. How
    it searches: ``config`` (default: the method's, see :func:`archsearch.oneshot.default_config`) and/or its fields
    as keywords (``epochs=3, w_lr=0.05``), which win. ``latency_table`` and ``latency_target_ms`` (together): a
    latency table of the space (``archsearch latency-table``) and a limit the search keeps the supernet's expected
    latency under with an adaptive penalty; the derived network is the most probable one within the limit, measured
    on the table's runtime (:mod:`archsearch.oneshot.latency`). SPOS keeps its search over sub-networks within the
    limit instead, and measures its winner."""
    if config is None:
        config = default_config(method, **settings)
    elif settings:
        config = options.make(options.group("oneshot"), config, "oneshot()", **settings)
    data = as_data(dataset, data_dir, image_size=image_size)
    if subset:
        data = data.with_train_subset(subset, seed=config.seed)
    lookup = None
    if table is not None:
        from archsearch.evaluators.table import lookup_table

        read = lookup_table(table, get_space(space) if isinstance(space, str) else space)
        lookup = read.find
        highest = {c: max(row[c] for row in read.rows.values() if c in row) for c in read.columns}
        extra_meta = {**(extra_meta or {}), "table": {"path": str(table), "columns": read.columns, "max": highest}}
    latency = None
    if (latency_table is None) != (latency_target_ms is None):
        raise ArchsearchError("a latency target needs both latency_table (the table predicting it) and "
                              "latency_target_ms (the limit)")  # fmt: skip
    if latency_table is not None and latency_target_ms is not None:
        latency = LatencyTarget(LatencyTable.load(latency_table), latency_target_ms)
        extra_meta = {**(extra_meta or {}), "latency_table": str(latency_table)}
    search = None
    if METHODS.get(method).searches_subnetworks:
        search = subnetwork_search(data, subnetwork_trials, device, latency=latency)
    result = run_oneshot(
        method,
        space,
        data,
        run_dir,
        config,
        supernet_options,
        device=device,
        resume=resume,
        on_epoch=on_epoch,
        on_step=on_step,
        subnetwork_search=search,
        extra_meta=extra_meta,
        table_lookup=lookup,
        latency=latency,
    )
    learned = bool(result.history) and "probabilities" in result.history[-1]
    if learned:
        from archsearch.reporting.plots import alpha_separation, threshold_epochs

        cell_types = sorted(result.history[-1]["probabilities"])
        result.threshold_epochs = {t: threshold_epochs(result.history, t) for t in cell_types}
        result.alpha_separation = alpha_separation(result.history)
        if plots and current_world().main:
            result.plots = _plots(result, list(SUPERNETS.get(get_space(space).name).op_names), plot_edges)
    return result


def _plots(result: OneShotResult, op_names: list[str], edges: list[int] | None) -> list[Path]:
    """The derived ops' frequency and each cell type's architecture weights by epoch, as PNGs in the run."""
    from archsearch.reporting.plots import genotype_cells, plot_alpha_evolution, plot_op_frequency

    paths = [plot_op_frequency(genotype_cells(result.genotype), op_names, result.run_dir / "op_frequency.png")]
    for cell_type in sorted({t for r in result.history for t in r.get("probabilities", {})}):
        paths.append(plot_alpha_evolution(result.history, op_names, result.run_dir / f"alphas_{cell_type}.png",
                                          cell_type, edges=edges))  # fmt: skip
    return paths

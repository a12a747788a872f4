"""One-shot search from Python: :func:`oneshot` runs a registered method on its space's supernet; for a method that
searches sub-networks (SPOS) it supplies that search, regularized evolution over sub-networks scored with the trained
supernet's inherited weights, which needs the multi-trial machinery that the ``oneshot`` package sits below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from archsearch.data import Data
from archsearch.errors import ArchsearchError
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.oneshot import METHODS, OneShotConfig, Supernet
from archsearch.oneshot.search import OneShotResult, SubnetworkSearch, run_oneshot
from archsearch.spaces import Space
from archsearch.store import Store
from archsearch.strategies import get_strategy


def subnetwork_search(data: Data, trials: int, device: Any, strategy: str = "evolution") -> SubnetworkSearch:
    """A search over a trained supernet's sub-networks: ``strategy`` for ``trials`` sub-networks, each scored by
    validation accuracy with inherited weights after batch-norm recalibration, recorded in the run's store."""
    from archsearch.evaluators.supernet import SupernetEvaluator

    def search(net: Supernet, space: Space[Any], store: Store, config: OneShotConfig) -> tuple[Any, int]:
        evaluator = SupernetEvaluator(net, data, device=device)
        chosen = get_strategy(strategy, space, seed=config.seed)
        budget = Budget(trials=trials)
        result = Experiment(space, chosen, evaluator, Objective(), budget, store, seed=config.seed).run()
        if result.winner is None:
            raise ArchsearchError("the search over sub-networks found none that could be evaluated")
        return result.winner.genotype, result.trials

    return search


def oneshot(
    method: str,
    space: str | Space[Any],
    data: Data,
    run_dir: str | Path,
    config: OneShotConfig | None = None,
    supernet_options: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    subnetwork_trials: int = 100,
    extra_meta: dict[str, Any] | None = None,
) -> OneShotResult:
    """Run one-shot ``method`` (a name in :data:`archsearch.oneshot.METHODS`) on ``space``'s supernet; see
    :func:`archsearch.oneshot.search.run_oneshot`. SPOS scores ``subnetwork_trials`` sub-networks afterwards."""
    search = subnetwork_search(data, subnetwork_trials, device) if METHODS.get(method).searches_subnetworks else None
    return run_oneshot(
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
    )

"""Zero-cost proxy scores of architectures (untrained networks), optionally rank-correlated with a table."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsearch.api.results import ScoreResult
from archsearch.api.tools import check_build, genotypes
from archsearch.errors import ArchsearchError
from archsearch.evaluators.table import Table
from archsearch.evaluators.zero_cost import PROXIES, first_batch, parse_proxies, rank_average, score_model
from archsearch.spaces import Space, get_space


def _sampled(space: str | Space[Any] | None, n: int, seed: int) -> list[Any]:
    if space is None:
        raise ArchsearchError("give architectures, or a space with n to score sampled ones")
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    seen: dict[str, Any] = {}
    for _ in range(50 * n):
        g = sp.sample(rng)
        seen.setdefault(g.key, g)
        if len(seen) == n:
            break
    return list(seen.values())


Batch = tuple[torch.Tensor, torch.Tensor]


def _batch(proxies: list[str], dataset: Any, data_dir: Any, batch_size: int, seed: int,
           input_shape: Sequence[int] | None, classes: int) -> tuple[Batch, int]:  # fmt: skip
    """The scoring batch and the number of classes: real data when a proxy needs it, else a placeholder of the
    input shape (the data-independent proxies read only the shape)."""
    needs = [p for p in proxies if PROXIES.get(p).needs_data]
    if dataset is not None:
        if input_shape is not None:
            raise ArchsearchError("input_shape applies only without a dataset (the dataset fixes the shape)")
        from archsearch.data import as_data

        data = as_data(dataset, data_dir)
        return first_batch(data, batch_size, seed), data.num_classes
    if needs:
        raise ArchsearchError(f"proxies {needs} score a batch of data: give a dataset (e.g. fashion-mnist)")
    shape = tuple(input_shape or (3, 32, 32))
    return (torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long)), classes


def score(
    archs: Iterable[Any] = (),
    space: str | Space[Any] | None = None,
    proxy: str | Sequence[str] = "synflow",
    ensemble: bool = False,
    n: int = 100,
    top: int | None = None,
    dataset: Any = None,
    data_dir: str | Path | None = None,
    batch_size: int = 64,
    table: str | Path | None = None,
    input_shape: Sequence[int] | None = None,
    classes: int = 10,
    build: dict[str, Any] | None = None,
    seed: int = 0,
) -> ScoreResult:
    """Score ``archs`` (genotypes or text; none given: ``n`` distinct ones sampled from ``space``) with each proxy on
    one seeded batch of ``dataset`` (data-independent proxies need only ``input_shape``). ``ensemble`` adds the
    rank average of the proxies; ``top`` keeps the best K (ranked by the ensemble, else the first proxy); ``table``
    adds each architecture's 200-epoch test accuracy and each column's Spearman rho with it."""
    from scipy.stats import spearmanr

    proxies = parse_proxies(proxy)
    given = list(archs)
    pairs = genotypes(given, space) if given else [(get_space(space), g) for g in _sampled(space, n, seed)]  # type: ignore[arg-type]
    (x, y), n_classes = _batch(proxies, dataset, data_dir, batch_size, seed, input_shape, classes)
    tab = Table(table) if table else None
    scores: dict[str, list[float]] = {p: [] for p in proxies}
    seconds = dict.fromkeys(proxies, 0.0)
    for sp, genotype in pairs:
        net = sp.build(genotype, x.shape[1], n_classes, x.shape[2], seed=seed, **check_build(sp, build))
        for p in proxies:
            start = time.perf_counter()
            scores[p].append(score_model(net, p, (x, y), seed))
            seconds[p] += time.perf_counter() - start
    columns = dict(scores)
    if ensemble and len(proxies) > 1:
        columns["ensemble"] = list(rank_average([scores[p] for p in proxies]))
    rank_by = "ensemble" if "ensemble" in columns else proxies[0]
    order = np.argsort(-np.asarray(columns[rank_by]), kind="stable") if top else np.arange(len(pairs))
    shown = [int(i) for i in (order[:top] if top else order)]
    rows = []
    for i, (_, g) in enumerate(pairs):
        row: dict[str, Any] = {"arch": str(g), **{c: float(v[i]) for c, v in columns.items()}}
        if tab is not None:
            row["test_acc_200ep"] = tab.lookup(str(g))["test_acc_200ep"]
        rows.append(row)
    spearman = None
    if tab is not None and len(pairs) > 2:
        target = [r["test_acc_200ep"] for r in rows]
        spearman = {c: float(spearmanr(v, target)[0]) for c, v in columns.items()}
    return ScoreResult(list(columns), rows, shown, spearman, seconds)

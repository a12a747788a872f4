"""``archsearch score``: zero-cost proxy scores of given or sampled architectures, with rank correlations against a
tabular benchmark."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from archsearch.cli.common import build_options, emit, input_shape, positive_int, read_archs
from archsearch.errors import ArchsearchError
from archsearch.evaluators.benchmark import Table
from archsearch.evaluators.zero_cost import PROXIES, first_batch, parse_proxies, rank_average, score_model
from archsearch.spaces import SPACES, get_space


def _architectures(args: argparse.Namespace) -> list[tuple[Any, Any]]:
    if args.arch:
        return list(read_archs(args.arch, args.space))
    if not args.space:
        raise ArchsearchError("give architectures (or '-' for stdin), or --space with --n to score sampled ones")
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    seen: dict[str, Any] = {}
    for _ in range(50 * args.n):
        g = space.sample(rng)
        seen.setdefault(g.key, g)
        if len(seen) == args.n:
            break
    return [(space, g) for g in seen.values()]


def _batch(args: argparse.Namespace, proxies: list[str]) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
    """The scoring batch and the number of classes: real data when a proxy needs it, else a placeholder of the
    input shape (the data-independent proxies read only the shape)."""
    needs = [p for p in proxies if PROXIES.get(p).needs_data]
    if args.dataset:
        if args.input_shape is not None:
            raise ArchsearchError("--input-shape applies only without --dataset (the dataset fixes the shape)")
        from archsearch.data import load_dataset

        data = load_dataset(args.dataset, args.data_dir)
        return first_batch(data, args.batch_size, args.seed), data.num_classes
    if needs:
        raise ArchsearchError(f"proxies {needs} score a batch of data: give --dataset (e.g. fashion-mnist)")
    shape = args.input_shape or (3, 32, 32)
    return (torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long)), args.classes


def cmd_score(args: argparse.Namespace) -> None:
    """Score architectures with each proxy; print a table (or JSON) and, with --table, Spearman correlations."""
    from scipy.stats import spearmanr

    proxies = parse_proxies(args.proxy)
    archs = _architectures(args)
    (x, y), classes = _batch(args, proxies)
    table = Table(args.table) if args.table else None
    scores: dict[str, list[float]] = {p: [] for p in proxies}
    seconds = dict.fromkeys(proxies, 0.0)
    for space, genotype in archs:
        net = space.build(genotype, x.shape[1], classes, x.shape[2], seed=args.seed, **build_options(space, args))
        for p in proxies:
            start = time.perf_counter()
            scores[p].append(score_model(net, p, (x, y), args.seed))
            seconds[p] += time.perf_counter() - start
    columns = dict(scores)
    if args.ensemble and len(proxies) > 1:
        columns["ensemble"] = list(rank_average([scores[p] for p in proxies]))
    rank_by = "ensemble" if "ensemble" in columns else proxies[0]
    order = np.argsort(-np.asarray(columns[rank_by]), kind="stable") if args.top else np.arange(len(archs))
    shown = order[: args.top] if args.top else order
    truth = [table.lookup(str(g)) for _, g in archs] if table else None
    if not args.json:
        print("  ".join(f"{c:>12}" for c in columns) + ("  test_200ep" if truth else "") + "  arch")
    for i in shown:
        _, g = archs[i]
        record: dict[str, Any] = {"arch": str(g), **{c: float(v[i]) for c, v in columns.items()}}
        text = "  ".join(f"{v[i]:>12.5g}" for v in columns.values())
        if truth:
            record["test_acc_200ep"] = truth[i]["test_acc_200ep"]
            text += f"  {truth[i]['test_acc_200ep']:>10.2f}"
        emit(args, record, f"{text}  {g}")
    if truth and len(archs) > 2:
        target = [t["test_acc_200ep"] for t in truth]
        rho = {c: float(spearmanr(v, target)[0]) for c, v in columns.items()}
        emit(
            args,
            {"spearman_vs_test_acc_200ep": rho, "n": len(archs)},
            f"\nSpearman rho against 200-epoch test accuracy over {len(archs)} architectures: "
            + ", ".join(f"{c} {r:.3f}" for c, r in rho.items()),
        )
    if not args.json:
        rates = ", ".join(f"{p} {len(archs) / max(seconds[p], 1e-9):.1f}/s" for p in proxies)
        print(f"scored {len(archs)} architectures ({rates})", file=sys.stderr)


def add_score_command(command: Any) -> None:
    """Register ``score`` with the ``command`` factory of the main parser."""
    p = command("score", cmd_score, "zero-cost proxy scores of architectures (untrained networks)")
    p.add_argument(
        "arch",
        nargs="*",
        metavar="ARCH",
        help="architectures as `archsearch cost` takes them ('-' for one per line on stdin); none: --n sampled",
    )
    p.add_argument("--space", choices=SPACES.names(), help="the space to sample from (or to require)")
    p.add_argument("--proxy", default="synflow", help=f"comma-separated proxies ({', '.join(PROXIES)})")
    p.add_argument("--ensemble", action="store_true", help="add the rank-average ensemble of the proxies")
    p.add_argument("--n", type=positive_int, default=100, help="architectures to sample when none are given")
    p.add_argument("--top", type=positive_int, help="print only the best K (a pre-filter: train these)")
    p.add_argument("--dataset", help="data for the batch the data-dependent proxies score (digits, fashion-mnist...)")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $ARCHSEARCH_DATA)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--table", help="a benchmark CSV (nb201 format): report each proxy's Spearman rho with it")
    p.add_argument("--input-shape", type=input_shape, help="C,H,W without --dataset (default 3,32,32)")
    p.add_argument("--classes", type=positive_int, default=10, help="classes without --dataset (default 10)")
    p.add_argument("--channels", type=positive_int, help="initial channels of the scored networks")
    p.add_argument("--cells", type=positive_int, help="cells of the scored networks")
    p.add_argument("--width", type=float, help="channel multiplier (chain)")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling, initial weights and the batch")
    p.set_defaults(auxiliary=False)

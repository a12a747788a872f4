"""``archsearch score``: zero-cost proxy scores of given or sampled architectures, with rank correlations against a
tabular benchmark."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archsearch import api
from archsearch.cli.common import add_depth_arguments, build_options, emit, input_shape, read_archs
from archsearch.evaluators.zero_cost import PROXIES
from archsearch.options import finite_float, positive_int
from archsearch.spaces import SPACES


def cmd_score(args: argparse.Namespace) -> None:
    """Score architectures with each proxy; print a table (or JSON) and, with --table, Spearman correlations."""
    archs = [g for _, g in read_archs(args.arch, args.space)] if args.arch else []
    result = api.score(
        archs, space=args.space, proxy=args.proxy, ensemble=args.ensemble, n=args.n, top=args.top,
        dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size, table=args.table,
        input_shape=args.input_shape, classes=args.classes, build=build_options(args), seed=args.seed,
    )  # fmt: skip
    truth = args.table is not None
    if not args.json:
        print("  ".join(f"{c:>12}" for c in result.columns) + ("  test_200ep" if truth else "") + "  arch")
    for i in result.shown:
        row = result.rows[i]
        text = "  ".join(f"{row[c]:>12.5g}" for c in result.columns)
        if truth:
            text += f"  {row['test_acc_200ep']:>10.2f}"
        emit(args, row, f"{text}  {row['arch']}")
    if result.spearman is not None:
        emit(
            args,
            result.to_json()[-1],
            f"\nSpearman rho against 200-epoch test accuracy over {len(result.rows)} architectures: "
            + ", ".join(f"{c} {r:.3f}" for c, r in result.spearman.items()),
        )
    if not args.json:
        rates = ", ".join(f"{p} {len(result.rows) / max(t, 1e-9):.1f}/s" for p, t in result.seconds.items())
        print(f"scored {len(result.rows)} architectures ({rates})", file=sys.stderr)


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
    add_depth_arguments(p)
    p.add_argument("--width", type=finite_float, help="channel multiplier (chain)")
    p.add_argument("--seed", type=int, default=0, help="seeds sampling, initial weights and the batch")
    p.set_defaults(auxiliary=False)

"""The core commands: spaces, sample, cost."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archsearch import api
from archsearch.cli.common import add_depth_arguments, build_options, emit, input_shape, read_archs
from archsearch.costs.runtime import REPEATS
from archsearch.errors import ArchsearchError
from archsearch.options import finite_float, positive_int
from archsearch.spaces import SPACES


def cmd_spaces(args: argparse.Namespace) -> None:
    """List the registered spaces with their size and ops."""
    for info in api.spaces():
        size = info.size
        size_text = f"{size:,}" if size is not None and size < 10**9 else (f"{size:.3g}" if size else "unbounded")
        text = f"{info.name:<8} {size_text:>12}  {info.description}\n{'':<8} ops: {', '.join(info.ops)}"
        emit(args, info.to_json(), text)


def cmd_sample(args: argparse.Namespace) -> None:
    """Print ``--n`` random genotypes of a space as JSON, one per line."""
    for genotype in api.sample(args.space, n=args.n, seed=args.seed):
        print(json.dumps(genotype.to_json()) if args.json or not args.text else str(genotype), flush=True)


def cmd_cost(args: argparse.Namespace) -> None:
    """Parameters, multiply-adds and latency of each architecture given."""
    if args.latency_model is not None:
        set_by_user = (("--no-latency", args.no_latency), ("--threads", args.threads is not None),
                       ("--runs", args.runs != REPEATS), ("--batch-size", args.batch_size != 1))  # fmt: skip
        timing = [name for name, on in set_by_user if on]
        if timing:
            raise ArchsearchError(f"{', '.join(timing)} set how latency is timed; with --latency-model latency_ms "
                                  "is predicted, not timed: drop them")  # fmt: skip
    if not args.json:
        print(f"{'space':<6} {'params':>10} {'MACs':>10} {'latency':>10}  arch")

    def row(record: api.CostRecord) -> None:
        latency = "-" if record.latency_ms is None else f"{record.latency_ms:.2f}ms"
        r = record
        text = f"{r.space:<6} {r.params / 1e6:>9.6f}M {r.flops / 1e6:>9.2f}M {latency:>10}  {r.arch}"
        if record.train_peak_mb is not None:
            text += (f"\n{'':<6} peak memory: forward {record.forward_peak_mb:.1f} MiB, "
                     f"train step {record.train_peak_mb:.1f} MiB")  # fmt: skip
        emit(args, record.to_json(), text)

    api.cost(
        [g for _, g in read_archs(args.arch, args.space)], space=args.space, input_shape=args.input_shape,
        classes=args.classes, build=build_options(args), latency=not args.no_latency, memory=args.memory,
        batch_size=args.batch_size, device=args.device, threads=args.threads, runs=args.runs, on_record=row,
        latency_model=args.latency_model,
    )  # fmt: skip


def add_core_commands(command: Any) -> None:
    """Register spaces, sample and cost with the ``command`` factory of the main parser."""
    command("spaces", cmd_spaces, "list the search spaces: name, size, ops")

    p = command("sample", cmd_sample, "sample random genotypes of a space (JSON, one per line)")
    p.add_argument("--space", required=True, choices=SPACES.names())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=positive_int, default=1, help="how many genotypes (default 1)")
    p.add_argument("--text", action="store_true", help="print each genotype's text form instead of JSON")

    p = command("cost", cmd_cost, "parameters, multiply-adds (MACs) and latency of architectures")
    p.add_argument(
        "arch",
        nargs="+",
        metavar="ARCH",
        help="an NB201 string, a DARTS Genotype(...) or published name (DARTS_V2), a chain 'add: ...', "
        "a JSON object or file, or '-' for one architecture per line on stdin",
    )
    p.add_argument("--space", choices=SPACES.names(), help="require the architectures to be of this space")
    p.add_argument("--channels", type=positive_int, help="initial channels (nb201 default 16, darts 36)")
    add_depth_arguments(p)
    p.add_argument("--width", type=finite_float, help="channel multiplier (chain, default 1.0)")
    p.add_argument("--auxiliary", action="store_true", help="build DARTS's auxiliary head (never counted)")
    p.add_argument("--classes", type=positive_int, default=10)
    p.add_argument("--input-shape", type=input_shape, default=(3, 32, 32), help="C,H,W (default 3,32,32)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="batch size for latency (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=positive_int, help="CPU threads while timing")
    p.add_argument("--runs", type=positive_int, default=REPEATS,
                   help=f"timed runs; the median is reported (default {REPEATS})")
    p.add_argument("--no-latency", action="store_true", help="skip timing")
    p.add_argument("--latency-model", metavar="FILE.json",
                   help="latency_ms predicted by this device model (archsearch latency-model fit), not timed here")
    p.add_argument("--memory", action="store_true", help="also measure peak memory (forward, train step; batch 32)")

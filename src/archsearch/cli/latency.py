"""``archsearch latency`` (measured on a deployment runtime) and ``archsearch latency-table`` (a per-block lookup
table that predicts it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from archsearch import api
from archsearch.cli.common import add_depth_arguments, build_options, emit, input_shape, read_archs
from archsearch.costs.runtime import TARGETS
from archsearch.errors import ArchsearchError
from archsearch.options import finite_float, positive_int
from archsearch.rundir import names_directory
from archsearch.spaces import SPACES, block_spaces


def cmd_latency(args: argparse.Namespace) -> None:
    """Latency of a run's winner or an architecture on each target."""
    arch: Any = args.arch
    if not names_directory(args.arch):
        archs = list(read_archs([args.arch], args.space))
        if len(archs) != 1:
            raise ArchsearchError(f"latency takes one architecture, got {len(archs)}")
        arch = archs[0][1]

    def row(r: api.LatencyRecord) -> None:
        predicted = "" if r.predicted_ms is None else f", predicted {r.predicted_ms:.3f} ms"
        text = (f"{r.target:<12} {r.median_ms:8.3f} ms median (IQR {r.q25_ms:.3f}-{r.q75_ms:.3f}, {r.repeats} runs, "
                f"batch {r.batch_size}, {r.threads} thread(s){predicted})")  # fmt: skip
        emit(args, r.to_json(), text)

    api.latency(arch, args.target, space=args.space, input_shape=args.input_shape, num_classes=args.num_classes,
                weights=args.weights, build=build_options(args), batch_size=args.batch_size, threads=args.threads,
                warmup=args.warmup, repeats=args.repeats, latency_table=args.latency_table,
                on_record=row)  # fmt: skip


def cmd_latency_table(args: argparse.Namespace) -> None:
    """Measure every distinct block of a space on a target and save the table."""

    def progress(n: int, key: str, ms: float) -> None:
        if not args.json and args.verbose:
            print(f"{n:4d} {ms:8.3f} ms  {key}", file=sys.stderr, flush=True)

    written = api.latency_table(args.space, args.out, target=args.target, input_shape=args.input_shape,
                                num_classes=args.num_classes, build=build_options(args), threads=args.threads,
                                batch_size=args.batch_size, warmup=args.warmup, repeats=args.repeats,
                                calibrate=args.calibrate, profile=args.profile, on_block=progress,
                                force=args.force)  # fmt: skip
    w = written
    emit(args, w.to_json(), f"wrote {w.path}: {w.blocks} blocks of space {w.space} on {w.target} ({w.threads} "
                            f"thread(s), batch {w.batch_size}) in {w.built_seconds:.1f} s; calibration scale "
                            f"{w.scale:.3f} from {w.calibrated_on} whole networks")  # fmt: skip


def cmd_latency_model(args: argparse.Namespace) -> None:
    """``latency-model fit``: a device latency model from a CSV of networks timed on the device."""
    written = api.fit_latency_model(args.space, args.measured, args.out, reference=args.reference,
                                    reference_columns=args.reference_columns.split(",") if args.reference_columns
                                    else None, force=args.force)  # fmt: skip
    w = written
    best = w.members[0]
    emit(args, w.to_json(), f"wrote {w.path}: a {w.space} latency model from {w.measured} measured networks; "
                            f"{len(w.members)} feature sets, the heaviest {best['features']} (weight "
                            f"{best['weight']:.2f}, leave-one-out error {best['loo_rmse_ms']:.3g} ms)")  # fmt: skip


def _build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=finite_float, help="channel multiplier (chain, macro, mobile)")
    p.add_argument("--head", type=positive_int, help="head conv channels (mobile, default 1280)")
    p.add_argument("--channels", type=positive_int, help="initial channels (nb201, darts)")
    add_depth_arguments(p)
    p.set_defaults(auxiliary=False)


def add_latency_commands(command: Any) -> None:
    """Register ``latency`` and ``latency-table`` with the ``command`` factory of the main parser."""
    p = command("latency", cmd_latency, "latency of a run's winner or an architecture on deployment runtimes")
    p.add_argument("arch", metavar="RUN_DIR|ARCH", help="a run directory (its winner) or an architecture")
    p.add_argument("--target", default="eager,onnxruntime",
                   help=f"comma-separated runtimes among {', '.join(TARGETS)} (default eager,onnxruntime)")  # fmt: skip
    p.add_argument("--space", choices=SPACES.names(), help="the architecture's space (a registered space's text)")
    p.add_argument("--input-shape", type=input_shape, help="C,H,W (default: the run's data, else 3,32,32)")
    p.add_argument("--num-classes", type=positive_int, help="classes (default: the run's data, else 10)")
    p.add_argument("--weights", help="a state dict file to load first")
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first (default 10)")
    p.add_argument("--repeats", type=positive_int, default=50, help="timed calls; the median is reported")
    p.add_argument("--latency-table", metavar="FILE", help="also print this table's prediction")
    _build_arguments(p)

    p = command("latency-table", cmd_latency_table, "measure every block of a space on a runtime: a lookup table")
    p.add_argument("--space", required=True, choices=block_spaces())
    p.add_argument("--target", default="onnxruntime", choices=TARGETS)
    p.add_argument("--out", required=True, metavar="FILE.json")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--input-shape", type=input_shape, default=(3, 224, 224), help="C,H,W (default 3,224,224)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=positive_int, default=50)
    p.add_argument("--calibrate", type=int, default=10, help="whole networks measured for the scale (default 10)")
    p.add_argument(
        "--profile",
        type=int,
        default=30,
        help="eager: also time the blocks inside this many sampled networks (default 30)",
    )
    p.add_argument("--verbose", action="store_true", help="print each block's latency as it is measured")
    _build_arguments(p)

    p = command("latency-model", cmd_latency_model, "predict latency on a device you cannot run on, from a few "
                "networks timed there")  # fmt: skip
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = actions.add_parser("fit", help="fit a model on a CSV of arch, latency_ms and save it as JSON")
    fit.add_argument("--space", required=True, choices=SPACES.names())
    fit.add_argument("--measured", required=True, metavar="CSV",
                     help="the networks timed on the device: arch, latency_ms")  # fmt: skip
    fit.add_argument("--out", required=True, metavar="FILE.json")
    fit.add_argument("--force", action="store_true", help="replace --out if it exists")
    fit.add_argument("--reference", metavar="CSV", help="the same architectures' latencies on other devices "
                     "(arch and one column per device), used as features and kept in the model")  # fmt: skip
    fit.add_argument("--reference-columns", help="comma-separated columns of --reference (default all)")
    fit.add_argument("--json", action="store_true", help="print one JSON object per result per line")

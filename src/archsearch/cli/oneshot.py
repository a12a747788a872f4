"""``archsearch oneshot``: a differentiable or weight-sharing search (DARTS, PC-DARTS, GDAS, SPOS) on a supernet,
with a progress bar per epoch, plots of the architecture weights, ``--resume`` and ``--retrain``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archsearch import api, options
from archsearch.api import oneshot_search, retraining
from archsearch.cli.common import emit, latency_text, table_text, visible
from archsearch.cli.options import NOT_OPTIONS, default_of, flag, given_with_config, option_actions, take_recorded
from archsearch.errors import ArchsearchError
from archsearch.oneshot import METHODS, SUPERNETS, default_config
from archsearch.oneshot.darts import Darts
from archsearch.oneshot.supernets import CELL_CHANNELS
from archsearch.options import finite_float, non_negative_float, positive_float, positive_int
from archsearch.rundir import describe
from archsearch.spaces import DartsSpace, get_space


def _supernet_options(args: argparse.Namespace) -> dict[str, Any]:
    """The supernet options given (the rest are the supernet's and the method's defaults)."""
    options: dict[str, Any] = {}
    if not SUPERNETS.get(args.space).options:  # a cell supernet records its channels, given or not
        options["channels"] = CELL_CHANNELS if args.channels is None else args.channels
    for name in ("cells", "cells_per_stage", "width", "head", "channels", "partial", "few_shot_edge"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def _config(args: argparse.Namespace) -> Any:
    overrides = options.values(options.group("oneshot"), args)
    if args.no_collapse_control:
        overrides.update(skip_penalty=0.0, max_skips=None)
    if args.skip_penalty is not None:
        overrides["skip_penalty"] = args.skip_penalty
    if args.max_skips is not None:
        overrides["max_skips"] = args.max_skips
    if args.beta_decay is not None:
        overrides["beta_decay"] = args.beta_decay
    if args.few_shot_epoch is not None:
        overrides["few_shot_epoch"] = args.few_shot_epoch
    return default_config(args.method, **overrides)


class _EpochBar:
    """A rich progress bar over the steps of each epoch, on stderr."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled, self.epochs, self.task, self.epoch = enabled, epochs, None, 0
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def step(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.task is None or done == 1:
            if self.task is None:
                self.progress.start()
            else:
                self.progress.remove_task(self.task)
            self.epoch += 1
            self.task = self.progress.add_task("epoch", total=total, epoch=self.epoch, epochs=self.epochs)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.enabled and self.task is not None:
            self.progress.stop()


def _epoch_line(r: dict[str, Any]) -> str:
    val = "" if r.get("val_acc") is None else f"  val loss {r['val_loss']:.3f} acc {r['val_acc']:5.1f}%"
    arch = "" if "genotype" not in r else f"  skips {r['skips']}  {r['genotype']}"
    train = f"train loss {r['train_loss']:.3f} acc {r['train_acc']:5.1f}%"
    looked_up = f"\n  table: {table_text(r['table'])}" if "table" in r else ""
    lat = r.get("latency")
    latency = "" if not lat else (f"\n  latency: supernet expects {lat['expected_ms']:.3f} ms, derived network "
                                  f"{lat['predicted_ms']:.3f} ms predicted, {lat['measured_ms']:.3f} ms measured; "
                                  f"target {lat['target_ms']:g} ms, multiplier {lat['multiplier']:.3g}")  # fmt: skip
    return f"epoch {r['epoch']}: {train}{val}  {r['seconds']:.0f}s{arch}{looked_up}{latency}"



def cmd_oneshot(args: argparse.Namespace) -> None:
    """Run a one-shot search and print the derived genotype (and, with --retrain, it beside the baseline). Under
    ``torchrun --nproc_per_node N`` the search is data-parallel; rank 0 prints, plots and retrains."""
    from archsearch.oneshot.distributed import init_from_env

    given = given_with_config(args, ("oneshot",))
    if args.resume:
        _take_run_settings(args, given)
    _check_options(args, given)
    world, device = init_from_env(args.device)
    try:
        _oneshot(args, world, device)
    finally:
        if world.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


#: what a resume may change: where the result goes and what happens after the search
ONESHOT_RESUMABLE = frozenset({"out", "epochs", "retrain", "retrain_epochs", "retrain_channels", "retrain_cells",
                               "retrain_cells_per_stage", "retrain_subset", "lr", "plot_edges"})  # fmt: skip


def _check_options(args: argparse.Namespace, given: set[str]) -> None:
    """Options that would not act with this method (as its class declares it) are refused."""
    method = METHODS.get(args.method)
    unused = set()
    if "partial" not in method.supernet_defaults:
        unused.add("partial")
    if not method.collapse_control:
        unused |= {"skip_penalty", "max_skips", "no_collapse_control"}
    if not issubclass(method, Darts):  # the regulariser joins the DARTS family's validation loss
        unused.add("beta_decay")
    if not method.searches_subnetworks:
        unused |= {"spos_trials", "path_sampling", "few_shot_edge", "few_shot_epoch"}
    if not method.learns_arch:
        unused |= {"alpha_lr", "plot_edges"}
    if not args.retrain:
        unused |= {"retrain_epochs", "retrain_channels", "retrain_cells", "retrain_cells_per_stage", "retrain_subset",
                   "lr"}
    bad = sorted(given & unused)
    if bad:
        names = ", ".join(flag(d) for d in bad)
        raise ArchsearchError(f"{names}: no effect with --method {args.method}" + ("" if args.retrain else
                              " (or without --retrain)") + f"; drop {names}")  # fmt: skip
    if args.no_collapse_control and given & {"skip_penalty", "max_skips"}:
        raise ArchsearchError("--no-collapse-control turns the skip penalty and --max-skips off; give one or the other")


def _take_run_settings(args: argparse.Namespace, given: set[str]) -> None:
    """On resume, the run's recorded options fill ``args``; one given with another value is an error."""
    kind, meta = describe(args.out)
    if kind != "oneshot":
        what = {"nothing": "nothing", "empty": "an empty store", "search": "a multi-trial search"}[kind]
        raise ArchsearchError(f"{args.out}: no one-shot search to resume (it holds {what})")
    info = meta.get("oneshot") or {}
    recorded = options.migrate(info.get("cli_options") or {}, "oneshot")
    if info.get("space") in SUPERNETS:  # depth options recorded before a rename: today's names
        for old, new in get_space(info["space"]).renamed_build_options.items():
            renames = {old: (new, options.unchanged), f"retrain_{old}": (f"retrain_{new}", options.unchanged)}
            recorded = options.rename_keys(recorded, renames)
    take_recorded(args, given, recorded, ONESHOT_RESUMABLE, args.out)


def _oneshot(args: argparse.Namespace, world: Any, device: str) -> None:
    config = _config(args)
    collapse_control = config.skip_penalty > 0 or config.max_skips is not None
    if args.batch_size % world.size:
        raise ArchsearchError(f"--batch-size {args.batch_size} must divide among the {world.size} processes")
    if METHODS.get(args.method).collapse_control and not args.json and collapse_control and world.main:
        print(
            f"collapse control on (skip penalty {config.skip_penalty}, stop above {config.max_skips} skip "
            "connections in the normal cell): DARTS tends to fill its normal cell with parameter-free skip "
            "connections as it trains, which ruins the derived network; --no-collapse-control turns it off"
        )
    bar = _EpochBar(sys.stderr.isatty() and not args.json and world.main, config.epochs)

    def on_epoch(record: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps({k: v for k, v in record.items() if k != "probabilities"}))
        else:
            bar.close()
            bar.task = None
            print(visible(_epoch_line(record)), flush=True)

    try:
        result = api.oneshot(
            args.method, args.space, args.dataset, Path(args.out), config, _supernet_options(args), device=device,
            resume=args.resume, on_epoch=on_epoch, on_step=bar.step, subnetwork_trials=args.spos_trials,
            extra_meta={"cli_options": {d: getattr(args, d) for d in _setting_dests() if hasattr(args, d)}},
            data_dir=args.data_dir, subset=args.subset, image_size=args.image_size,
            latency_table=args.latency_table, latency_target_ms=args.latency_target_ms,
            plot_edges=[int(e) for e in args.plot_edges.split(",")] if args.plot_edges else None, table=args.table,
        )  # fmt: skip
    except ValueError as exc:
        raise ArchsearchError(str(exc)) from None
    finally:
        bar.close()
    if not world.main:
        return
    emit(
        args,
        result.to_json(),
        f"\n{args.method} on {args.space}: {result.genotype}\n  {result.stopped}"
        + (f"\n  table: {table_text(result.table)}" if args.table else "")
        + (f"\n  {latency_text({'target_ms': args.latency_target_ms, 'measured_ms': result.measured_ms})}"
           if args.latency_target_ms is not None else "")
        + "".join(f"\n  note: {n}" for n in result.notes)
        + "".join(f"\n  {line}" for line in result.alpha_separation)
        + "".join(f"\n  plot: {p}" for p in result.plots),
    )
    if args.retrain:
        from archsearch.cli.retrain import retrain_beside_baseline

        build = {k: v for k, v in {"channels": args.retrain_channels, "cells": args.retrain_cells,
                                   "cells_per_stage": args.retrain_cells_per_stage}.items() if v}  # fmt: skip
        # a supernet built from the space's own options (mobile: width, head) retrains the network at them
        build |= {k: getattr(args, k) for k in SUPERNETS.get(args.space).options if getattr(args, k) is not None}
        # the search's data, or a different seeded subset of the full training split
        retrain_beside_baseline(args, result.genotype, args.dataset, args.space, build, run_dir=args.out,
                                subset=args.retrain_subset or args.subset, image_size=args.image_size)  # fmt: skip


def _setting_dests() -> list[str]:
    """The oneshot command's options that define a run (recorded, so a resume takes them from the run)."""
    parser = argparse.ArgumentParser(add_help=False)
    _oneshot_arguments(parser)
    return [d for d in option_actions(parser) if d not in ONESHOT_RESUMABLE and d not in NOT_OPTIONS]


def add_oneshot_command(command: Any) -> None:
    """Register ``oneshot`` with the ``command`` factory of the main parser."""
    p = command("oneshot", cmd_oneshot, "one-shot search on a supernet: DARTS, PC-DARTS, GDAS or SPOS")
    _oneshot_arguments(p)


def _oneshot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=METHODS.names(), default=Darts.name)
    p.add_argument("--space", choices=SUPERNETS.names(), default=DartsSpace.name, help="a space that has a supernet")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $ARCHSEARCH_DATA)")
    p.add_argument("--subset", type=positive_int, help="search on a seeded random subset of N training examples")
    p.add_argument("--image-size", type=positive_int, help="resize the images of an image folder to N x N")
    p.add_argument("--channels", type=positive_int,
                   help=f"initial channels of a cell supernet (default {CELL_CHANNELS})")  # fmt: skip
    p.add_argument("--width", type=positive_float, help="mobile supernet: width multiplier of the channels "
                   "(default 1)")
    p.add_argument("--head", type=positive_int, help="mobile supernet: channels of the head's 1x1 conv "
                   "(default 1280)")
    for depth in sorted({SUPERNETS.get(s).depth_option for s in SUPERNETS}):  # each supernet's depth, its own name
        users = [(s, SUPERNETS.get(s)) for s in SUPERNETS if SUPERNETS.get(s).depth_option == depth]
        p.add_argument(options.flag_of(depth), type=positive_int, help="supernet depth: " + "; ".join(
            f"{s}: {c.cells_help}, default {c.default_cells}" for s, c in users))  # fmt: skip
    p.add_argument("--partial", type=positive_int, help="PC-DARTS partial-channel K (pcdarts default 4)")
    p.add_argument("--skip-penalty", type=finite_float,
                   help="weight of the skip-connection penalty (darts default 0.1)")
    p.add_argument("--max-skips", type=int, help="stop when the normal cell derives more skips (darts default 2)")
    p.add_argument("--no-collapse-control", action="store_true", help="no skip penalty and no early stop")
    p.add_argument("--beta-decay", type=non_negative_float, help="weight of beta-DARTS's regulariser on the alphas "
                   "(logsumexp per edge) at the last epoch, ramped from 0 (betadarts default 25; darts, darts2, "
                   "pcdarts: 0, off)")  # fmt: skip
    p.add_argument("--few-shot-edge", type=int, metavar="EDGE", help="SPOS: a few-shot supernet, split on this "
                   "edge's op (its index in the cell string; DARTS: of the normal cell): one sub-supernet per op")
    p.add_argument("--few-shot-epoch", type=int, metavar="N", help="SPOS with --few-shot-edge: the epoch from which "
                   "the sub-supernets train apart (default: half the epochs)")
    p.add_argument(
        "--spos-trials",
        type=positive_int,
        default=default_of(oneshot_search.oneshot, "subnetwork_trials"),
        help="SPOS: sub-networks the evolution scores",
    )
    p.add_argument("--plot-edges", help="comma-separated edge indices for the alpha plots (default: all)")
    p.add_argument("--latency-table", metavar="FILE", help="a latency table of the space (archsearch "
                   "latency-table) predicting the latency --latency-target-ms limits")
    p.add_argument("--latency-target-ms", type=positive_float, metavar="L", help="keep the derived network within "
                   "L ms as the latency table's runtime measures it (darts, gdas and the like: an adaptive penalty on "
                   "the supernet's expected latency; spos: the limit of its search over sub-networks)")
    p.add_argument("--table", metavar="CSV", help="a benchmark table of the space (NAS-Bench-201's CSV): the cell "
                   "derived after every epoch is looked up and its figures recorded, never fed to the search")
    p.add_argument("--out", required=True, help="run directory (checkpoint, store, plots)")
    p.add_argument("--resume", action="store_true", help="continue the search in --out from its last epoch")
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file of these options (the command line wins)")
    p.add_argument("--retrain", action="store_true", help="train the derived genotype beside the baseline")
    p.add_argument("--retrain-epochs", type=positive_int, default=retraining.RETRAINING.epochs)
    p.add_argument("--retrain-channels", type=positive_int, help="channels of the retrained network")
    p.add_argument("--retrain-cells", type=positive_int, help="cells of the retrained network (darts)")
    p.add_argument("--retrain-cells-per-stage", type=positive_int, help="cells per stage of the retrained network "
                   "(nb201)")
    p.add_argument(
        "--retrain-subset",
        type=positive_int,
        help="retrain on a seeded random subset of N training examples (default: the data the search used)",
    )
    p.add_argument(
        "--lr", type=finite_float, default=retraining.RETRAINING.lr, help="retraining learning rate"
    )
    p.add_argument("--device", default=default_of(oneshot_search.oneshot, "device"))
    options.add_arguments(p, options.group("oneshot"))

"""``archsearch train``: train one architecture (or the hand-designed baseline) from scratch and report it."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch import api, options
from archsearch.api import training
from archsearch.cli.common import add_depth_arguments, build_options, emit, read_archs
from archsearch.cli.options import default_of, given_with_config
from archsearch.data import DATASETS
from archsearch.errors import ArchsearchError
from archsearch.nn.baseline import MODELS
from archsearch.options import finite_float, positive_int
from archsearch.spaces import SPACES
from archsearch.trainer import EpochRecord, TrainConfig


def cmd_train(args: argparse.Namespace) -> None:
    """Train a genotype or ``--model baseline`` and print its result record."""
    given_with_config(args, ("training",))
    if (args.model is None) == (not args.arch):
        raise ArchsearchError("give one architecture (ARCH) or --model NAME, not both or neither")
    arch = None
    if args.arch:
        archs = list(read_archs([args.arch], args.space))
        if len(archs) != 1:
            raise ArchsearchError(f"train takes one architecture, got {len(archs)}")
        arch = archs[0][1]

    def progress(r: EpochRecord) -> None:
        if not args.json:
            print(
                f"epoch {r.epoch:>3}/{args.epochs}: loss {r.train_loss:.4f} train {r.train_acc:6.2f}% "
                f"val {r.val_acc:6.2f}%  lr {r.lr:.4f}  {r.seconds:.1f}s",
                flush=True,
            )

    build = {k: v for k, v in build_options(args).items() if v is not None}
    result = api.train(
        arch, model=args.model, space=args.space, dataset=args.dataset, data_dir=args.data_dir, subset=args.subset,
        val_subset=args.val_subset, image_size=args.image_size, build=build, config=training_config(args),
        save=args.save, on_epoch=progress,
    )  # fmt: skip
    test = "-" if result.test_acc is None else f"{result.test_acc:.2f}%"
    text = (
        f"{result.arch}\n  {result.dataset}: val {result.val_acc:.2f}% (best, epoch {result.best_epoch}), test {test}, "
        f"{result.params:,} params, {result.epochs} epochs, {result.seconds:.1f}s "
        f"({result.precision}), {result.status}"
        + (f": {result.message}" if result.message else "")
        + (f"\n  saved to {result.saved}" if result.saved else "")
    )
    emit(args, result.to_json(), text)
    if not result.ok:
        raise ArchsearchError(result.message or result.status)


def training_config(args: argparse.Namespace) -> TrainConfig:
    """The training options of the command line, as the trainer takes them."""
    group = options.group("training")
    return options.make(group, **options.values(group, args))  # type: ignore[no-any-return]


def add_data_arguments(p: argparse.ArgumentParser, dataset: str = default_of(training.train, "dataset")) -> None:
    """Where the data comes from: the dataset, its folder, a subset and the image size."""
    p.add_argument("--dataset", default=dataset, help=f"{', '.join(DATASETS)} or a folder of images (per class, "
                   "or train/ beside test/ or val/, each per class)")  # fmt: skip
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $ARCHSEARCH_DATA)")
    p.add_argument("--subset", type=positive_int, help="train on a seeded random subset of N examples")
    p.add_argument("--val-subset", type=positive_int, metavar="N",
                   help="validate on a seeded random subset of N validation examples (the test split stays whole)")
    p.add_argument(
        "--image-size", type=positive_int, help="resize the images of an image folder to N x N (mixed sizes need it)"
    )


def add_training_arguments(p: argparse.ArgumentParser, defaults: dict[str, Any] | None = None,
                           skip: frozenset[str] | set[str] = frozenset()) -> None:  # fmt: skip
    """Dataset options and the training option group (every field of :class:`~archsearch.trainer.TrainConfig`
    that the command line offers, but ``skip``), shared by the commands that train."""
    add_data_arguments(p)
    options.add_arguments(p, options.group("training"), defaults, skip)


def add_train_command(command: Any) -> None:
    """Register ``train`` with the ``command`` factory of the main parser."""
    p = command("train", cmd_train, "train an architecture (or --model baseline) from scratch and report it")
    p.add_argument("arch", nargs="?", metavar="ARCH", help="an architecture, as `archsearch cost` takes it")
    p.add_argument("--model", choices=MODELS.names(), help="a hand-designed model instead of ARCH")
    p.add_argument("--space", choices=SPACES.names())
    p.add_argument("--channels", type=positive_int)
    add_depth_arguments(p)
    p.add_argument("--width", type=finite_float)
    p.add_argument("--auxiliary", action="store_true", help="darts: train with the auxiliary head")
    p.add_argument("--save", metavar="DIR", help="write model.pt (weights) and record.json here")
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file of these options (the command line wins)")
    add_training_arguments(p)

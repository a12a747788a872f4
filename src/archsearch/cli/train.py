"""``archsearch train``: train one architecture (or the hand-designed baseline) from scratch and report it."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch import api
from archsearch.api import training
from archsearch.cli.common import build_options, emit, finite_float, positive_int, read_archs
from archsearch.cli.options import default_of
from archsearch.data import DATASETS
from archsearch.errors import ArchsearchError
from archsearch.nn.baseline import MODELS
from archsearch.spaces import SPACES
from archsearch.trainer import OPTIMIZERS, EpochRecord


def cmd_train(args: argparse.Namespace) -> None:
    """Train a genotype or ``--model baseline`` and print its result record."""
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
        image_size=args.image_size, build=build, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
        label_smoothing=args.label_smoothing, drop_path=args.drop_path, cutout=args.cutout,
        augment=not args.no_augment, patience=args.patience, max_seconds=args.max_seconds, compile=args.compile,
        device=args.device, seed=args.seed, save=args.save, on_epoch=progress,
    )  # fmt: skip
    test = "-" if result.test_acc is None else f"{result.test_acc:.2f}%"
    text = (
        f"{result.arch}\n  {result.dataset}: val {result.val_acc:.2f}% (best, epoch {result.best_epoch}), test {test}, "
        f"{result.params:,} params, {result.epochs} epochs, {result.seconds:.1f}s, {result.status}"
        + (f": {result.message}" if result.message else "")
        + (f"\n  saved to {result.saved}" if result.saved else "")
    )
    emit(args, result.to_json(), text)
    if not result.ok:
        raise ArchsearchError(result.message or result.status)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """Dataset and trainer options shared by the commands that train."""
    p.add_argument(
        "--dataset",
        default=default_of(training.train, "dataset"),
        help=f"{', '.join(DATASETS)} or a folder of images per class",
    )
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $ARCHSEARCH_DATA)")
    p.add_argument("--subset", type=positive_int, help="train on a seeded random subset of N examples")
    p.add_argument(
        "--image-size", type=positive_int, help="resize the images of an image folder to N x N (mixed sizes need it)"
    )
    p.add_argument("--epochs", type=positive_int, default=default_of(training.train, "epochs"))
    p.add_argument("--batch-size", type=positive_int, default=default_of(training.train, "batch_size"))
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=default_of(training.train, "optimizer"))
    p.add_argument("--lr", type=finite_float, default=default_of(training.train, "lr"))
    p.add_argument("--weight-decay", type=finite_float, default=default_of(training.train, "weight_decay"))
    p.add_argument(
        "--warmup",
        type=finite_float,
        default=default_of(training.train, "warmup"),
        help="warm-up epochs (linear), then cosine decay",
    )
    p.add_argument("--label-smoothing", type=finite_float, default=default_of(training.train, "label_smoothing"))
    p.add_argument(
        "--drop-path",
        type=finite_float,
        default=default_of(training.train, "drop_path"),
        help="final drop-path probability (darts)",
    )
    p.add_argument("--cutout", type=int, default=default_of(training.train, "cutout"), help="cutout size (0: off)")
    p.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    p.add_argument("--patience", type=positive_int, help="stop after N epochs without validation gain")
    p.add_argument("--max-seconds", type=finite_float, help="stop after the epoch that passes this many seconds")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--device", default=default_of(training.train, "device"))
    p.add_argument("--seed", type=int, default=default_of(training.train, "seed"))


def add_train_command(command: Any) -> None:
    """Register ``train`` with the ``command`` factory of the main parser."""
    p = command("train", cmd_train, "train an architecture (or --model baseline) from scratch and report it")
    p.add_argument("arch", nargs="?", metavar="ARCH", help="an architecture, as `archsearch cost` takes it")
    p.add_argument("--model", choices=MODELS.names(), help="a hand-designed model instead of ARCH")
    p.add_argument("--space", choices=SPACES.names())
    p.add_argument("--channels", type=positive_int)
    p.add_argument("--cells", type=positive_int)
    p.add_argument("--width", type=finite_float)
    p.add_argument("--auxiliary", action="store_true", help="darts: train with the auxiliary head")
    p.add_argument("--save", metavar="DIR", help="write model.pt (weights) and record.json here")
    add_training_arguments(p)

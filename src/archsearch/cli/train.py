"""``archsearch train``: train one architecture (or the hand-designed baseline) from scratch and report it."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch.checkpoints import build_from_spec, model_spec, save_trained
from archsearch.cli.common import build_options, emit, positive_int, read_archs
from archsearch.data import DATASETS, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.nn.baseline import MODELS
from archsearch.spaces import SPACES
from archsearch.train import OPTIMIZERS, EpochRecord, TrainConfig, train


def train_config(args: argparse.Namespace, data: Any, evaluate_test: bool = True) -> TrainConfig:
    """The trainer settings given on the command line."""
    augment = None if args.no_augment else data.default_augment(cutout=args.cutout)
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup,
        label_smoothing=args.label_smoothing,
        drop_path=args.drop_path,
        augment=augment,
        patience=args.patience,
        evaluate_test=evaluate_test,
        max_seconds=args.max_seconds,
        compile=args.compile,
        device=args.device,
        seed=args.seed,
    )


def load_data(args: argparse.Namespace) -> Any:
    """The dataset named by ``--dataset`` (optionally a seeded training subset)."""
    data = load_dataset(args.dataset, args.data_dir, image_size=getattr(args, "image_size", None))
    return data.with_train_subset(args.subset, seed=args.seed) if args.subset else data


def cmd_train(args: argparse.Namespace) -> None:
    """Train a genotype or ``--model baseline`` and print its result record."""
    if (args.model is None) == (not args.arch):
        raise ArchsearchError("give one architecture (ARCH) or --model NAME, not both or neither")
    data = load_data(args)
    c, size, _ = data.input_shape
    if args.model is not None:
        if any(v is not None for v in (args.channels, args.cells, args.width)) or args.auxiliary:
            raise ArchsearchError(
                f"--channels/--cells/--width/--auxiliary apply to architectures, not --model {args.model}"
            )
        spec = model_spec(c, data.num_classes, size, model=args.model)
        label = args.model
    else:
        archs = list(read_archs([args.arch], args.space))
        if len(archs) != 1:
            raise ArchsearchError(f"train takes one architecture, got {len(archs)}")
        space, genotype = archs[0]
        spec = model_spec(c, data.num_classes, size, genotype=genotype, build=build_options(space, args))
        label = str(genotype)
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = build_from_spec(spec)

    def progress(r: EpochRecord) -> None:
        if not args.json:
            print(
                f"epoch {r.epoch:>3}/{args.epochs}: loss {r.train_loss:.4f} train {r.train_acc:6.2f}% "
                f"val {r.val_acc:6.2f}%  lr {r.lr:.4f}  {r.seconds:.1f}s",
                flush=True,
            )

    result = train(model, data, train_config(args, data), on_epoch=progress)
    record = {
        "arch": label,
        "dataset": data.name,
        "val_acc": result.best_val_acc,
        "test_acc": result.test_acc,
        "params": result.params,
        "epochs": result.epochs,
        "seconds": round(result.seconds, 3),
        "status": result.status,
        "message": result.message,
        "seed": args.seed,
        "history": [vars(h) for h in result.history],
    }
    if args.save:
        save_trained(args.save, model, spec, record)
    test = "-" if result.test_acc is None else f"{result.test_acc:.2f}%"
    text = (
        f"{label}\n  {data.name}: val {result.best_val_acc:.2f}% (best, epoch {result.best_epoch}), test {test}, "
        f"{result.params:,} params, {result.epochs} epochs, {result.seconds:.1f}s, {result.status}"
        + (f": {result.message}" if result.message else "")
        + (f"\n  saved to {args.save}" if args.save else "")
    )
    emit(args, record, text)
    if not result.ok:
        raise ArchsearchError(result.message)


def add_training_arguments(p: argparse.ArgumentParser) -> None:
    """Dataset and trainer options shared by the commands that train."""
    p.add_argument("--dataset", default="digits", help=f"{', '.join(DATASETS)} or a folder of images per class")
    p.add_argument("--data-dir", help="folder holding the dataset files (default: $ARCHSEARCH_DATA)")
    p.add_argument("--subset", type=positive_int, help="train on a seeded random subset of N examples")
    p.add_argument(
        "--image-size", type=positive_int, help="resize the images of an image folder to N x N (mixed sizes need it)"
    )
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup", type=float, default=0.0, help="warm-up epochs (linear), then cosine decay")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--drop-path", type=float, default=0.0, help="final drop-path probability (darts)")
    p.add_argument("--cutout", type=int, default=0, help="cutout square size (0: off)")
    p.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    p.add_argument("--patience", type=positive_int, help="stop after N epochs without validation gain")
    p.add_argument("--max-seconds", type=float, help="stop after the epoch that passes this many seconds")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)


def add_train_command(command: Any) -> None:
    """Register ``train`` with the ``command`` factory of the main parser."""
    p = command("train", cmd_train, "train an architecture (or --model baseline) from scratch and report it")
    p.add_argument("arch", nargs="?", metavar="ARCH", help="an architecture, as `archsearch cost` takes it")
    p.add_argument("--model", choices=MODELS.names(), help="a hand-designed model instead of ARCH")
    p.add_argument("--space", choices=SPACES.names())
    p.add_argument("--channels", type=positive_int)
    p.add_argument("--cells", type=positive_int)
    p.add_argument("--width", type=float)
    p.add_argument("--auxiliary", action="store_true", help="darts: train with the auxiliary head")
    p.add_argument("--save", metavar="DIR", help="write model.pt (weights) and record.json here")
    add_training_arguments(p)

"""``--retrain``: train the search winner from scratch at full budget beside the hand-designed baseline."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch.api.retrain import Retrained, RetrainResult, retrain
from archsearch.cli.common import emit
from archsearch.data import Data, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.experiment import SearchResult
from archsearch.spaces import Space, get_space
from archsearch.train import EpochRecord


def retrain_winner(args: argparse.Namespace, config: dict[str, Any], result: SearchResult) -> RetrainResult:
    """Train the winner and the baseline with the same budget on the full training split; print both."""
    if result.winner is None:
        raise ArchsearchError("no trial completed, so there is no winner to retrain")
    options = config["evaluator_options"]
    dataset = options.get("dataset", args.dataset)
    data = load_dataset(dataset, options.get("data_dir") or args.data_dir)
    space = get_space(config["space"], **config["space_options"])
    build = dict(options.get("build", {}))
    return retrain_beside_baseline(args, data, space, result.winner.genotype, build, run_dir=args.out)


def retrain_beside_baseline(
    args: argparse.Namespace,
    data: Data,
    space: Space[Any],
    genotype: Any,
    build: dict[str, Any],
    run_dir: str | None = None,
) -> RetrainResult:
    """Retrain ``genotype`` beside the baseline with ``--retrain-epochs``, ``--batch-size``, ``--lr`` (see
    :func:`archsearch.api.retrain.retrain`) and print each epoch and each result."""
    if not args.json:
        print(
            f"\nretraining on {data.name} ({len(data.train)} train / {len(data.test)} test), "
            f"{args.retrain_epochs} epochs each:"
        )

    def progress(name: str, r: EpochRecord) -> None:
        if not args.json:
            print(
                f"    {name} epoch {r.epoch}/{args.retrain_epochs}: loss {r.train_loss:.4f} "
                f"train {r.train_acc:6.2f}% val {r.val_acc:6.2f}%  {r.seconds:.1f}s",
                flush=True,
            )

    def done(m: Retrained) -> None:
        r = m.result
        test = float("nan") if r.test_acc is None else r.test_acc
        emit(
            args,
            m.to_json(),
            f"  {m.name:<8} test {test:6.2f}%  val {r.best_val_acc:6.2f}%  {r.params:>9,} params  "
            f"{r.seconds:6.1f}s  {m.arch}",
        )

    return retrain(
        data, space, genotype, build, epochs=args.retrain_epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, run_dir=run_dir, on_epoch=progress, on_model=done,
    )  # fmt: skip

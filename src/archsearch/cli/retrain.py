"""``--retrain``: train the search winner from scratch at full budget beside the hand-designed baseline."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch import api
from archsearch.api.retraining import Retrained, RetrainResult
from archsearch.cli.common import emit
from archsearch.run_summary import SearchResult
from archsearch.spaces import Space
from archsearch.trainer import EpochRecord


def retrain_winner(args: argparse.Namespace, result: SearchResult, given: set[str]) -> RetrainResult:
    """Train the search's winner and the baseline with the same budget on the full training split; print both."""
    named = "dataset" in given or (result.config or {}).get("evaluator") == "table"
    return retrain_beside_baseline(args, result, args.dataset if named else None, None, {}, run_dir=args.out)


def retrain_beside_baseline(
    args: argparse.Namespace,
    arch: Any,
    dataset: Any,
    space: str | Space[Any] | None,
    build: dict[str, Any],
    run_dir: str | None = None,
    **data_options: Any,
) -> RetrainResult:
    """Retrain ``genotype`` beside the baseline with ``--retrain-epochs``, ``--batch-size``, ``--lr``,
    ``--precision`` (see :func:`archsearch.api.retrain`) and print each epoch and each result."""
    if not args.json:
        print(f"\nretraining, {args.retrain_epochs} epochs each:")

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
            f"{r.seconds:6.1f}s  {r.precision}  ({m.train_examples:,} training examples)  {m.arch}",
        )

    if hasattr(args, "precision"):  # the commands with the training options (oneshot has not)
        data_options["precision"] = args.precision
    return api.retrain(
        arch, dataset, space, build, epochs=args.retrain_epochs, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, device=args.device, run_dir=run_dir, on_epoch=progress, on_model=done, data_dir=args.data_dir,
        **data_options,
    )  # fmt: skip

"""``--retrain``: train the search winner from scratch at full budget beside the hand-designed baseline."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch.cli.common import emit
from archsearch.data import Data, load_dataset
from archsearch.errors import ArchsearchError
from archsearch.experiment import SearchResult
from archsearch.nn.baseline import build_model
from archsearch.spaces import Space, get_space
from archsearch.store import Store
from archsearch.train import EpochRecord, TrainConfig, TrainResult, train


def retrain_winner(args: argparse.Namespace, config: dict[str, Any], result: SearchResult) -> dict[str, TrainResult]:
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
) -> dict[str, TrainResult]:
    """Train ``genotype`` (built with ``build`` options) and the hand-designed baseline with the same budget
    (``--retrain-epochs``, ``--batch-size``, ``--lr``) on ``data``'s training split; print both."""
    c, size, _ = data.input_shape
    cfg = TrainConfig(
        epochs=args.retrain_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=0.5,
        augment=data.default_augment(),
        evaluate_test=True,
        seed=args.seed,
        device=args.device,
    )
    models = {
        "winner": space.build(genotype, c, data.num_classes, size, seed=args.seed, **build),
        "baseline": build_model("baseline", c, data.num_classes, seed=args.seed),
    }
    outcomes: dict[str, TrainResult] = {}
    record: dict[str, Any] = {"dataset": data.name, "train_examples": len(data.train), "epochs": args.retrain_epochs}
    if not args.json:
        print(
            f"\nretraining on {data.name} ({len(data.train)} train / {len(data.test)} test), "
            f"{args.retrain_epochs} epochs each:"
        )
    for name, model in models.items():

        def progress(r: EpochRecord, name: str = name) -> None:
            if not args.json:
                print(
                    f"    {name} epoch {r.epoch}/{args.retrain_epochs}: loss {r.train_loss:.4f} "
                    f"train {r.train_acc:6.2f}% val {r.val_acc:6.2f}%  {r.seconds:.1f}s",
                    flush=True,
                )

        outcome = train(model, data, cfg, on_epoch=progress)
        outcomes[name] = outcome
        arch = str(genotype) if name == "winner" else "the hand-designed baseline CNN"
        record[name] = {
            "arch": arch,
            "test_acc": outcome.test_acc,
            "val_acc": outcome.best_val_acc,
            "params": outcome.params,
            "epochs": outcome.epochs,
            "seconds": round(outcome.seconds, 2),
            "history": [vars(h) for h in outcome.history],
        }
        test = float("nan") if outcome.test_acc is None else outcome.test_acc
        emit(
            args,
            {
                "retrain": name,
                "arch": arch,
                "test_acc": outcome.test_acc,
                "val_acc": outcome.best_val_acc,
                "params": outcome.params,
                "epochs": outcome.epochs,
                "train_examples": len(data.train),
                "seconds": round(outcome.seconds, 2),
            },
            f"  {name:<8} test {test:6.2f}%  val {outcome.best_val_acc:6.2f}%  {outcome.params:>9,} params  "
            f"{outcome.seconds:6.1f}s  {arch}",
        )
    if run_dir is not None:  # beside the search, for its report
        store = Store(run_dir)
        try:
            store.set_meta("retrain", record)
        finally:
            store.close()
    return outcomes

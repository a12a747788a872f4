"""Retraining from Python: the winner and the baseline at the same budget, recorded for the run's report."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from archsearch.api.retraining import BASELINE, retrain
from archsearch.data import load_dataset
from archsearch.spaces import get_space
from archsearch.store import Store


def test_retrain_trains_both_at_the_same_budget_and_records_them(tmp_path: Path) -> None:
    data = load_dataset("digits").with_train_subset(300, seed=0)
    space = get_space("nb201")
    genotype = space.parse("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    Store(tmp_path).close()
    epochs_seen: list[tuple[str, int]] = []
    result = retrain(genotype, data, space, {"channels": 4, "cells_per_stage": 1}, epochs=2, batch_size=64, seed=1,
                     run_dir=tmp_path, on_epoch=lambda name, r: epochs_seen.append((name, r.epoch)))  # fmt: skip
    assert set(result.models) == {"winner", "baseline"} and result.models["baseline"].arch == BASELINE
    assert epochs_seen == [("winner", 1), ("winner", 2), ("baseline", 1), ("baseline", 2)]
    for m in result.models.values():
        assert m.result.epochs == 2 and m.result.test_acc is not None and m.train_examples == 300
    db = sqlite3.connect(tmp_path / "experiment.sqlite")
    record = json.loads(db.execute("SELECT value FROM meta WHERE name = 'retrain'").fetchone()[0])
    db.close()
    assert record["winner"]["arch"] == str(genotype) and len(record["baseline"]["history"]) == 2

"""Options defined once (archsearch.options): a field declared on an option group is, with nothing else edited, a flag
of the command, a key of its TOML config and a keyword argument of the API, and its value reaches the code the group
configures (the trainer's TrainConfig, the search's SearchOptions, the one-shot method's OneShotConfig). Each test
declares a new field ``probe`` on a subclass of the group, registered in its place."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import archsearch
from archsearch import api, options
from archsearch.api import multitrial, oneshot_search, training
from archsearch.api.search_config import SearchOptions
from archsearch.cli import main
from archsearch.oneshot import OneShotConfig
from archsearch.trainer import TrainConfig

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


@dataclass
class TrainingWithProbe(TrainConfig):
    probe: int = options.option(7, "a training option declared by this test")


@dataclass(frozen=True)
class SearchWithProbe(SearchOptions):
    probe: int = options.option(7, "a search option declared by this test")


@dataclass
class OneShotWithProbe(OneShotConfig):
    probe: int = options.option(7, "a one-shot option declared by this test")


class Reached(Exception):
    """Raised by a spy once the configured code has its options (nothing needs to run)."""


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return str(path)


def test_a_new_training_field_is_a_flag_a_toml_key_and_a_keyword_that_reaches_the_trainer(monkeypatch, tmp_path,
                                                                                          capsys) -> None:  # fmt: skip
    monkeypatch.setitem(options.GROUPS, "training", TrainingWithProbe)
    seen: list[Any] = []

    def trainer(network: Any, data: Any, config: Any, **_: Any) -> Any:
        seen.append(config)
        raise KeyboardInterrupt  # the trainer has its config: stop before training

    monkeypatch.setattr(training, "run_training", trainer)
    assert main(["train", NB201, "--probe", "3", "--subset", "50"]) == 130
    assert main(["train", NB201, "--subset", "50", "--config", _toml(tmp_path, "probe = 4\n")]) == 130
    with pytest.raises(KeyboardInterrupt):
        archsearch.train(NB201, subset=50, probe=5)
    assert [(type(c), c.probe) for c in seen] == [(TrainingWithProbe, 3), (TrainingWithProbe, 4),
                                                  (TrainingWithProbe, 5)]  # fmt: skip
    assert "--probe PROBE" in _help(capsys, "train") and "--probe PROBE" in _help(capsys, "search")

    # a search's trials: the train evaluator's TrainConfig, from the flag and from the TOML config
    evaluators: list[Any] = []

    def spy(config: dict[str, Any], out: Any, *args: Any, **kwargs: Any) -> Any:
        experiment = real(config, out, *args, **kwargs)
        experiment.store.close()
        evaluators.append(experiment.evaluator.config)
        raise KeyboardInterrupt

    real = multitrial.build_experiment
    monkeypatch.setattr(multitrial, "build_experiment", spy)
    assert main(["search", "--out", str(tmp_path / "a"), "--probe", "8", "--subset", "50"]) == 130
    assert main(["search", "--out", str(tmp_path / "b"), "--config", _toml(tmp_path, "probe = 9\n")]) == 130
    assert [c.probe for c in evaluators] == [8, 9]


def test_a_new_search_field_is_a_flag_a_toml_key_and_a_keyword_that_reaches_the_search(monkeypatch, tmp_path,
                                                                                      capsys) -> None:  # fmt: skip
    monkeypatch.setitem(options.GROUPS, "search", SearchWithProbe)
    seen: list[Any] = []
    real = multitrial.option_groups

    def spy(given: dict[str, Any], where: str) -> Any:
        run, _latency = real(given, where)
        seen.append(run)
        raise Reached

    monkeypatch.setattr(multitrial, "option_groups", spy)
    monkeypatch.setattr(multitrial, "build_experiment", lambda *a, **k: pytest.fail("the search went on"))
    with pytest.raises(Reached):
        main(["search", "--out", str(tmp_path / "a"), "--probe", "3"])
    with pytest.raises(Reached):
        main(["search", "--out", str(tmp_path / "b"), "--config", _toml(tmp_path, "probe = 4\n")])
    with pytest.raises(Reached):
        archsearch.search(out=tmp_path / "c", probe=5)
    assert [(type(r), r.probe) for r in seen] == [(SearchWithProbe, 3), (SearchWithProbe, 4), (SearchWithProbe, 5)]
    assert "--probe PROBE" in _help(capsys, "search")


def test_a_new_oneshot_field_is_a_flag_a_toml_key_and_a_keyword_that_reaches_the_method(monkeypatch, tmp_path,
                                                                                       capsys) -> None:  # fmt: skip
    monkeypatch.setitem(options.GROUPS, "oneshot", OneShotWithProbe)
    seen: list[Any] = []

    def run_oneshot(method: str, space: Any, data: Any, run_dir: Any, config: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(config)
        raise KeyboardInterrupt

    monkeypatch.setattr(oneshot_search, "run_oneshot", run_oneshot)
    common = ["oneshot", "--space", "nb201", "--subset", "50"]
    assert main([*common, "--out", str(tmp_path / "a"), "--probe", "3"]) == 130
    assert main([*common, "--out", str(tmp_path / "b"), "--config", _toml(tmp_path, "probe = 4\n")]) == 130
    with pytest.raises(KeyboardInterrupt):
        archsearch.oneshot("darts", "nb201", "digits", tmp_path / "c", subset=50, probe=5)
    assert [(type(c), c.probe) for c in seen] == [(OneShotWithProbe, 3), (OneShotWithProbe, 4),
                                                  (OneShotWithProbe, 5)]  # fmt: skip
    assert "--probe PROBE" in _help(capsys, "oneshot")


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def test_an_unknown_keyword_names_the_options_of_its_group() -> None:
    with pytest.raises(archsearch.ArchsearchError, match=r"train\(\): unknown option\(s\) lr_warmup .*allowed: .*"
                       r"lr_warmup_epochs"):  # fmt: skip
        archsearch.train(NB201, lr_warmup=1)
    with pytest.raises(archsearch.ArchsearchError, match=r"oneshot\(\): warmup_epochs is now weights_only_epochs"):
        archsearch.oneshot("darts", "nb201", "digits", "unused", config=OneShotConfig(), warmup_epochs=1)
    with pytest.raises(archsearch.ArchsearchError, match=r"train\(\): warmup is now lr_warmup_epochs"):
        archsearch.train(NB201, warmup=1)
    with pytest.raises(archsearch.ArchsearchError, match=r"unknown option\(s\) workerz .*allowed: .*workers"):
        api.make_config(workerz=2)


def test_a_flag_from_before_a_rename_still_acts_and_says_its_new_name(capsys) -> None:
    from archsearch.cli import build_parser

    args = build_parser().parse_args(["train", NB201, "--warmup", "0.5"])
    assert args.lr_warmup_epochs == 0.5 and "--warmup is now --lr-warmup-epochs" in capsys.readouterr().err
    args = build_parser().parse_args(["oneshot", "--out", "x", "--warmup-epochs", "2"])
    assert args.weights_only_epochs == 2 and "--warmup-epochs is now --weights-only-epochs" in capsys.readouterr().err


def test_options_recorded_under_old_names_are_read_under_the_new_ones() -> None:
    assert options.migrate({"warmup": 1.5, "no_augment": True, "lr": 0.1}, "training") == {
        "lr_warmup_epochs": 1.5, "augment": False, "lr": 0.1,
    }  # fmt: skip
    assert options.migrate({"warmup_epochs": 2}, "oneshot") == {"weights_only_epochs": 2}
    assert options.migrate({"warmup_epochs": 2, "weights_only_epochs": 3}, "oneshot") == {"weights_only_epochs": 3}


def test_a_field_generates_its_flag_from_its_type_and_default() -> None:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, TrainConfig, defaults={"epochs": 4})
    args = parser.parse_args(["--no-augment", "--patience", "2", "--max-seconds", "1.5"])
    assert (args.augment, args.patience, args.max_seconds, args.epochs, args.compile) == (False, 2, 1.5, 4, False)
    for bad in (["--epochs", "0"], ["--lr", "nan"], ["--optimizer", "rmsprop"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert "momentum" not in vars(parser.parse_args([]))  # internal fields are the API's only
    assert options.flag_of("augment") == "--no-augment"


def test_nb201_depth_is_cells_per_stage_and_cells_on_it_is_refused_naming_it(tmp_path, capsys) -> None:
    assert main(["cost", NB201, "--cells", "1", "--no-latency"]) == 2
    assert "nb201's 'cells' is now 'cells_per_stage'" in capsys.readouterr().err
    assert main(["search", "--space", "nb201", "--cells", "1", "--out", str(tmp_path / "s")]) == 2
    assert "nb201's 'cells' is now 'cells_per_stage'" in capsys.readouterr().err
    assert main(["oneshot", "--space", "nb201", "--cells", "1", "--out", str(tmp_path / "o")]) == 2
    assert "the nb201 supernet's depth is cells_per_stage" in capsys.readouterr().err
    assert main(["cost", NB201, "--cells-per-stage", "1", "--no-latency", "--json"]) == 0


def test_a_checkpoint_saved_with_the_old_name_builds_the_same_network() -> None:
    from archsearch.checkpoints import build_from_spec

    genotype = archsearch.get_space("nb201").parse(NB201).to_json()
    spec = {"genotype": genotype, "in_channels": 1, "num_classes": 10, "input_size": 8}
    old = build_from_spec({**spec, "build": {"channels": 4, "cells": 2}})
    new = build_from_spec({**spec, "build": {"channels": 4, "cells_per_stage": 2}})
    assert [tuple(p.shape) for p in old.parameters()] == [tuple(p.shape) for p in new.parameters()]
    assert sum(p.numel() for p in old.parameters()) > sum(
        p.numel() for p in build_from_spec({**spec, "build": {"channels": 4, "cells_per_stage": 1}}).parameters()
    )


def _rewrite_meta(run: Path, name: str, change: Any) -> None:
    """Rewrite the run's recorded ``name`` as a run from before the renames recorded it."""
    import json
    import sqlite3

    db = sqlite3.connect(run / "experiment.sqlite")
    (value,) = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    db.execute("UPDATE meta SET value = ? WHERE name = ?", (json.dumps(change(json.loads(value))), name))
    db.commit()
    db.close()


def _renamed(d: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(k, k): v for k, v in d.items()}


def test_a_search_recorded_under_the_old_names_resumes(tmp_path) -> None:
    run = tmp_path / "run"
    argv = ["search", "--space", "nb201", "--strategy", "random", "--trials", "1", "--epochs", "1", "--subset", "100",
            "--channels", "4", "--cells-per-stage", "1", "--lr-warmup-epochs", "0.5", "--no-augment", "--out", str(run)]
    assert main(argv) == 0

    def old(config: dict[str, Any]) -> dict[str, Any]:
        ev = _renamed(config["evaluator_options"], {"lr_warmup_epochs": "warmup_epochs"})
        ev["build"] = _renamed(ev["build"], {"cells_per_stage": "cells"})
        cli = _renamed(config["cli_options"], {"lr_warmup_epochs": "warmup", "cells_per_stage": "cells"})
        cli["no_augment"] = not cli.pop("augment")
        return {**config, "evaluator_options": ev, "cli_options": cli}

    _rewrite_meta(run, "config", old)
    assert main(["search", "--resume", "--out", str(run), "--trials", "2"]) == 0
    result = archsearch.show(run).result
    assert result is not None and (result.trials, result.failed) == (2, 0)  # the old names, read as new ones


def test_a_oneshot_run_recorded_under_the_old_names_resumes(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["oneshot", "--method", "darts", "--space", "nb201", "--epochs", "1", "--subset", "64", "--batch-size", "16",
            "--channels", "4", "--cells-per-stage", "1", "--weights-only-epochs", "1", "--out", str(run)]
    assert main(argv) == 0

    def old(info: dict[str, Any]) -> dict[str, Any]:
        return {**info, "config": _renamed(info["config"], {"weights_only_epochs": "warmup_epochs"}),
                "supernet": _renamed(info["supernet"], {"cells_per_stage": "cells"}),
                "cli_options": _renamed(info["cli_options"], {"weights_only_epochs": "warmup_epochs",
                                                              "cells_per_stage": "cells"})}  # fmt: skip

    _rewrite_meta(run, "oneshot", old)
    capsys.readouterr()
    assert main(["oneshot", "--resume", "--out", str(run), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2:" in out and "epoch 1:" not in out  # the run's first epoch kept, its second run


def test_a_switch_in_a_config_file_is_the_option_s_value_under_its_old_name_too(monkeypatch, tmp_path) -> None:
    seen: list[Any] = []

    def trainer(network: Any, data: Any, config: Any, **_: Any) -> Any:
        seen.append(config.augment)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "run_training", trainer)
    for n, text in enumerate(["augment = false\n", "no_augment = true\n", "augment = true\n", ""]):
        config = tmp_path / f"c{n}.toml"
        config.write_text(text)
        assert main(["train", NB201, "--subset", "50", "--config", str(config)]) == 130
    assert seen == [False, False, True, True]

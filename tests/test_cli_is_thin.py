"""Every command is a thin shell over the Python API: it parses its options, calls its function in
:mod:`archsearch.api` with them, and prints the result that function returns (``--json``: exactly the result's
``to_json()``). Each test replaces the function with a recorder that returns a made-up result, so a command that did
work of its own (training, reading a store, scoring) would fail here. A second set of tests keeps the command-line
options and the functions' parameters one definition: every option is a parameter of the function it reaches, with
the same default."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from archsearch import api, options
from archsearch.cli import build_parser, main
from archsearch.comparison.strategies import StrategyScore
from archsearch.oneshot.search import OneShotResult
from archsearch.run_summary import SearchResult
from archsearch.spaces import get_space
from archsearch.trial import COMPLETE, Trial

NB201 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"


class Recorder:
    """Stands in for an API function: records its arguments and returns ``result`` (calling the progress callback
    the command passes, as the real function would)."""

    def __init__(self, result: Any, callback: str | None = None, item: Any = None) -> None:
        self.result, self.callback, self.item = result, callback, item
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args, self.kwargs = args, kwargs
        if self.callback and kwargs.get(self.callback) is not None:
            for item in self.item:
                kwargs[self.callback](item)
        return self.result


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, recorder: Recorder,
         argv: list[str]) -> list[Any]:  # fmt: skip
    monkeypatch.setattr(api, name, recorder)
    assert main([*argv, "--json"]) == 0
    assert recorder.calls == 1, f"{argv[0]} did not call archsearch.api.{name} exactly once"
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def _trial(number: int, acc: float) -> Trial:
    g = get_space("nb201").parse(NB201)
    return Trial(number, g, g.key, COMPLETE, {"val_acc": acc}, acc)


def test_spaces(monkeypatch, capsys) -> None:
    infos = [api.SpaceInfo("made_up", 3, ["a", "b"], "a space that does not exist")]
    assert _run(monkeypatch, capsys, "spaces", Recorder(infos), ["spaces"]) == [infos[0].to_json()]


def test_sample(monkeypatch, capsys) -> None:
    g = get_space("nb201").parse(NB201)
    rec = Recorder([g, g])
    assert _run(monkeypatch, capsys, "sample", rec, ["sample", "--space", "nb201", "--n", "2", "--seed", "9"]) == [
        g.to_json(), g.to_json(),
    ]  # fmt: skip
    assert rec.args == ("nb201",) and rec.kwargs == {"n": 2, "seed": 9}


def test_cost(monkeypatch, capsys) -> None:
    record = api.CostRecord("made up", "nb201", "k", [1, 28, 28], 123, 456, 7.5)
    rec = Recorder([record], "on_record", [record])
    out = _run(monkeypatch, capsys, "cost", rec, ["cost", NB201, "--input-shape", "1,28,28", "--channels", "8",
                                                   "--no-latency", "--runs", "3", "--classes", "4"])  # fmt: skip
    assert out == [record.to_json()]
    assert [str(g) for g in rec.args[0]] == [NB201]
    kw = rec.kwargs
    assert kw["input_shape"] == (1, 28, 28) and kw["classes"] == 4 and kw["latency"] is False and kw["runs"] == 3
    assert kw["build"]["channels"] == 8 and kw["space"] is None


def test_train(monkeypatch, capsys) -> None:
    record = api.TrainRecord("made up", "digits", 50.0, 49.0, 10, 2, 1.0, "complete", "", 3, [])
    rec = Recorder(record)
    argv = ["train", NB201, "--epochs", "2", "--seed", "3", "--optimizer", "adamw", "--no-augment",
            "--cells-per-stage", "1",
            "--subset", "100"]  # fmt: skip
    out = _run(monkeypatch, capsys, "train", rec, argv)
    assert out == [record.to_json()]
    kw, config = rec.kwargs, rec.kwargs["config"]
    assert str(rec.args[0]) == NB201 and config.epochs == 2 and config.seed == 3 and config.optimizer == "adamw"
    assert config.augment is False and kw["build"] == {"cells_per_stage": 1} and kw["subset"] == 100
    assert kw["model"] is None


def _search_result(config: dict[str, Any]) -> SearchResult:
    return SearchResult([_trial(0, 90.0), _trial(1, 80.0)], [], 2, 0, 0, 0, 1.5, "trials", config=config)


def test_search(monkeypatch, capsys, tmp_path: Path) -> None:
    config = api.make_config(trials=2)
    result = _search_result(config)
    rec = Recorder(result)
    argv = ["search", "--out", str(tmp_path / "r"), "--trials", "2", "--strategy", "random", "--epochs", "3",
            "--constraint", "params<=1M", "--top", "1", "--latency-table", "t.json", "--latency-target", "eager",
            "--latency-threads", "2"]  # fmt: skip
    assert _run(monkeypatch, capsys, "search", rec, argv) == result.to_json(top=1)
    kw = rec.kwargs
    assert (kw["budget"], kw["strategy"], kw["out"], kw["constraints"]) == (2, "random", str(tmp_path / "r"),
                                                                           ["params<=1M"])  # fmt: skip
    assert (kw["latency_table"], kw["latency_target"], kw["latency_threads"]) == ("t.json", "eager", 2)
    assert kw["evaluator_options"]["epochs"] == 3 and kw["record"]["strategy"] == "random"


def test_search_with_retrain_calls_retrain_with_the_search_result(monkeypatch, capsys, tmp_path: Path) -> None:
    result = _search_result(api.make_config(trials=2))
    monkeypatch.setattr(api, "search", Recorder(result))
    retrained = Recorder(api.RetrainResult("digits", 4))
    argv = ["search", "--out", str(tmp_path / "r"), "--retrain", "--retrain-epochs", "4", "--lr", "0.1",
            "--precision", "float32"]  # fmt: skip
    out = _run(monkeypatch, capsys, "retrain", retrained, argv)
    assert out == result.to_json()
    assert retrained.args[0] is result and retrained.kwargs["epochs"] == 4 and retrained.kwargs["lr"] == 0.1
    assert retrained.kwargs["precision"] == "float32"


def test_search_with_export_calls_export_with_the_run(monkeypatch, capsys, tmp_path: Path) -> None:
    from archsearch.export.formats import Exported

    result = _search_result(api.make_config(trials=2))
    monkeypatch.setattr(api, "search", Recorder(result))
    exported = Exported("pt2", [str(tmp_path / "e" / "model.pt2")], 0.0, "torch.export.load", 3)
    rec = Recorder(exported)
    argv = ["search", "--out", str(tmp_path / "r"), "--export", "pt2", "--export-dir", str(tmp_path / "e")]
    out = _run(monkeypatch, capsys, "export", rec, argv)
    assert out == [*result.to_json(), {"export": exported.to_json()}]
    assert rec.args == (str(tmp_path / "r"), "pt2", str(tmp_path / "e"))
    assert main(["search", "--out", str(tmp_path / "x"), "--export-dir", str(tmp_path / "e")]) == 2
    assert "it needs --export FORMAT" in capsys.readouterr().err


def test_show(monkeypatch, capsys, tmp_path: Path) -> None:
    config = api.make_config()
    view = api.RunView(tmp_path, False, config, None, _search_result(config))
    from archsearch.objectives import Objective

    view.objective = Objective()
    rec = Recorder(view)
    assert _run(monkeypatch, capsys, "show", rec, ["show", str(tmp_path), "--top", "1"]) == view.result.to_json(1)
    assert rec.args == (str(tmp_path),)


def test_benchmark(monkeypatch, capsys) -> None:
    score = StrategyScore("random", [90.0, 91.0], 0.5, 1.0)
    rec = Recorder(api.BenchmarkResult(10, 2, [score]), "on_score", [score])
    argv = ["benchmark", "--table", "t.csv", "--strategies", "random", "--queries", "10", "--seeds", "2"]
    out = _run(monkeypatch, capsys, "benchmark", rec, argv)
    assert out == [score.to_json()]
    assert rec.args == (["t.csv"], "random") and rec.kwargs["queries"] == 10 and rec.kwargs["seeds"] == 2


def test_oneshot(monkeypatch, capsys, tmp_path: Path) -> None:
    g = get_space("nb201").parse(NB201)
    result = OneShotResult("gdas", g, [], "finished", tmp_path)
    rec = Recorder(result)
    out = _run(monkeypatch, capsys, "oneshot", rec, ["oneshot", "--method", "gdas", "--space", "nb201", "--epochs",
                                                      "3", "--out", str(tmp_path), "--subset", "200"])  # fmt: skip
    assert out == [result.to_json()]
    method, space, dataset, run_dir, config, supernet = rec.args
    assert (method, space, dataset, run_dir, config.epochs) == ("gdas", "nb201", "digits", tmp_path, 3)
    assert rec.kwargs["subset"] == 200 and supernet["channels"] == 16


def test_score(monkeypatch, capsys) -> None:
    result = api.ScoreResult(["synflow"], [{"arch": NB201, "synflow": 1.5}], [0])
    rec = Recorder(result)
    out = _run(monkeypatch, capsys, "score", rec, ["score", "--space", "nb201", "--n", "7", "--proxy", "synflow"])
    assert out == result.to_json()
    assert rec.args == ([],) and rec.kwargs["n"] == 7 and rec.kwargs["space"] == "nb201"


def test_report(monkeypatch, capsys, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    report = api.ReportFile(page, page.stat().st_size, 0.1)
    rec = Recorder(report)
    assert _run(monkeypatch, capsys, "report", rec, ["report", str(tmp_path), "--out", str(page)]) == [report.to_json()]
    assert rec.args == (str(tmp_path), str(page), None)


def test_draw(monkeypatch, capsys, tmp_path: Path) -> None:
    drawing = api.Drawing(NB201, [str(tmp_path / "c.svg")])
    rec = Recorder(drawing)
    assert _run(monkeypatch, capsys, "draw", rec, ["draw", NB201, "--out", str(tmp_path / "c.svg")]) == [
        drawing.to_json()
    ]
    assert str(rec.args[0]) == NB201 and rec.args[1] == str(tmp_path / "c.svg")


def test_export(monkeypatch, capsys, tmp_path: Path) -> None:
    from archsearch.export.formats import Exported

    exported = Exported("onnx", [str(tmp_path / "model.onnx")], 1e-7, "onnxruntime", 3, 17)
    rec = Recorder(exported)
    argv = ["export", "DARTS_V2", "--format", "onnx", "--out", str(tmp_path), "--input-shape", "1,28,28",
            "--num-classes", "5", "--channels", "8"]  # fmt: skip
    assert _run(monkeypatch, capsys, "export", rec, argv) == [exported.to_json()]
    assert rec.args[1:] == ("onnx", str(tmp_path)) and rec.kwargs["input_shape"] == (1, 28, 28)
    assert rec.kwargs["num_classes"] == 5 and rec.kwargs["build"]["channels"] == 8


def test_latency(monkeypatch, capsys) -> None:
    record = api.LatencyRecord("made up", "macro", "onnxruntime", [1, 8, 8], 4, 2, 1.0, 0.9, 1.1, 0.8, 1.2, 7, 0.95)
    rec = Recorder([record], "on_record", [record])
    argv = ["latency", "01201201", "--target", "onnxruntime", "--batch-size", "4", "--threads", "2", "--repeats", "7",
            "--warmup", "0", "--input-shape", "1,8,8", "--width", "0.5", "--latency-table", "t.json"]  # fmt: skip
    assert _run(monkeypatch, capsys, "latency", rec, argv) == [record.to_json()]
    assert str(rec.args[0]) == "01201201" and rec.args[1] == "onnxruntime"
    kw = rec.kwargs
    assert (kw["batch_size"], kw["threads"], kw["repeats"], kw["warmup"]) == (4, 2, 7, 0)
    assert kw["input_shape"] == (1, 8, 8) and kw["build"]["width"] == 0.5 and kw["latency_table"] == "t.json"


def test_latency_table(monkeypatch, capsys, tmp_path: Path) -> None:
    written = api.TableWritten(str(tmp_path / "t.json"), "mobile", "eager", 1, 1, [1, 28, 28], 99, 0.01, 1.05, 3, 2.0)
    rec = Recorder(written)
    argv = ["latency-table", "--space", "mobile", "--target", "eager", "--out", str(tmp_path / "t.json"),
            "--input-shape", "1,28,28", "--num-classes", "10", "--width", "0.25", "--head", "64", "--calibrate", "3",
            "--repeats", "5", "--profile", "4"]  # fmt: skip
    assert _run(monkeypatch, capsys, "latency_table", rec, argv) == [written.to_json()]
    assert rec.kwargs["profile"] == 4
    assert rec.args == ("mobile", str(tmp_path / "t.json"))
    kw = rec.kwargs
    assert kw["target"] == "eager" and kw["input_shape"] == (1, 28, 28) and kw["num_classes"] == 10
    assert kw["build"]["width"] == 0.25 and kw["build"]["head"] == 64 and kw["calibrate"] == 3 and kw["repeats"] == 5


def test_latency_model(monkeypatch, capsys, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    written = api.LatencyModelWritten(out, "nb201", 10, [{"features": "ops", "loo_rmse_ms": 0.5, "weight": 1.0}], [])
    rec = Recorder(written)
    argv = ["latency-model", "fit", "--space", "nb201", "--measured", "phone.csv", "--out", str(out),
            "--reference", "ref.csv", "--reference-columns", "a,b", "--force"]  # fmt: skip
    assert _run(monkeypatch, capsys, "fit_latency_model", rec, argv) == [written.to_json()]
    assert rec.args == ("nb201", "phone.csv", str(out))
    assert rec.kwargs == {"reference": "ref.csv", "reference_columns": ["a", "b"], "force": True}


def test_every_command_is_covered_here() -> None:
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    tested = {name.removeprefix("test_").replace("_", "-") for name in globals() if name.startswith("test_")}
    tested |= {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert commands <= tested, f"commands without a thin-shell test: {sorted(commands - tested)}"


# --- one definition of each option ------------------------------------------------------------------------------
#: per command: its API function, the options named otherwise there, and the options that only steer the output
#: or the command line itself (never an argument of the function)
DEPTH = {"channels": "build", "cells": "build", "cells_per_stage": "build", "width": "build"}
SIGNATURES: dict[str, tuple[Any, dict[str, str], set[str]]] = {
    "cost": (api.cost, {"arch": "archs", "no_latency": "latency", **DEPTH, "auxiliary": "build"}, set()),
    "train": (api.train, {**DEPTH, "auxiliary": "build"}, set()),
    "score": (api.score, {"arch": "archs", **DEPTH}, set()),
    "benchmark": (api.benchmark, {"constraint": "constraints", "strategy_option": "strategy_options"}, set()),
    "report": (api.report, {"run": "run_dir"}, {"watch", "every"}),
    "sample": (api.sample, {}, {"text"}),
    "show": (api.show, {"run": "run_dir"}, {"top"}),
    "draw": (api.draw, {}, set()),
    "latency": (api.latency, {"target": "targets", **DEPTH, "head": "build", "auxiliary": "build"}, set()),
    "latency-table": (api.latency_table, {**DEPTH, "head": "build", "auxiliary": "build"}, {"verbose"}),
}  # fmt: skip


def _actions(command: str) -> dict[str, Any]:
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    return {a.dest: a for a in sub._actions if a.dest not in ("help", "json") and a.help != argparse.SUPPRESS}


@pytest.mark.parametrize("command", sorted(SIGNATURES))
def test_each_option_is_a_parameter_of_the_function_with_the_same_default(command: str) -> None:
    func, renamed, cli_only = SIGNATURES[command]
    params = inspect.signature(func).parameters
    group = {"train": "training"}.get(command)  # the function takes this option group's fields as keywords
    fields = {f.name: f.default for f in options.fields(options.group(group))} if group else {}
    for dest, action in _actions(command).items():
        if dest in cli_only:
            continue
        name = renamed.get(dest, dest)
        if name in fields and name not in params:
            assert action.default == fields[name], f"{command} --{dest}: default differs from the option group's"
            continue
        assert name in params, f"{command} --{dest}: no parameter {name!r} of archsearch.api.{func.__name__}"
        if name == dest and action.default is not None and params[name].default is not inspect.Parameter.empty:
            default = params[name].default
            assert action.default == default or tuple(action.default) == tuple(default), (
                f"{command} --{dest}: default {action.default!r} on the command line, {default!r} in the API"
            )


def _parameters(*definitions: Any) -> set[str]:
    import dataclasses

    names: set[str] = set()
    for d in definitions:
        if dataclasses.is_dataclass(d):
            names |= {f.name for f in dataclasses.fields(d)}
        else:
            names |= set(inspect.signature(d).parameters)
    return names


def test_every_search_option_reaches_a_parameter_of_the_api() -> None:
    from archsearch.evaluators import TrainEvaluator
    from archsearch.trainer import TrainConfig

    renamed = {"trials": "budget", "time": "seconds", "constraint": "constraints", "strategy_option":
               "strategy_options", "evaluator_option": "evaluator_options", "fidelity": "multifidelity",
               "min_epochs": "multifidelity", "eta": "multifidelity", "retrain_epochs": "epochs",
               "export": "format", "export_dir": "out",
               "channels": "build", "cells": "build", "cells_per_stage": "build"}  # fmt: skip
    cli_only = {"top", "progress", "config", "retrain"}
    search_params = _parameters(api.search, api.make_config, api.SearchOptions, api.LatencyOptions)
    evaluator_params = _parameters(TrainEvaluator.__init__, TrainConfig) | {"proxy"}
    retrain_params = _parameters(api.retrain) | _parameters(api.export)
    for dest in _actions("search"):
        if dest in cli_only:
            continue
        name = renamed.get(dest, dest)
        assert name in search_params | evaluator_params | retrain_params, f"search --{dest} reaches no parameter"


def test_every_oneshot_option_reaches_a_parameter_of_the_api() -> None:
    from archsearch.oneshot import OneShotConfig, build_supernet

    renamed = {"out": "run_dir", "spos_trials": "subnetwork_trials", "retrain_epochs": "epochs",
               "retrain_channels": "build", "retrain_cells": "build", "retrain_cells_per_stage": "build",
               "retrain_subset": "subset", "cells": "build_options", "cells_per_stage": "build_options",
               "no_collapse_control": "skip_penalty"}  # fmt: skip
    from archsearch.oneshot.block_supernets import MobileSupernet
    from archsearch.trainer import TrainConfig

    # build_supernet passes a block supernet's options (--width, --head) on to its class
    known = _parameters(api.oneshot, OneShotConfig, build_supernet, MobileSupernet.__init__, api.retrain, TrainConfig)
    for dest in _actions("oneshot"):
        if dest == "retrain":
            continue
        assert renamed.get(dest, dest) in known, f"oneshot --{dest} reaches no parameter"
    config = {a.dest: a.default for a in _actions("oneshot").values()}
    from archsearch.cli.options import default_of

    for field in ("epochs", "batch_size", "w_lr", "alpha_lr", "weights_only_epochs", "seed"):
        assert config[field] == default_of(OneShotConfig, field), f"oneshot --{field}: default differs from the API"

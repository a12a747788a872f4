"""``archsearch oneshot`` end to end on digits, and the plots of a search."""

from __future__ import annotations

import json
import re
from pathlib import Path

from archsearch.cli import main
from archsearch.reporting.plots import genotype_cells, plot_alpha_evolution, plot_op_frequency, threshold_epochs
from archsearch.spaces import NB201Genotype

PNG = b"\x89PNG\r\n\x1a\n"


def test_oneshot_cli_writes_plots_records_the_genotype_and_resumes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    base = ["oneshot", "--method", "gdas", "--space", "nb201", "--dataset", "digits", "--subset", "192"]
    base += ["--channels", "4", "--batch-size", "32", "--out", str(out), "--json"]
    assert main([*base, "--epochs", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in lines[:-1]] == [1, 2]
    final = lines[-1]
    genotype = NB201Genotype.from_string(final["genotype"])
    assert final["epochs"] == 2 and final["stopped"] == "finished"
    for plot in final["plots"]:
        data = Path(plot).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000
    assert set(final["threshold_epochs"]) == {"cell"}
    # the derived genotype is in the run's store
    from archsearch.rundir import describe

    assert describe(out)[1]["oneshot_result"]["genotype"]["arch"] == genotype.arch_str
    # a second run into the same directory needs --resume; with it, the search goes on from epoch 2
    assert main([*base, "--epochs", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*base, "--epochs", "3", "--resume"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in lines[:-1]] == [3] and lines[-1]["epochs"] == 3


def test_oneshot_retrain_trains_the_winner_beside_the_baseline_at_equal_budget(tmp_path, capsys) -> None:
    args = ["oneshot", "--method", "darts", "--space", "nb201", "--dataset", "digits", "--subset", "128"]
    args += ["--channels", "4", "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "run"), "--json"]
    args += ["--retrain", "--retrain-epochs", "2", "--retrain-subset", "300", "--retrain-channels", "4"]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    search = next(r for r in lines if "genotype" in r and "retrain" not in r)
    runs = {r["retrain"]: r for r in lines if "retrain" in r}
    assert set(runs) == {"winner", "baseline"}
    assert runs["winner"]["arch"] == search["genotype"]
    for run in runs.values():  # same budget: epochs and examples
        assert run["epochs"] == 2 and run["train_examples"] == 300
        assert 0.0 <= run["test_acc"] <= 100.0
    assert runs["winner"]["params"] != runs["baseline"]["params"]


def test_oneshot_retrain_prints_each_epoch_of_both_runs(tmp_path, capsys) -> None:
    args = ["oneshot", "--method", "darts", "--space", "nb201", "--dataset", "digits", "--subset", "64"]
    args += ["--channels", "4", "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "run")]
    args += ["--retrain", "--retrain-epochs", "2", "--retrain-subset", "100", "--retrain-channels", "4"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for name in ("winner", "baseline"):
        assert f"{name} epoch 1/2:" in out and f"{name} epoch 2/2:" in out
        assert re.search(rf"^  {name} +test +\d+\.\d+%", out, re.MULTILINE)


def test_alpha_plots_and_threshold_epochs(tmp_path) -> None:
    history = [
        {"epoch": 1, "probabilities": {"cell": [[0.5, 0.5], [0.3, 0.7]]}},
        {"epoch": 2, "probabilities": {"cell": [[0.65, 0.35], [0.2, 0.8]]}},
    ]
    assert threshold_epochs(history, "cell") == {0: 2, 1: 1}
    path = plot_alpha_evolution(history, ["a", "b"], tmp_path / "alphas.png", "cell", edges=[1])
    assert path.read_bytes().startswith(PNG)
    genotype = NB201Genotype(("nor_conv_3x3",) * 5 + ("skip_connect",))
    path = plot_op_frequency(genotype_cells(genotype), ["skip_connect", "nor_conv_3x3"], tmp_path / "ops.png")
    assert path.stat().st_size > 2000

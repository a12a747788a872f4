"""Export round trips: every format for every built-in space, each checked against PyTorch by the export itself on a
batch of another size than the one traced; the standalone model.py in a fresh interpreter with archsearch hidden;
a run directory's winner with its retrained weights; and the errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import archsearch
from archsearch import ArchsearchError
from archsearch.export.formats import FORMATS, TOLERANCE

TINY = {
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "darts": {"channels": 4, "cells": 3},
    "chain": {"width": 0.125},
    "macro": {"width": 0.125},
    "mobile": {"width": 0.125, "head": 32},
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("space", sorted(TINY))
def test_every_format_round_trips_for_every_space(space: str, fmt: str, tmp_path: Path) -> None:
    genotype = archsearch.get_space(space).sample(np.random.default_rng(4))
    exported = archsearch.export(genotype, fmt, tmp_path, input_shape=(1, 28, 28), num_classes=7, build=TINY[space])
    assert exported.max_abs_diff <= TOLERANCE and exported.batch_checked == 3  # tiny networks: small logits
    assert all(Path(f).is_file() for f in exported.files)
    if fmt == "onnx":
        assert exported.opset in (17, 18) and "onnxruntime" in exported.checked_with


def test_the_standalone_model_needs_nothing_but_torch(tmp_path: Path) -> None:
    genotype = archsearch.get_space("darts").sample(np.random.default_rng(1))
    archsearch.export(genotype, "python", tmp_path, input_shape=(3, 16, 16), build={"channels": 4, "cells": 3})
    source = (tmp_path / "model.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports and not [line for line in imports if "archsearch" in line]
    code = (
        "import sys; sys.modules['archsearch'] = None; sys.path.insert(0, sys.argv[1]); import torch, model; "
        "net = model.load(sys.argv[1] + '/weights.pt'); print(tuple(net(torch.randn(5, 3, 16, 16)).shape))"
    )
    run = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "(5, 10)"


def test_a_run_exports_its_retrained_winner(tmp_path: Path) -> None:
    run = tmp_path / "run"
    build = {"channels": 4, "cells_per_stage": 1}
    result = archsearch.search(space="nb201", strategy="random", budget=2, out=run,
                               evaluator_options={"epochs": 1, "build": build})  # fmt: skip
    plain = archsearch.export(run, "python", tmp_path / "plain")  # the winner as searched: digits' shape
    assert "(1, 8, 8)" in (tmp_path / "plain" / "model.py").read_text() and plain.max_abs_diff == 0.0
    archsearch.retrain(result, epochs=1, run_dir=run)
    archsearch.export(run, "python", tmp_path / "py")
    saved = torch.load(run / "retrained_winner.pt", weights_only=True)
    exported = torch.load(tmp_path / "py" / "weights.pt", weights_only=True)
    assert saved.keys() == exported.keys() and all(torch.equal(saved[k], exported[k]) for k in saved)
    onnx = archsearch.export(run, "onnx", tmp_path / "onnx")
    assert onnx.max_abs_diff <= TOLERANCE


def test_export_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ArchsearchError, match="unknown export format 'tflite'"):
        archsearch.export("DARTS_V2", "tflite", tmp_path / "a")
    model_pt = tmp_path / "other.pt"
    torch.save({"w": torch.zeros(1)}, model_pt)
    with pytest.raises(ArchsearchError, match=r"other\.pt: not weights of this network"):
        archsearch.export("DARTS_V2", "pt2", tmp_path / "b", weights=model_pt, build={"channels": 4, "cells": 3})
    assert not (tmp_path / "b" / "model.pt2").exists()
    empty = tmp_path / "empty"
    archsearch.search(space="nb201", strategy="random", budget=1, out=empty, constraints=["params<=1"],
                      evaluator_options={"epochs": 1, "build": {"channels": 4, "cells_per_stage": 1}})  # fmt: skip
    with pytest.raises(ArchsearchError, match="no finished trial; nothing to export"):
        archsearch.export(empty, "onnx", tmp_path / "c")
    with pytest.raises(ArchsearchError, match="build option 'width' does not apply to space 'nb201'"):
        archsearch.export(
            "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|", "onnx", tmp_path, build={"width": 2}
        )


def test_a_space_of_your_own_exports_to_every_format_but_model_py(tmp_path: Path) -> None:
    import runpy

    runpy.run_path(str(Path(__file__).parent.parent / "examples" / "own_space.py"), run_name="example")
    genotype = archsearch.get_space("conv_blocks").sample(np.random.default_rng(0))
    assert archsearch.export(genotype, "onnx", tmp_path, input_shape=(1, 8, 8)).max_abs_diff <= TOLERANCE
    with pytest.raises(ArchsearchError, match="builds its networks with code of its own"):
        archsearch.export(genotype, "python", tmp_path, input_shape=(1, 8, 8))


def test_a_search_exports_its_winner_at_the_end(tmp_path: Path, capsys) -> None:
    from archsearch.cli import main

    argv = ["search", "--space", "nb201", "--strategy", "random", "--trials", "2", "--epochs", "1", "--channels", "4",
            "--cells-per-stage", "1", "--out", str(tmp_path / "r"), "--export", "onnx"]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "r" / "export" / "model.onnx").is_file()
    assert "checked with onnxruntime" in capsys.readouterr().out


def test_a_run_searched_at_a_width_exports_and_measures_that_network(tmp_path: Path) -> None:
    from archsearch.costs import count_params

    run = tmp_path / "run"
    result = archsearch.search(space="mobile", strategy="random", budget=1, out=run,
                               evaluator_options={"epochs": 1, "subset": 100, "width": 0.25})  # fmt: skip
    exported = archsearch.export(run, "python", tmp_path / "py")
    weights = torch.load(tmp_path / "py" / "weights.pt", weights_only=True)
    searched = result.winner.metrics["params"]
    assert exported.max_abs_diff == 0.0 and sum(v.numel() for k, v in weights.items() if "running" not in k
                                                and "num_batches" not in k) == searched  # fmt: skip
    (record,) = archsearch.latency(run, "eager", repeats=2, warmup=0)
    assert record.input_shape == [1, 8, 8]
    space = archsearch.get_space("mobile")
    assert count_params(space.build(result.winner.genotype, 1, 10, 8, width=0.25)) == searched

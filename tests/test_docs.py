"""The documentation runs: every Python block and shell command of the README (and of docs/*.md) is executed here on
tiny budgets, in order, in one scratch directory (so `show runs/x` reads the run an earlier line made), and every
file of examples/ runs as a script. Budgets are cut by the rewrites below (fewer trials, seeds, epochs, narrow NB201
networks, a small training subset); a command that cannot run on this machine is listed with the reason. `make docs`
builds the API reference from the docstrings, offline (tested here too)."""

from __future__ import annotations

import io
import itertools
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

#: commands that cannot run here, and why (matched as substrings of the command)
CANNOT_RUN = {
    "make ": "the two set-up commands are what CI itself runs",
    "--device cuda": "needs a GPU",
    "--ray-address auto": "needs a running Ray cluster",
    " ... ": "a placeholder for the options shown above it",
    "ray start": "starts a cluster",
    "pip install": "installs packages",
}
#: options whose value is cut to a tiny budget
TINY = {"--trials": lambda n: min(n, 2), "--seeds": lambda n: min(n, 2), "--queries": lambda n: min(n, 6),
        "--n": lambda n: min(n, 3), "--subset": lambda n: min(n, 200), "--retrain-epochs": lambda n: 1,
        "--retrain-subset": lambda n: min(n, 200), "--spos-trials": lambda n: 2, "--workers": lambda n: min(n, 2),
        "--epochs": lambda n: math.ceil(n / 10), "--time": lambda n: min(n, 120), "--channels": lambda n: min(n, 8),
        "--cells": lambda n: min(n, 3)}  # fmt: skip
TRAINING_COMMANDS = ("train", "search", "oneshot")
NEEDS_SHARED = ("fashion-mnist", "cifar10", "mnist", "../shared/data", "T.csv")


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, first line number) of each fenced block."""
    out, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            out.append((m.group(1), "\n".join(lines[i + 1 : j]), i + 2))
            i = j
        i += 1
    return out


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("archsearch") or line.startswith("torchrun") or line.startswith("make "):
            commands.append(line)
    return commands


def tiny(command: str) -> str:
    """``command`` on a tiny budget."""
    parts = shlex.split(command)
    for i, part in enumerate(parts[:-1]):
        if part in TINY and re.fullmatch(r"\d+", parts[i + 1]):
            parts[i + 1] = str(TINY[part](int(parts[i + 1])))
    verb = parts[1] if len(parts) > 1 else ""
    if "--fidelity" in parts:  # rungs of 1 and 3 epochs
        parts[parts.index("--epochs") + 1] = "3"
    trains = "--table" not in parts and "zero_cost" not in parts
    if verb in TRAINING_COMMANDS and "--resume" not in parts and "--config" not in parts:
        if "--epochs" not in parts and trains:
            parts += ["--epochs", "1"]
        if verb == "search" and "--trials" not in parts:
            parts += ["--trials", "2"]
        if "--subset" not in parts and trains:  # digits too: 200 of its 1,437 training images
            parts += ["--subset", "200"]
        space = parts[parts.index("--space") + 1] if "--space" in parts else "nb201"
        if verb == "oneshot" and "--channels" not in parts and space not in ("mobile", "macro"):
            parts += ["--channels", "8"]  # a cell supernet at its smallest documented width (block ones: --width)
        if verb == "oneshot" and space == "darts" and "--cells" not in parts:
            parts += ["--cells", "3"]  # the fewest a DARTS supernet has: a normal cell between two reductions
        if verb == "search" and trains and space == "nb201" and "--channels" not in parts:  # one narrow cell a stage
            parts += ["--channels", "8", "--cells-per-stage", "1"]
        evaluator = parts[parts.index("--evaluator") + 1] if "--evaluator" in parts else "train"
        if verb in ("train", "search") and trains and ":" not in evaluator and "--val-subset" not in parts:
            parts += ["--val-subset", "500"]  # else Fashion-MNIST's 6,000 validation images, each epoch of each trial
    if "--retrain" in parts and "--retrain-epochs" not in parts:
        parts += ["--retrain-epochs", "1"]
    if "--retrain" in parts and verb == "oneshot" and "--retrain-subset" not in parts:
        parts += ["--retrain-subset", "200"]  # else the whole training split (60,000 Fashion-MNIST images)
    timed = "|" not in parts and "--no-latency" not in parts  # one command that times networks: 3 timed calls
    if timed and verb == "cost" and "--runs" not in parts:
        parts += ["--runs", "3"]
    if timed and verb == "latency" and "--repeats" not in parts:
        parts += ["--repeats", "3"]
    if verb == "latency-table" and "--calibrate" not in parts:  # each whole network is an ONNX export: 0.8 s
        parts += ["--calibrate", "2"]
    return shlex.join(parts).replace("'|'", "|")


def _shared() -> Path | None:
    root = os.environ.get("ARCHSEARCH_DATA")
    return Path(root) if root and Path(root).is_dir() else None


def _documented() -> list[tuple[str, str, str]]:
    """(id, language, code) of every block that runs, in document order."""
    out = []
    for path in DOCUMENTS:
        for lang, code, line in blocks(path):
            if lang == "python" or (lang in ("bash", "") and shell_commands(code)):
                out.append((f"{path.name}:{line}", "python" if lang == "python" else "bash", code))
    return out


def _scratch(tmp: Path) -> None:
    """The files the documented commands name: a TOML config, a table, a shared-data link."""
    (tmp / "search.toml").write_text(
        'space = "nb201"\nstrategy = "random"\ntrials = 2\nepochs = 1\nout = "runs/toml"\n'
    )
    _made_tables(tmp)
    shared = _shared()
    if shared is not None:
        (tmp / "T.csv").symlink_to(shared / "nb201" / "nb201_cifar10.csv")
        (tmp.parent / "shared").mkdir(exist_ok=True)
        if not (tmp.parent / "shared" / "data").exists():
            (tmp.parent / "shared" / "data").symlink_to(shared)


def _made_tables(tmp: Path) -> None:
    """A made-up NAS-Bench-Macro table (``macro.csv``) and ten NB201 networks "timed on a phone" (``phone.csv``)."""
    import csv

    import numpy as np

    from archsearch.spaces import get_space

    macro = get_space("macro")
    with (tmp / "macro.csv").open("w", newline="") as f:
        rows = [(str(g), sum(int(c) * (i + 1) for i, c in enumerate(g.key)) / 2) for g in macro.enumerate()]
        csv.writer(f).writerows([("arch", "acc_run0", "acc_runs12"), *((a, v, v / 2) for a, v in rows)])
    nb201, rng = get_space("nb201"), np.random.default_rng(0)
    cost = {"none": 0.0, "skip_connect": 0.1, "avg_pool_3x3": 0.4, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
    with (tmp / "phone.csv").open("w", newline="") as f:
        timed = {str(g): 1.0 + sum(cost[o] for o in g.ops) for g in (nb201.sample(rng) for _ in range(10))}
        csv.writer(f).writerows([("arch", "latency_ms"), *timed.items()])


def _files_named(lang: str, code: str) -> set[str]:
    """The paths a block names (a run directory, an export folder, a JSON, CSV or TOML file): what one block may
    write and a later one read."""
    texts = shell_commands(code) if lang == "bash" else [code]
    words = {w.rstrip(".") for text in texts for w in re.findall(r"[\w./-]+", text)}
    return {w for w in words if ("/" in w and not w.startswith(("--", "../shared"))) or
            re.search(r"\.(json|jsonl|csv|toml|pt|onnx)$", w)}  # fmt: skip


def doc_groups() -> dict[str, str]:
    """Each documented block's group (by test id): the blocks it shares a file with, transitively. A group runs in
    order in one test process (tests/conftest.py schedules it so under pytest-xdist) and shares one scratch
    directory; groups run apart."""
    documented = _documented()
    group = list(range(len(documented)))
    named = [_files_named(lang, code) for _, lang, code in documented]
    for i in range(len(documented)):
        for j in range(i):
            if named[i] & named[j]:
                old, new = group[i], group[j]
                group = [new if g == old else g for g in group]
    return {where: f"docs-{g}" for (where, _, _), g in zip(documented, group)}


def _in_groups() -> list[Any]:
    """Every documented block as a test parameter, marked with its group."""
    groups = doc_groups()
    return [pytest.param(*d, id=d[0], marks=pytest.mark.xdist_group(groups[d[0]])) for d in _documented()]


_SCRATCH: dict[str, Path] = {}


@pytest.fixture
def scratch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch directory of the test's group of blocks: made once per group, kept for the session (a worker may
    run other tests between two blocks of a group)."""
    marker = request.node.get_closest_marker("xdist_group")
    group = marker.args[0] if marker else "docs"
    if group not in _SCRATCH:
        root = tmp_path_factory.mktemp(group) / "work"
        root.mkdir()
        _scratch(root)
        _SCRATCH[group] = root
    return _SCRATCH[group]


def _run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "MPLBACKEND": "Agg"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def _run(
    command: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run a documented command in this process: an ``archsearch`` command, or a pipeline of them, through the same
    ``main`` the console script calls (each stage reads the one before's output as its stdin), without a Python
    start-up per command; anything else in a shell. Returns (exit code, stderr of the stage that ended it)."""
    words = shlex.split(command)
    stages = [list(g) for pipe, g in itertools.groupby(words, key=lambda w: w == "|") if not pipe]
    if not all(stage[0] == "archsearch" for stage in stages):
        run = _run_shell(command, cwd)
        return run.returncode, run.stderr
    from archsearch.cli import main

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    for stage in stages:
        code = main(stage[1:])
        out, err = capsys.readouterr()
        if code != 0:  # as bash -o pipefail: a failing stage fails the pipeline
            return code, err
        monkeypatch.setattr(sys, "stdin", io.StringIO(out))
    return 0, err


@pytest.mark.parametrize(("where", "lang", "code"), _in_groups())
def test_documented_example_runs(where: str, lang: str, code: str, scratch: Path, monkeypatch, capsys) -> None:
    if lang == "python":
        code = re.sub(r"budget=\d+", "budget=3", code)
        code = re.sub(r"\bepochs=\d+", "epochs=1", code)
        code = re.sub(r'"epochs": \d+', '"epochs": 1', code)
        monkeypatch.chdir(scratch)
        exec(compile(code, where, "exec"), {"__name__": f"docs_{where}"})
        return
    skipped: list[str] = []
    not_made: list[str] = []  # the --out folders of skipped commands: a later command reading one is skipped too
    for command in shell_commands(code):
        reason = next((why for key, why in CANNOT_RUN.items() if key in f" {command} "), None)
        if reason is None and _shared() is None and any(k in command for k in NEEDS_SHARED):
            reason = "needs the shared data (ARCHSEARCH_DATA)"
        words = shlex.split(command)
        if reason is None and any(out in words for out in not_made):
            reason = "reads what a skipped command before it writes"
        if reason is not None:
            skipped.append(f"{command[:60]}: {reason}")
            not_made += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--out"]
            continue
        status, err = _run(tiny(command), scratch, monkeypatch, capsys)
        if status == 2 and "broke a constraint" in err and "no trial completed" in err:
            continue  # it ran; two random networks of a tiny budget both broke the documented limit
        assert status == 0, f"{where}: `{tiny(command)}` exited {status}:\n{err[-3000:]}"
    if skipped and len(skipped) == len(shell_commands(code)):
        pytest.skip("; ".join(skipped))


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_example_script_runs(script: Path, tmp_path: Path) -> None:
    """Each example runs, and its run (no ``out`` given) lands in the temporary directory it names, here the test's
    own, so that no test leaves runs behind in the system's."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "best:" in run.stdout
    run_dir = Path(run.stdout.split("run: ")[1].split()[0])
    assert run_dir.parent == tmp_path and (run_dir / "experiment.sqlite").is_file()


def test_the_tiny_budget_rewrite() -> None:
    assert tiny("archsearch search --trials 50 --out runs/x") == (
        "archsearch search --trials 2 --out runs/x --epochs 1 --subset 200 --channels 8 --cells-per-stage 1 "
        "--val-subset 500"
    )
    assert tiny("archsearch search --space darts --trials 5") == (
        "archsearch search --space darts --trials 2 --epochs 1 --subset 200 --val-subset 500"
    )
    assert tiny("archsearch search --table T.csv") == "archsearch search --table T.csv --trials 2"
    assert tiny("archsearch search --space chain --fidelity sh --epochs 9 --retrain") == (
        "archsearch search --space chain --fidelity sh --epochs 3 --retrain --trials 2 --subset 200 --val-subset 500 "
        "--retrain-epochs 1"
    )
    assert tiny("archsearch oneshot --dataset fashion-mnist --epochs 20") == (
        "archsearch oneshot --dataset fashion-mnist --epochs 2 --subset 200 --channels 8"
    )
    assert tiny("archsearch oneshot --space darts --epochs 20") == (
        "archsearch oneshot --space darts --epochs 2 --subset 200 --channels 8 --cells 3"
    )
    assert tiny("archsearch latency-table --space mobile") == "archsearch latency-table --space mobile --calibrate 2"
    assert tiny("archsearch oneshot --space mobile --width 0.25 --retrain") == (
        "archsearch oneshot --space mobile --width 0.25 --retrain --epochs 1 --subset 200 --retrain-epochs 1 "
        "--retrain-subset 200"
    )
    assert tiny("archsearch sample --space chain --n 3 | archsearch cost -") == (
        "archsearch sample --space chain --n 3 | archsearch cost -"
    )
    assert tiny("archsearch cost DARTS_V2") == "archsearch cost DARTS_V2 --runs 3"
    assert tiny("archsearch latency runs/m --target eager") == "archsearch latency runs/m --target eager --repeats 3"


def test_the_api_reference_builds_offline(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(BIN))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed (it is in the dev extra: pip install -e '.[dev]')")
    run = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    def text(page: str) -> str:
        return re.sub(r"<[^>]+>", "", (tmp_path / "site" / page / "index.html").read_text())

    api_page = text("reference/api")
    for name in ("search(", "oneshot(", "retrain(", "train(", "score(", "benchmark(", "cost(", "show(", "report("):
        assert name in api_page, f"the API reference lacks {name}"
    assert "ChoiceSpace" in text("reference/spaces") and "register_strategy" in text("reference/strategies")

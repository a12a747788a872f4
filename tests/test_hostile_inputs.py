"""Hostile and careless input: planted files that must not run code, two processes on one run directory, resumes
that contradict the run, inputs that once gave tracebacks or were silently misread. Each case fails without its fix."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.cli import main

FAULT = "archsearch.testing.evaluators:FaultEvaluator"
PLANTED = """
from pathlib import Path
MARKER = Path({marker!r})
class Evil:
    def __init__(self, *args, **kwargs):
        MARKER.write_text("ran")
    def __reduce__(self):
        return (MARKER.write_text, ("ran",))
"""


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module ``planted_evil`` on ``sys.path`` whose class writes a marker file when built or unpickled."""
    marker = tmp_path / "marker"
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "planted_evil.py").write_text(PLANTED.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(folder))
    return marker


def _fault_search(out: Path, trials: int = 3, *extra: str) -> list[str]:
    return ["search", "--evaluator", FAULT, "--trials", str(trials), "--out", str(out), "--strategy", "random", *extra]


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- nothing a run directory or a config holds runs code --------------------------------------------------------
def _tiny_oneshot(out: Path, *extra: str) -> list[str]:
    return [
        "oneshot", "--method", "darts", "--space", "nb201", "--dataset", "digits", "--subset", "128", "--epochs", "1",
        "--channels", "4", "--batch-size", "32", "--out", str(out), "--json", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_planted_oneshot_checkpoint_runs_nothing(tmp_path: Path, planted: Path, how: str, capsys) -> None:
    out = tmp_path / "run"
    assert main(_tiny_oneshot(out)) == 0
    import planted_evil

    with (out / "oneshot.pt").open("wb") as f:
        (torch.save if how == "torch.save" else pickle.dump)(
            {"method": planted_evil.Evil.__new__(planted_evil.Evil)}, f
        )
    capsys.readouterr()
    assert main([*_tiny_oneshot(out), "--resume", "--epochs", "2"]) == 2
    assert "not a one-shot checkpoint" in _err(capsys)
    assert not planted.exists()


def test_a_tampered_store_cannot_name_a_class_to_import(tmp_path: Path, planted: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fault_search(out)) == 0
    db = sqlite3.connect(out / "experiment.sqlite")
    config = json.loads(db.execute("SELECT value FROM meta WHERE name = 'config'").fetchone()[0])
    config["evaluator"] = "planted_evil:Evil"
    db.execute("UPDATE meta SET value = ? WHERE name = 'config'", (json.dumps(config),))
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["search", "--resume", "--out", str(out), "--trials", "5"]) == 2
    err = _err(capsys)
    assert "planted_evil:Evil" in err and "imports no class" in err
    assert not planted.exists()


def test_a_config_file_cannot_name_a_class_to_import(tmp_path: Path, planted: Path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text('evaluator = "planted_evil:Evil"\ntrials = 2\n')
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "may name only registered evaluators" in _err(capsys)
    assert not planted.exists()


def test_a_custom_evaluator_named_again_on_the_command_line_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fault_search(out)) == 0
    assert main(["search", "--resume", "--out", str(out), "--trials", "5"]) == 2
    assert "--evaluator " + FAULT in _err(capsys)
    assert main(["search", "--resume", "--out", str(out), "--trials", "5", "--evaluator", FAULT, "--json"]) == 0
    summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    assert summary["trials"] == 5


# --- one run directory, one process ------------------------------------------------------------------------------
def test_a_second_process_cannot_write_a_run_in_progress(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = _fault_search(out, 40, "--evaluator-option", "seconds=0.2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "archsearch.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while not (out / ".archsearch.lock").exists() or not (out / "experiment.sqlite").exists():
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        for second in (
            ["search", "--resume", "--out", str(out), "--evaluator", FAULT],
            _tiny_oneshot(out),
            _fault_search(out),
        ):
            assert main(second) == 2
            err = _err(capsys)
            assert "being written by another archsearch process" in err or "holds a multi-trial search" in err
        assert main(["show", str(out)]) == 0  # reading is fine
        assert "a process is writing it now" in capsys.readouterr().out
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the kernel released the lock with the killed process: the run resumes at once
    assert main(["search", "--resume", "--out", str(out), "--evaluator", FAULT, "--trials", "3", "--json"]) == 0


def test_oneshot_into_a_search_directory_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fault_search(out)) == 0
    assert main(_tiny_oneshot(out)) == 2
    assert "holds a multi-trial search" in _err(capsys)
    db = sqlite3.connect(out / "experiment.sqlite")
    assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 3  # no trial was added
    db.close()


# --- resume takes its settings from the run ----------------------------------------------------------------------
def test_search_resume_refuses_contradictions_and_honours_a_larger_budget(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fault_search(out, 5)) == 0
    capsys.readouterr()
    for option in (["--strategy", "evolution"], ["--space", "darts"], ["--seed", "3"]):
        assert main(["search", "--resume", "--out", str(out), "--evaluator", FAULT, *option]) == 2
        err = _err(capsys)
        assert option[0] in err and "contradicts the run" in err
    assert main(["search", "--resume", "--out", str(out), "--evaluator", FAULT, "--trials", "12"]) == 0
    text = capsys.readouterr().out
    assert "resuming with --trials 12 (the run had 5)" in text and text.count("\n") > 3
    db = sqlite3.connect(out / "experiment.sqlite")
    assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 12  # 7 more
    db.close()


def test_oneshot_resume_refuses_contradictions_and_missing_runs(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_tiny_oneshot(out)) == 0
    capsys.readouterr()
    assert main([*_tiny_oneshot(out), "--resume", "--method", "gdas"]) == 2
    assert "--method 'gdas' contradicts the run" in _err(capsys)
    assert main([*_tiny_oneshot(out), "--resume", "--channels", "8"]) == 2
    assert "--channels 8 contradicts the run" in _err(capsys)
    # without the options, the run's settings are used (not the defaults: darts space, 16 channels)
    assert main(["oneshot", "--resume", "--out", str(out), "--epochs", "2", "--json"]) == 0
    final = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    assert final["method"] == "darts" and final["epochs"] == 2 and final["genotype"].startswith("|")
    assert main(["oneshot", "--resume", "--out", str(tmp_path / "missing")]) == 2
    assert "no one-shot search to resume" in _err(capsys)
    assert not (tmp_path / "missing").exists()


# --- no tracebacks --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "DARTS_V2", "--cells", "1", "--no-latency"], "at least 3 cells"),
        (["train", "DARTS_V2", "--cells", "1", "--epochs", "1"], "at least 3 cells"),
        (["search", "--strategy-option", "population_size=-1", "--out", "{tmp}"], "sample_size <= population_size"),
        (["search", "--strategy-option", "population_size=abc", "--out", "{tmp}"], "population_size must be int"),
        (["train", "--model", "baseline", "--device", "cuda:7"], "device 'cuda:7'"),
        (["cost", "DARTS_V2", "--device", "tpu"], "device 'tpu'"),
    ],
)
def test_bad_options_get_one_line(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert main([a.replace("{tmp}", str(tmp_path / "r")) for a in argv]) == 2
    assert message in _err(capsys)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('trials = "ten"', "trials = 'ten': expected a positive integer"),
        ('batch_size = "big"', "batch_size = 'big': expected a positive integer"),
        ("trials = 2.5", "trials = 2.5: expected a positive integer"),
        ('strategy = "annealing"', "allowed: "),
        ("retrain = 1", "expected true or false"),
        ("lr = true", "expected a number"),
        ("nonsense = 1", "unknown key(s) ['nonsense']"),
    ],
)
def test_config_values_pass_the_command_lines_checks(toml: str, message: str, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    assert main(["search", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert message in _err(capsys)
    assert not (tmp_path / "run").exists()


def test_a_binary_or_out_of_range_table_is_refused(tmp_path: Path, made_table: Path, capsys) -> None:
    binary = tmp_path / "t.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    assert main(["search", "--table", str(binary), "--out", str(tmp_path / "a")]) == 2
    assert "not a text CSV file" in _err(capsys)
    lines = made_table.read_text().splitlines()
    arch, *_ = lines[1].split(",")
    bad = tmp_path / "neg.csv"
    bad.write_text("\n".join([lines[0], f"{arch},-5,50,50", *lines[2:50]]) + "\n")
    assert main(["search", "--table", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "percentages in 0..100" in _err(capsys)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_named_on_show_and_resume(damage: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_fault_search(out)) == 0
    path = out / "experiment.sqlite"
    raw = path.read_bytes()
    path.write_bytes(os.urandom(4096) if damage == "garbage" else raw[: len(raw) // 3])
    capsys.readouterr()
    for argv in (["show", str(out)], ["search", "--resume", "--out", str(out), "--evaluator", FAULT]):
        assert main(argv) == 2
        err = _err(capsys)
        assert "damaged" in err and str(path) in err


# --- image folders --------------------------------------------------------------------------------------------
def _image_folder(root: Path, sizes: dict[str, list[int]]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, side_list in sizes.items():
        (root / cls).mkdir(parents=True)
        for k, side in enumerate(side_list):
            Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(root / cls / f"{k}.png")
    return root


def test_image_folder_problems_name_the_file_or_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    from PIL import Image

    from archsearch.data import load_dataset
    from archsearch.errors import ArchsearchError

    ok = _image_folder(tmp_path / "ok", {"a": [8] * 6, "b": [8] * 6})
    (ok / "c").mkdir()  # a class folder with no images
    with pytest.raises(ArchsearchError, match=r"class folder.*c hold no images"):
        load_dataset(str(ok))
    (ok / "c").rmdir()
    truncated = ok / "b" / "5.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ArchsearchError, match=r"5\.png: cannot read image"):
        load_dataset(str(ok))
    mixed = _image_folder(tmp_path / "mixed", {"a": [8, 8, 12], "b": [8, 10, 8]})
    assert main(["train", "--model", "baseline", "--dataset", str(mixed), "--epochs", "1"]) == 2
    assert "--image-size" in _err(capsys)
    assert load_dataset(str(mixed), image_size=8).input_shape == (1, 8, 8)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # every 8x8 image is now a decompression bomb
    with pytest.raises(ArchsearchError, match="refusing to decode an image this large"):
        load_dataset(str(_image_folder(tmp_path / "bomb", {"a": [8, 8], "b": [8, 8]})))


# --- nothing silently wrong -----------------------------------------------------------------------------------
def test_retrain_after_a_table_search_needs_a_dataset(tmp_path: Path, made_table: Path, capsys) -> None:
    argv = ["search", "--table", str(made_table), "--trials", "3", "--out", str(tmp_path / "r"), "--retrain"]
    assert main(argv) == 2
    assert "holds no data to retrain on" in _err(capsys)
    assert main(argv[:-1]) == 0
    assert main(["search", "--resume", "--out", str(tmp_path / "r"), "--retrain"]) == 2
    assert "holds no data to retrain on" in _err(capsys)


@pytest.mark.parametrize("option", [["--metric", "test_acc"], ["--objectives", "val_acc,test_acc"]])
def test_a_table_search_cannot_select_by_test_accuracy(option: list[str], tmp_path, made_table, capsys) -> None:
    assert main(["search", "--table", str(made_table), "--out", str(tmp_path / "r"), *option]) == 2
    assert "leaks the test split" in _err(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--table", "{table}", "--lr", "0.1"], "--lr has no effect with --table"),
        (["--table", "{table}", "--device", "cpu"], "--device has no effect with --table"),
        (["--evaluator", "zero_cost", "--epochs", "3"], "--epochs has no effect with the zero_cost evaluator"),
        (["--evaluator", FAULT, "--channels", "8"], "--channels has no effect with the custom evaluator"),
        (["--proxy", "snip"], "--proxy has no effect"),
        (["--eta", "2"], "--eta has no effect"),
        (["--cpus-per-trial", "2"], "--cpus-per-trial has no effect"),
        (["--retries", "3"], "--retries has no effect"),
        (["--retrain-epochs", "3"], "--retrain-epochs has no effect"),
        (["--no-augment", "--cutout", "4"], "cannot go with --no-augment"),
    ],
)
def test_options_that_would_not_act_are_refused(argv, message, tmp_path, made_table, capsys) -> None:
    argv = [a.replace("{table}", str(made_table)) for a in argv]
    assert main(["search", "--out", str(tmp_path / "r"), *argv]) == 2
    assert message in _err(capsys)
    assert not (tmp_path / "r").exists()


def test_every_training_option_reaches_the_trainer(tmp_path: Path, monkeypatch) -> None:
    import archsearch.api.multitrial as multitrial

    captured = {}
    real = multitrial.build_experiment

    def spy(config, out, on_trial=None, data=None):
        experiment = real(config, out, on_trial, data=data)
        captured["config"] = experiment.evaluator.config
        captured["data"] = experiment.evaluator.data
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(multitrial, "build_experiment", spy)
    toml = tmp_path / "c.toml"
    toml.write_text('device = "cpu"\nmax_seconds = 30.0\n')
    argv = [
        "search", "--out", str(tmp_path / "r"), "--optimizer", "adamw", "--weight-decay", "0.01",
        "--lr-warmup-epochs", "0.5",
        "--label-smoothing", "0.1", "--drop-path", "0.2", "--cutout", "4", "--compile", "--lr", "0.01",
        "--batch-size", "32", "--epochs", "2", "--patience", "4", "--seed", "5", "--config", str(toml),
    ]  # fmt: skip
    assert main(argv) == 130
    cfg = captured["config"]
    assert (cfg.optimizer, cfg.weight_decay, cfg.lr_warmup_epochs, cfg.label_smoothing, cfg.drop_path) == (
        "adamw", 0.01, 0.5, 0.1, 0.2,
    )  # fmt: skip
    assert (cfg.compile, cfg.lr, cfg.batch_size, cfg.epochs, cfg.patience, cfg.max_seconds) == (
        True, 0.01, 32, 2, 4, 30.0,
    )  # fmt: skip
    assert cfg.augment is True and cfg.cutout == 4 and cfg.device == "cpu" and cfg.seed == 5
    assert main([*argv[:3], "--no-augment"]) == 130
    assert captured["config"].augment is False


def test_a_search_whose_every_trial_fails_exits_non_zero_and_says_why(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main([*_fault_search(out, 4), "--evaluator-option", 'fail=[""]']) == 2
    captured = capsys.readouterr()
    assert "4 x RuntimeError: planned failure" in captured.out and "no trial completed (4 failed)" in captured.err
    assert main(["show", str(out), "--json"]) == 0
    summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()][-1]
    assert summary["failures"] == [{"error": "RuntimeError: planned failure", "trials": 4}]


def test_show_says_why_a_run_stopped_and_what_a_directory_holds(tmp_path: Path, capsys) -> None:
    from archsearch.api import search
    from archsearch.store import Store

    def interrupt(trial, experiment):
        if trial.number == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(evaluator=FAULT, evaluator_options={}, strategy="random", budget=10, out=tmp_path / "cut",
               on_trial=interrupt)  # fmt: skip
    db_bytes = (tmp_path / "cut" / "experiment.sqlite").read_bytes()
    assert main(["show", str(tmp_path / "cut")]) == 0
    assert "stopped by an interrupt (Ctrl-C)" in capsys.readouterr().out
    assert (tmp_path / "cut" / "experiment.sqlite").read_bytes() == db_bytes  # show wrote nothing
    Store(tmp_path / "empty").close()
    assert main(["show", str(tmp_path / "empty")]) == 2
    assert "holds no run yet" in _err(capsys)
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "experiment.sqlite").write_bytes(b"")
    assert main(["show", str(tmp_path / "zero")]) == 2
    assert "holds no run yet" in _err(capsys)
    assert main(["search", "--resume", "--out", str(tmp_path / "zero")]) == 2
    assert "holds no run" in _err(capsys)
    assert main(_tiny_oneshot(tmp_path / "one")) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "one")]) == 0
    shown = capsys.readouterr().out
    assert "a one-shot search (darts on nb201, 1 epochs)" in shown and "derived |" in shown


class InterruptAt:
    """Evaluates like the fault evaluator, and raises KeyboardInterrupt (a Ctrl-C during training) on the evaluation
    of the architecture that is ``at``-th in the order of evaluations."""

    calls = 0
    armed = True  # off for the resumed run, which reads the same options from the store

    def __init__(self, space=None, at: int = -1) -> None:
        from archsearch.testing.evaluators import FaultEvaluator

        self.inner, self.at = FaultEvaluator(), at

    def evaluate(self, genotype, fidelity=None, seed=None):
        InterruptAt.calls += 1
        if InterruptAt.armed and InterruptAt.calls == self.at:
            raise KeyboardInterrupt
        return self.inner.evaluate(genotype, fidelity, seed)


def test_an_interrupt_does_not_count_repeats_twice(tmp_path: Path) -> None:
    from archsearch.api import search

    common = dict(
        space="chain", strategy="evolution", seed=1,
        space_options={"min_layers": 1, "max_layers": 1, "channels": [16, 32], "kernels": [1, 3, 5, 7]},
        strategy_options={"population_size": 4, "sample_size": 2},
    )  # fmt: skip
    evaluator = f"{__name__}:InterruptAt"
    full = search(budget=40, out=tmp_path / "full", evaluator=evaluator, evaluator_options={}, **common)
    assert full.repeats > 0
    for cut in range(5, 40, 3):  # a Ctrl-C during the evaluation of trial `cut`, after repeats answered before it
        InterruptAt.calls, InterruptAt.armed = 0, True
        out = tmp_path / f"cut{cut}"
        with pytest.raises(KeyboardInterrupt):
            search(budget=40, out=out, evaluator=evaluator, evaluator_options={"at": cut}, **common)
        InterruptAt.armed = False
        resumed = search(out=out, resume=True, evaluator=evaluator)
        assert resumed.repeats == full.repeats, cut
        assert [t.key for t in resumed.best] == [t.key for t in full.best]


def test_the_proxy_evaluator_keeps_its_cheap_epochs_unless_epochs_is_given(tmp_path: Path, monkeypatch) -> None:
    import archsearch.api.multitrial as multitrial

    seen = []

    def spy(config, out, on_trial=None, data=None):
        seen.append(config["evaluator_options"].get("epochs"))
        raise KeyboardInterrupt

    monkeypatch.setattr(multitrial, "build_experiment", spy)
    assert main(["search", "--evaluator", "proxy", "--out", str(tmp_path / "a")]) == 130
    assert main(["search", "--evaluator", "proxy", "--epochs", "7", "--out", str(tmp_path / "b")]) == 130
    assert main(["search", "--out", str(tmp_path / "c")]) == 130
    assert seen == [None, 7, 5]  # proxy: its own 3; given: 7; the train evaluator: the search's default


def test_a_readers_brief_probe_does_not_refuse_a_writer(tmp_path: Path) -> None:
    import threading

    from archsearch.rundir import LOCK_NAME, RunDirBusy, RunLock, _try_lock

    tmp_path.mkdir(exist_ok=True)
    probe = (tmp_path / LOCK_NAME).open("a+")
    assert _try_lock(probe)  # a reader (is_busy) holding the lock for a moment
    threading.Timer(0.1, probe.close).start()
    lock = RunLock(tmp_path).acquire()  # waits the moment out
    assert lock.held
    with pytest.raises(RunDirBusy, match="being written by another archsearch process"):
        RunLock(tmp_path).acquire()  # a real writer holds it: refused after the short wait
    lock.release()

"""Hostile input against what archsearch writes and shows: the report (stored script), the terminal (escape
sequences), export (a planted package, symlinks, a killed export), ``--out`` files (a run's store, device nodes,
links), and run directories whose records were tampered with. Each case fails without its fix."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import archsearch as A
from archsearch.cli import main
from archsearch.errors import ArchsearchError

NB201 = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
TINY = ["--input-shape", "1,8,8", "--channels", "4", "--cells-per-stage", "1"]
XSS = "<img src=x onerror=alert(8)>"


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _run_with(tmp_path: Path, error: str, metric: str = "val_acc", budget: int = 4) -> Path:
    """A search (nb201, random) whose evaluator fails on some architectures with ``error`` and records ``metric``."""

    calls = []

    @A.register_evaluator
    def hostile(genotype: Any, space: Any) -> dict[str, float]:
        calls.append(genotype.key)
        if len(calls) % 2:  # every other trial fails
            raise ValueError(error)
        return {"val_acc": float(sum(map(ord, genotype.key)) % 13), metric: 1.5}

    out = tmp_path / "run"
    A.search(space="nb201", strategy="random", evaluator="hostile", budget=budget, out=str(out), seed=3)
    return out


# --- 1. export --format python loads only the file it wrote --------------------------------------------------------
def test_export_python_never_imports_a_planted_package(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    (out / "model").mkdir(parents=True)
    marker = tmp_path / "PKG_RAN"
    (out / "model" / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    assert main(["export", NB201, "--format", "python", "--out", str(out), *TINY]) == 2
    assert "holds files export does not write" in _err(capsys)
    assert not marker.exists() and not (out / "model.py").exists()


def test_export_python_checks_the_file_in_an_isolated_interpreter(tmp_path: Path, monkeypatch) -> None:
    """model.py is loaded by its path with ``python -I``: a ``torch.py`` in the current directory is not imported."""
    marker = tmp_path / "TORCH_SHADOWED"
    (tmp_path / "torch.py").write_text(f"open({str(marker)!r}, 'w')\nraise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    build = {"channels": 4, "cells_per_stage": 1}
    exported = A.export(NB201, "python", tmp_path / "o", input_shape=(1, 8, 8), build=build)
    assert "isolated" in exported.checked_with and not marker.exists()
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["model.py", "weights.pt"]


# --- 6, 7. export writes into a private folder and moves only checked files into place -----------------------------
def test_export_refuses_links_and_existing_files_without_force(tmp_path: Path, capsys) -> None:
    out, target = tmp_path / "o", tmp_path / "victim.txt"
    out.mkdir()
    target.write_text("keep me")
    (out / "model.onnx").symlink_to(target)
    assert main(["export", NB201, "--format", "onnx", "--out", str(out), *TINY]) == 2
    assert "model.onnx" in _err(capsys) and target.read_text() == "keep me"
    (out / "model.onnx").unlink()
    assert main(["export", NB201, "--format", "onnx", "--out", str(out), *TINY, "--json"]) == 0
    capsys.readouterr()
    assert main(["export", NB201, "--format", "onnx", "--out", str(out), *TINY]) == 2
    assert "--force" in _err(capsys)
    assert main(["export", NB201, "--format", "onnx", "--out", str(out), *TINY, "--force", "--json"]) == 0
    (tmp_path / "linked").symlink_to(out)
    assert main(["export", NB201, "--format", "onnx", "--out", str(tmp_path / "linked"), *TINY, "--force"]) == 2
    assert "symbolic link" in _err(capsys)


def test_an_interrupted_export_leaves_nothing_that_looks_finished(tmp_path: Path, monkeypatch) -> None:
    from archsearch.export import formats as exporting

    real = exporting._python

    def killed(*args: Any) -> Any:
        real(*args)  # model.py and weights.pt written (into the private folder), then the process is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(exporting, "_python", killed)
    with pytest.raises(KeyboardInterrupt):
        A.export(NB201, "python", tmp_path / "o", input_shape=(1, 8, 8), build={"channels": 4, "cells_per_stage": 1})
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name != "o"] == []  # the private folder is gone too


# --- 11. architecture text that is too long to be a file name is never handed to the file system ------------------
def test_a_darts_genotype_string_is_an_architecture_not_a_path(tmp_path: Path, capsys) -> None:
    text = str(A.get_space("darts").parse("DARTS_V2"))
    assert len(text.encode()) > 255
    argv = ["latency", text, "--target", "eager", "--warmup", "0", "--repeats", "1", "--channels", "4", "--cells",
            "3", "--input-shape", "3,8,8", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["target"] == "eager"


# --- 12. weights are loaded only as tensors, only from inside the run ------------------------------------------------
def test_a_pickled_weights_file_is_one_line_and_runs_nothing(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"\x80\x04cbuiltins\nexec\n(V" + f"open({str(marker)!r},'w')".encode() + b"\ntR.")
    assert main(["export", NB201, "--format", "onnx", "--out", str(tmp_path / "o"), *TINY, "--weights",
                 str(evil)]) == 2  # fmt: skip
    assert "not a weights file archsearch can load safely" in _err(capsys) and not marker.exists()


def test_a_stored_weights_path_outside_the_run_is_refused(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["search", "--evaluator", "archsearch.testing.evaluators:FaultEvaluator", "--trials", "2", "--out",
                 str(run), "--strategy", "random", "--json"]) == 0  # fmt: skip
    db = sqlite3.connect(run / "experiment.sqlite")
    network = {"space": "nb201", "genotype": A.get_space("nb201").parse(NB201).to_json(), "input_shape": [1, 8, 8],
               "num_classes": 10, "build": {"channels": 4, "cells": 1},
               "weights": "../../../../etc/passwd"}  # fmt: skip
    db.execute("INSERT OR REPLACE INTO meta VALUES ('retrain', ?)", (json.dumps({"winner_network": network}),))
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "o")]) == 2
    assert "outside the run directory" in _err(capsys)


# --- 3. the report's page: stored text is data -------------------------------------------------------------------
def test_the_report_escapes_stored_text_in_html_and_in_its_script(tmp_path: Path) -> None:
    run = _run_with(tmp_path, f"{XSS} <!--<script> \u2028", metric="<img src=y onerror=alert(9)>")
    page = A.report(run).path.read_text()
    assert "<img" not in page.lower() and "<!--" not in page
    assert re.search(r'http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;; script-src '
                     r"&#x27;sha256-", page)  # fmt: skip
    script = page[page.index("<script>") + 8 : page.index("</script>")]
    assert "innerHTML" not in script and "\u2028" not in script
    data, _ = json.JSONDecoder().raw_decode(script[len("const DATA=") :])
    assert any(XSS in str(v) for r in data["records"].values() for v in r.values())  # the text is kept, escaped


def test_no_stored_payload_runs_in_chromium(tmp_path: Path) -> None:
    from tests.test_report import _chromium

    path = _chromium()
    if path is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (in the dev extra)")
    from playwright.sync_api import sync_playwright

    run = _run_with(tmp_path, f"{XSS} <!--<script>", metric="<img src=y onerror=alert(9)>", budget=8)
    report = A.report(run).path
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        page = browser.new_page()
        dialogs: list[str] = []
        errors: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("typeof DATA") == "object"  # the page's own script ran (<!--<script> did not stop it)
        points = page.locator("figure svg use")
        assert points.count() > 0
        for i in range(points.count()):
            points.nth(i).hover(force=True)
        tip = page.locator("#tip")
        assert tip.is_visible()
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=z onerror=\"alert(1)\">')")
        page.wait_for_timeout(300)
        browser.close()
    assert dialogs == [] and errors == []


# --- 4. the terminal: control characters are shown, not acted on ---------------------------------------------------
def test_show_and_search_print_escape_sequences_visibly(tmp_path: Path, capsys) -> None:
    run = _run_with(tmp_path, "boom \x1b]52;c;aGFjaw==\x07 \x1b[2J done")
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]52;c;aGFjaw==\\x07" in out


# --- 5, 6. --out never destroys what is there ------------------------------------------------------------------------
def test_report_out_never_replaces_a_runs_store_a_device_or_a_file_unasked(tmp_path: Path, capsys) -> None:
    run = _run_with(tmp_path, "x")
    store = (run / "experiment.sqlite").read_bytes()
    for target, message in ((run / "experiment.sqlite", "belongs to the run"), (Path("/dev/null"), "not a regular"),
                            (run, "directory")):  # fmt: skip
        assert main(["report", str(run), "--out", str(target), "--force"]) == 2
        assert message in _err(capsys)
    assert (run / "experiment.sqlite").read_bytes() == store and Path("/dev/null").is_char_device()
    mine = tmp_path / "mine.html"
    mine.write_text("my notes")
    assert main(["report", str(run), "--out", str(mine)]) == 2
    assert "already exists; pass --force" in _err(capsys) and mine.read_text() == "my notes"
    link, victim = tmp_path / "link.html", tmp_path / "victim.txt"
    victim.write_text("keep")
    link.symlink_to(victim)
    assert main(["report", str(run), "--out", str(link)]) == 2
    assert main(["report", str(run), "--out", str(link), "--force", "--json"]) == 0
    assert victim.read_text() == "keep" and not link.is_symlink() and "<!DOCTYPE html>" in link.read_text()
    assert main(["report", str(run), "--json"]) == 0 and main(["report", str(run), "--json"]) == 0  # its own: rewritten


def test_report_png_never_follows_a_link_nor_leaves_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "one"
    assert main(["oneshot", "--method", "darts", "--space", "nb201", "--dataset", "digits", "--subset", "128",
                 "--epochs", "1", "--channels", "4", "--batch-size", "32", "--out", str(out), "--json"]) == 0
    db = sqlite3.connect(out / "experiment.sqlite")
    (history,) = db.execute("SELECT value FROM meta WHERE name = 'oneshot_history'").fetchone()
    records = json.loads(history)
    for r in records:
        r["probabilities"] = {"/../../../../../outside/PWNED": next(iter(r["probabilities"].values()))}
    db.execute("UPDATE meta SET value = ? WHERE name = 'oneshot_history'", (json.dumps(records),))
    db.commit()
    db.close()
    pngs, victim = tmp_path / "pngs", tmp_path / "victim.txt"
    pngs.mkdir()
    victim.write_text("keep")
    for name in ("losses.png", "skips.png", "op_frequency.png"):
        (pngs / name).symlink_to(victim)
    A.report(out, png=pngs)
    assert victim.read_text() == "keep"
    written = sorted(p.name for p in pngs.iterdir())
    assert "losses.png" in written and not any(p.is_symlink() for p in pngs.iterdir())
    assert any("PWNED" in name for name in written)  # the tampered name, made one plain file name in DIR
    assert [p for p in tmp_path.rglob("*PWNED*") if p.parent != pngs] == []


def test_latency_table_and_benchmark_outputs_are_checked_before_any_work(tmp_path: Path, capsys, made_table) -> None:
    existing = tmp_path / "t.json"
    existing.write_text("mine")
    assert main(["latency-table", "--space", "macro", "--out", str(existing)]) == 2
    assert "already exists; pass --force" in _err(capsys) and existing.read_text() == "mine"
    assert main(["latency-table", "--space", "macro", "--out", "/dev/null", "--force"]) == 2
    assert "not a regular file" in _err(capsys)
    assert main(["benchmark", "--table", str(made_table), "--report", str(existing), "--seeds", "1"]) == 2
    assert "already exists" in _err(capsys)


def test_a_latency_table_is_saved_through_a_fresh_temporary_file(tmp_path: Path) -> None:
    from tests.test_hostile_data import small_table

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "t.json.tmp").symlink_to(victim)
    small_table().save(tmp_path / "t.json")
    assert victim.read_text() == "keep" and json.loads((tmp_path / "t.json").read_text())["entries"]


# --- 14, 12. registered pieces and tampered records, read by every command ------------------------------------------
SPACE_AND_EVALUATOR = """
import sys
from typing import Any, ClassVar
from torch import nn
import archsearch as A

@A.register_space
class TinyConvs(A.ChoiceSpace):
    name = "tiny_convs"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {"width": (8, 16), "kernel": (3, 5), "depth": (1, 2)}

    def build_network(self, g, in_channels, num_classes, input_size, **options):
        return nn.Sequential(nn.Conv2d(in_channels, g["width"], g["kernel"]), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(g["width"], num_classes))

@A.register_evaluator
def width_and_depth(genotype, space):
    return {"val_acc": genotype["width"] / 16 * 50 + genotype["depth"] * 25}

A.search(space="tiny_convs", strategy="random", evaluator="width_and_depth", budget=4, out=sys.argv[1])
"""


def test_show_and_report_read_a_run_made_with_registered_pieces(tmp_path: Path, capsys) -> None:
    run = tmp_path / "own"
    subprocess.run([sys.executable, "-c", SPACE_AND_EVALUATOR, str(run)], check=True, capture_output=True)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "width_and_depth" in out and "width=16" in out
    assert main(["report", str(run), "--json"]) == 0
    assert "width=16" in (run / "report.html").read_text()


@pytest.mark.parametrize(
    ("column", "value", "where"),
    [
        ("seconds", "'slow'", "seconds"),
        ("metrics", "'[1, 2]'", "metrics"),
        ("metrics", "'{bad json'", "trial"),
        ("status", "'weird'", "status"),
    ],
)
def test_tampered_trial_fields_are_named_by_show_and_noted_by_report(tmp_path: Path, capsys, column: str, value: str,
                                                                     where: str) -> None:  # fmt: skip
    run = _run_with(tmp_path, "x")
    db = sqlite3.connect(run / "experiment.sqlite")
    db.execute(f"UPDATE trials SET {column} = {value} WHERE number = 0")
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["show", str(run)]) == 2
    assert where in _err(capsys)
    assert main(["report", str(run), "--json"]) == 0
    assert "left out" in (run / "report.html").read_text()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("evaluator_options", "build"), {"channels": "many"}),
        (("space_options",), "wide"),
        (("objective", "limits"), {"params": "small"}),
        (("budget", "trials"), "lots"),
    ],
)
def test_tampered_config_fields_are_one_line(tmp_path: Path, capsys, path: tuple[str, ...], value: Any) -> None:
    run = _run_with(tmp_path, "x")
    db = sqlite3.connect(run / "experiment.sqlite")
    (config,) = db.execute("SELECT value FROM meta WHERE name = 'config'").fetchone()
    config = json.loads(config)
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    db.execute("UPDATE meta SET value = ? WHERE name = 'config'", (json.dumps(config),))
    db.commit()
    db.close()
    capsys.readouterr()
    for command in (["show", str(run)], ["report", str(run)]):
        assert main(command) == 2
        assert ".".join(path) in _err(capsys)


def test_a_stored_cell_name_that_looks_like_math_text_is_drawn_as_text(tmp_path: Path) -> None:
    from archsearch.reporting.figures import oneshot_figures

    history = [{"epoch": e, "probabilities": {"$\\frac{$": [[0.2] * 5] * 6}, "genotype": NB201, "train_loss": 1.0,
                "val_acc": 50.0} for e in range(2)]  # fmt: skip
    figures = oneshot_figures(history, ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"], None)
    from archsearch.reporting.html import Page

    page = Page("t", "s")
    assert all("<svg" in page.figure(f) for f in figures)


def test_check_output_names_what_it_refuses(tmp_path: Path) -> None:
    from archsearch.outputs import check_output, safe_name

    (tmp_path / "experiment.sqlite").write_bytes(b"")
    with pytest.raises(ArchsearchError, match="belongs to the run"):
        check_output(tmp_path / ".archsearch.lock", force=True)
    assert check_output(tmp_path / "new.html") == tmp_path / "new.html"
    assert safe_name("alphas_/../../../../outside/PWNED") == "alphas_outside_PWNED"
    assert safe_name("..") == "file" and "/" not in safe_name("a/b\\c\x00d")


def test_the_weights_loader_refuses_what_is_not_a_state_dict(tmp_path: Path) -> None:
    from archsearch.checkpoints import load_weights

    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ArchsearchError, match="not a state dict"):
        load_weights(tmp_path / "list.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ArchsearchError, match="not a weights file"):
        load_weights(tmp_path / "text.pt")
    assert os.path.exists(tmp_path / "text.pt")


def test_fidelity_on_some_trials_only_and_a_text_start_time_are_shown(tmp_path: Path, capsys) -> None:
    run = _run_with(tmp_path, "x")
    db = sqlite3.connect(run / "experiment.sqlite")
    db.execute("UPDATE trials SET fidelity = 2.0 WHERE number = 1")  # a complete trial: in the table
    db.execute("UPDATE trials SET started = 'noon' WHERE number = 3")
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    assert "epochs@" in capsys.readouterr().out
    assert main(["report", str(run), "--json"]) == 0

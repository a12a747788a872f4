"""Reports and drawings: a self-contained page for every kind of run, checked as files here and in a real browser
(headless Chromium driven by Playwright; skipped, with the reason, where no browser is installed)."""

from __future__ import annotations

import io
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from archsearch.cli import main

FAULT = "archsearch.testing.evaluators:FaultEvaluator"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, made_table: Path) -> dict[str, Path]:
    """A report of each kind: a table search, a multi-objective search, a one-shot search, a strategy benchmark."""
    root = tmp_path_factory.mktemp("reports")
    table = str(made_table)
    runs = {
        "table": ["search", "--table", table, "--strategy", "evolution", "--trials", "300"],
        "pareto": ["search", "--table", table, "--strategy", "random", "--trials", "120",
                   "--objectives", "val_acc,valid_acc_200ep"],
        "oneshot": ["oneshot", "--method", "darts", "--space", "nb201", "--dataset", "digits", "--subset", "128",
                    "--epochs", "2", "--channels", "4", "--batch-size", "32", "--table", table],
    }  # fmt: skip
    out = {}
    for name, argv in runs.items():
        assert main([*argv, "--out", str(root / name), "--json"]) == 0
        assert main(["report", str(root / name), "--json"]) == 0
        out[name] = root / name / "report.html"
    out["benchmark"] = root / "benchmark.html"
    argv = ["benchmark", "--table", table, "--strategies", "random,evolution,local", "--queries", "25", "--seeds", "4"]
    assert main([*argv, "--report", str(out["benchmark"]), "--json"]) == 0
    return out


# --- the files ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["table", "pareto", "oneshot", "benchmark"])
def test_a_report_is_one_self_contained_file(kind: str, reports: dict[str, Path]) -> None:
    text = reports[kind].read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", text)  # nothing fetched from anywhere
    assert "<script src" not in text and "<link" not in text
    assert text.count("<svg") >= 2 and "const DATA=" in text
    assert not list(reports[kind].parent.glob(".*.tmp"))  # written whole, then renamed


def test_each_kind_shows_its_sections(reports: dict[str, Path]) -> None:
    table = reports["table"].read_text()
    for section in ('id="summary"', 'id="history"', 'id="top"', "stopped by", "versions", "archsearch 0."):
        assert section in table
    pareto = reports["pareto"].read_text()
    assert 'id="pareto"' in pareto and "hypervolume" in pareto
    oneshot = reports["oneshot"].read_text()
    for section in ('id="alphas_cell"', 'id="op_frequency"', 'id="skips"', 'id="losses"', 'id="per-epoch"',
                    'id="table"', "table: test_acc_200ep", "derived architecture in the table"):
        assert section in oneshot
    bench = reports["benchmark"].read_text()
    assert 'id="anytime"' in bench and 'id="final"' in bench and "evolution" in bench


def test_failed_trials_are_grouped_by_error(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    main(["search", "--evaluator", FAULT, "--evaluator-option", 'fail=["none~0|+"]', "--trials", "30",
          "--strategy", "random", "--out", str(out), "--json"])  # fmt: skip
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    assert 'id="failures"' in text and "RuntimeError: planned failure" in text


def test_png_figures_and_bad_input(tmp_path: Path, reports: dict[str, Path], capsys) -> None:
    run = reports["oneshot"].parent
    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--png", str(tmp_path / "png")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert "losses.png" in pngs and "alphas_cell.png" in pngs and "derived_cell.png" in pngs
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in (tmp_path / "png").glob("*.png"))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no run here" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "experiment.sqlite").write_bytes(os.urandom(2048))
    assert main(["report", str(damaged)]) == 2
    assert "damaged" in capsys.readouterr().err and not (damaged / "report.html").exists()
    assert main(["report", str(run), "--every", "2"]) == 2
    assert "needs --watch" in capsys.readouterr().err


def test_watch_rewrites_while_the_run_is_written_and_stops_after(tmp_path: Path, made_table: Path) -> None:
    from archsearch.reporting.html import watch
    from archsearch.reporting.run_report import build_run_report
    from archsearch.store import Store

    run = tmp_path / "run"
    assert main(["search", "--table", str(made_table), "--trials", "20", "--out", str(run), "--json"]) == 0
    holder = Store(run)  # a writer holds the run: watch keeps rewriting
    writes: list[int] = []
    busy = iter([True, True, False])
    try:
        path = watch(lambda: build_run_report(run), lambda: next(busy), 0.01, lambda p: writes.append(p.stat().st_size))
    finally:
        holder.close()
    assert len(writes) == 3 and path == run / "report.html"
    db = sqlite3.connect(run / "experiment.sqlite")
    assert db.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 20  # the report wrote nothing into the store
    db.close()


def test_draw_writes_svg_and_png_for_every_space(tmp_path: Path, capsys) -> None:
    archs = {
        "nb201": "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        "darts": "DARTS_V2",
        "chain": "add: conv3x3/64/s1 | maxpool/s2 | conv5x5/128/s1 +0",
    }
    for space, arch in archs.items():
        assert main(["draw", arch, "--space", space, "--out", str(tmp_path / f"{space}.svg")]) == 0
        assert main(["draw", arch, "--out", str(tmp_path / f"{space}.png")]) == 0
    assert (tmp_path / "darts_normal.svg").is_file() and (tmp_path / "darts_reduce.png").is_file()
    assert (tmp_path / "nb201.png").read_bytes().startswith(b"\x89PNG")
    assert main(["draw", "DARTS_V2", "--out", str(tmp_path / "x.pdf")]) == 2
    assert "must end in .svg or .png" in capsys.readouterr().err


def test_the_darts_v2_drawing_has_the_papers_edges() -> None:
    """DARTS_V2 as in the DARTS paper's figure: normal cell node 0 and 1 sep_conv_3x3 from both inputs, node 2
    sep_conv_3x3 from c_{k-1} and skip_connect from c_{k-2}, node 3 skip_connect from c_{k-2} and dil_conv_3x3 from
    node 0; reduction cell max_pool_3x3 and skip_connect edges."""
    from archsearch.reporting.drawings import draw_darts_cell, pyplot

    def figure_svg(fig: Any) -> str:
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", bbox_inches="tight")
        pyplot().close(fig)
        return buffer.getvalue()

    from archsearch.spaces import published

    v2 = published("DARTS_V2")
    normal = figure_svg(draw_darts_cell(v2.normal, v2.normal_concat))
    labels = [t for t in re.findall(r"<!-- (\w+) -->", normal) if "_" in t]
    assert sorted(labels) == sorted(op for op, _ in v2.normal)
    reduce = figure_svg(draw_darts_cell(v2.reduce, v2.reduce_concat))
    assert sorted(t for t in re.findall(r"<!-- (\w+) -->", reduce) if "_" in t) == sorted(op for op, _ in v2.reduce)


# --- in a real browser ------------------------------------------------------------------------------------------------
def _chromium() -> str | None:
    return os.environ.get("ARCHSEARCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install playwright; in the dev extra)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1250, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, [r for r in requests if r != path.as_uri()]


def _not_blank(png: bytes) -> bool:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    low, high = image.getextrema()
    return high - low > 60 and len(image.getcolors(maxcolors=256) or []) > 8


@pytest.mark.parametrize("kind", ["table", "pareto", "oneshot", "benchmark"])
def test_the_page_loads_clean_and_every_figure_shows(kind: str, reports: dict[str, Path], browser) -> None:
    page, errors, requests = _open(browser, reports[kind])
    assert errors == [] and requests == []
    figures = page.locator("figure, td.draw svg")
    assert figures.count() >= 2
    for i in range(figures.count()):
        assert _not_blank(figures.nth(i).screenshot()), f"figure {i} of the {kind} report is blank"
    page.close()


@pytest.mark.parametrize(("kind", "gid"), [("table", "pts-number-done"), ("pareto", "pts-pareto-front")])
def test_hovering_a_point_shows_its_architecture(kind: str, gid: str, reports: dict[str, Path], browser) -> None:
    page, _, _ = _open(browser, reports[kind])
    tip = page.locator("#tip")
    assert not tip.is_visible()
    points = page.locator(f"#{gid} use")
    points.nth(points.count() // 2).hover(force=True)  # a point in the middle: no line or legend drawn over it
    assert tip.is_visible()
    text = tip.inner_text()
    assert re.search(r"\|\w+~0\|\+", text) and "trial" in text
    page.close()


def test_clicking_a_column_sorts_the_rows(reports: dict[str, Path], browser) -> None:
    page, _, _ = _open(browser, reports["table"])
    top = page.locator("#top table")

    def column(name: str) -> list[float]:
        index = [h.strip(" ↕") for h in top.locator("th").all_inner_texts()].index(name)
        cells = top.locator(f"tbody tr td:nth-child({index + 1})")
        return [float(v) for v in cells.evaluate_all("cells => cells.map(c => c.dataset.v)")]

    first = column("val_acc")
    assert first == sorted(first, reverse=True)  # best first as written
    top.locator("th", has_text="trial").click()
    trials = column("trial")
    assert trials == sorted(trials) and trials != column("rank")
    top.locator("th", has_text="val_acc").click()
    assert column("val_acc") == sorted(first)
    page.close()


def test_a_search_with_retrain_shows_both_training_curves(tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["search", "--evaluator", FAULT, "--trials", "3", "--out", str(out), "--retrain", "--retrain-epochs", "1",
            "--batch-size", "256", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert main(["report", str(out)]) == 0
    text = (out / "report.html").read_text()
    assert 'id="retrain"' in text and "the hand-designed baseline CNN" in text
    assert 'data-name="retrain"' in text  # the curves figure

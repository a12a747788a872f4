"""The report of a run directory (a multi-trial search or a one-shot search) and of a strategy benchmark."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.outputs import check_output, check_png_dir, write_file
from archsearch.records import finite_or_none
from archsearch.reporting.figures import (
    anytime_figures,
    history_figure,
    oneshot_figures,
    pareto_figure,
    retrain_figure,
    table_figures,
)
from archsearch.reporting.html import Page, esc, kv_table, table
from archsearch.reporting.rundata import RunData, read_run
from archsearch.spaces import DEFAULT_SPACE

TOP_DRAWN = 8  # the top trials drawn in the table (drawings dominate the page's size)
TOP_LISTED = 50


def build_run_report(run_dir: str | Path, out: str | Path | None = None, png_dir: str | Path | None = None,
                     force: bool = False) -> Path:  # fmt: skip
    """Write the report of ``run_dir`` to ``out`` (default ``<run_dir>/report.html``, rewritten freely); with
    ``png_dir`` every figure is also written there as a PNG. An existing ``out`` is replaced only with ``force``.
    Returns the report's path."""
    data = read_run(run_dir)
    target = check_output(out, force) if out is not None else check_output(data.path / "report.html", force=True)
    check_png_dir(png_dir)
    page = _oneshot_page(data, png_dir) if data.kind == "oneshot" else _search_page(data, png_dir)
    if data.retrain:
        page.section("Retraining beside the baseline", _retrain(page, data.retrain), "retrain")
    return write_file(page.render(), target)


def _stamp(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _versions(data: RunData) -> str:
    v = data.meta.get("versions")
    return "not recorded" if not v else ", ".join(f"{k} {val}" for k, val in v.items())


def _search_page(data: RunData, png_dir: Any) -> Page:
    from archsearch.run_summary import summarize_run

    config = data.config
    obj = config["objective"]
    objective, result = summarize_run(data.path, config, skip_malformed=True)  # rundata notes what it left out
    trials = data.trials
    finished = [t for t in trials if t.status != "running"]
    state = "being written now (the report shows what is recorded)" if data.busy else "not running"
    page = Page(
        f"archsearch report: {config['strategy']} on {config['space']}",
        f"{data.path} · {len(finished)} trials · {state} · written {_stamp(time.time())}",
        png_dir,
    )
    limits = ", ".join(f"{k} <= {v:g}" for k, v in obj["limits"].items()) or "none"
    budget = config["budget"]
    rows = [
        ("space", f"{config['space']} {config.get('space_options') or ''}".strip()),
        ("strategy", f"{config['strategy']} {config.get('strategy_options') or ''}".strip()),
        ("evaluator", config["evaluator"]),
        (
            "objective",
            obj["metric"] + (f"; Pareto front over {', '.join(obj['objectives'])}" if obj["objectives"] else ""),
        ),
        ("constraints", limits),
        ("budget", f"{budget.get('trials', '-')} trials" + (f", {budget['seconds']:g} s" if budget.get("seconds")
                                                             else "")),
        ("used", f"{len(finished)} trials, {finite_or_none(data.progress.get('elapsed')) or 0.0:.1f} s of search time"),
        ("stopped by", result.stop_reason or ("still running" if data.busy else "-")),
        ("seed", config.get("seed")),
        (
            "trials",
            f"{len(result.best)} complete, {result.failed} failed, {result.infeasible} infeasible, "
            f"{result.repeats} proposals answered from the store",
        ),
        (
            "wall time",
            f"{_stamp(min((t.started for t in trials), default=None))} to "
            f"{_stamp(max((t.finished or 0 for t in trials), default=None))}",
        ),
        ("versions", _versions(data)),
    ]
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in data.notes)
    page.section("Summary", kv_table(rows) + notes, "summary")
    if trials:
        history = history_figure(trials, objective.metric, objective.direction(objective.metric))
        page.section("Search history", page.figure(history), "history")
    if len(objective.objectives) >= 2 and result.front:
        front = {t.number for t in result.front}
        winner = result.best[0] if result.best else None
        body = page.figure(pareto_figure(trials, objective.objectives, front, result.hypervolume))
        if winner is not None:
            within = ", ".join(
                f"{k} {winner.metrics.get(k, float('nan')):.4g} (limit {v:g})" for k, v in obj["limits"].items()
            )
            body += f"<p>Winner by {esc(objective.metric)}: trial {winner.number} {esc(within)}</p>"
        page.section("Pareto front", body, "pareto")
    page.section("Top trials", _top_table(page, result.best, objective.metric), "top")
    if result.failures:
        rows_f = [(n, error) for error, n in result.failures]
        page.section("Failed trials by error", table(["trials", "error"], rows_f), "failures")
    return page


def _top_table(page: Page, best: Sequence[Any], metric: str) -> str:
    if not best:
        return "<p>No trial completed.</p>"
    names = [metric] + [m for m in ("params", "flops", "latency_ms", "val_acc", "test_acc", "epochs")
                        if m != metric and any(m in t.metrics for t in best)]  # fmt: skip
    headers = ["rank", "trial", *names, "fidelity", "seconds", "architecture", "drawing"]
    rows = []
    for rank, t in enumerate(best[:TOP_LISTED], start=1):
        drawing = page.drawing(t.genotype, f"trial{t.number}") if rank <= TOP_DRAWN else ""
        values = [t.metrics.get(m, float("nan")) for m in names]
        rows.append(
            [
                rank,
                t.number,
                *values,
                t.fidelity if t.fidelity is not None else "-",
                round(t.seconds, 2),
                str(t.genotype),
                drawing,
            ]
        )
    note = f"<p>The {len(best)} complete trials, best first; the first {TOP_DRAWN} drawn. Click a column to sort.</p>"
    return note + table(headers, rows, raw=[len(headers) - 1])


def _oneshot_page(data: RunData, png_dir: Any) -> Page:
    from archsearch.spaces import get_space

    info = data.oneshot
    config = info.get("config") or {}
    history = data.history
    state = "being written now" if data.busy else "not running"
    page = Page(
        f"archsearch report: one-shot {info.get('method', '?')} on {info.get('space', '?')}",
        f"{data.path} · {len(history)} epochs · {state} · written {_stamp(time.time())}",
        png_dir,
    )
    found = data.meta.get("oneshot_result")
    rows = [
        ("method", info.get("method")),
        ("space", info.get("space")),
        ("supernet", info.get("supernet") or "-"),
        ("data", info.get("data") or "-"),
        ("epochs", f"{len(history)} of {config.get('epochs', '?')}"),
        ("stopped", (found or {}).get("stopped", "not finished")),
        (
            "collapse control",
            "off"
            if not config.get("max_skips") and not config.get("skip_penalty")
            else f"skip penalty {config.get('skip_penalty')}, stop above {config.get('max_skips')} skips",
        ),
        ("seed", config.get("seed")),
        *([("derived architecture in the table", _table_row(found, info))] if found and info.get("table") else []),
        ("search time", f"{sum(float(r.get('seconds', 0.0)) for r in history):.1f} s"),
        ("versions", _versions(data)),
    ]
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in data.notes)
    page.section("Summary", kv_table(rows) + notes, "summary")
    space = get_space(info.get("space", DEFAULT_SPACE))
    if found:
        genotype = space.from_json(found["genotype"])
        page.section(
            "Derived architecture",
            f"<p><code>{esc(genotype)}</code></p>" + page.drawing(genotype, "derived"),
            "derived",
        )
    ops = space.supernet_ops()
    for figure in oneshot_figures(history, ops, config.get("max_skips"), info.get("table")):
        page.section(figure.caption[:1].upper() + figure.caption[1:], page.figure(figure), figure.name)
    columns = list(dict.fromkeys(k for r in history for k in table_figures(r)))
    derived = [(r["epoch"], r.get("skips", "-"), *(table_figures(r).get(c, "-") for c in columns),
                r.get("genotype", "-")) for r in history if "genotype" in r]  # fmt: skip
    if derived:
        headers = ["epoch", "skips", *(f"table: {c}" for c in columns), "architecture"]
        page.section("Derived cells per epoch", table(headers, derived), "per-epoch")
    if data.trials and info.get("method") == "spos":
        complete = sorted((t for t in data.trials if t.status == "complete"), key=lambda t: -(t.score or 0.0))
        page.section("Sub-networks scored with inherited weights", _top_table(page, complete, "val_acc"), "top")
    return page


def _table_row(found: dict[str, Any], info: dict[str, Any]) -> str:
    row, table = table_figures(found), info.get("table")
    where = f" ({table.get('path')})" if isinstance(table, dict) and table.get("path") else ""
    if not row:
        return f"not in the table{where}"
    return "  ".join(f"{k} {v}" for k, v in row.items()) + where


def _retrain(page: Page, retrain: dict[str, Any]) -> str:
    rows = []
    for name in ("winner", "baseline"):
        r = retrain.get(name) or {}
        rows.append(
            (
                name,
                r.get("test_acc", float("nan")),
                r.get("val_acc", float("nan")),
                r.get("params", 0),
                r.get("epochs", 0),
                r.get("seconds", 0.0),
                r.get("precision", "-"),
                r.get("arch", "-"),
            )
        )
    head = ["model", "test_acc", "val_acc", "params", "epochs", "seconds", "precision", "architecture"]
    return table(head, rows, sortable=False) + page.figure(retrain_figure(retrain))


def best_so_far_curves(table_rows: Any, runs: Sequence[Any], queries: int) -> np.ndarray:
    """Seeds x queries: the reported figure of the best-by-signal architecture among the first q evaluated."""
    out = np.full((len(runs), queries), np.nan)
    signal, report = table_rows.signal, table_rows.report
    for i, run in enumerate(runs):
        best_signal, best_reported = -np.inf, np.nan
        for q, arch in enumerate(run.evaluated[:queries]):
            row = table_rows.lookup(arch)
            if row[signal] > best_signal:
                best_signal, best_reported = row[signal], row[report]
            out[i, q] = best_reported
        if run.evaluated:
            out[i, len(run.evaluated) :] = best_reported
    return out


def build_benchmark_report(scores: Sequence[Any], table_rows: Any, queries: int, out: str | Path,
                           png_dir: str | Path | None = None, truth: Any = None) -> Path:  # fmt: skip
    """The strategy benchmark as a page: anytime curves, final distributions and the printed table; with ``truth``
    (the table's true Pareto front) the hypervolume shares by budget and each strategy's median front against the
    true one (``out`` is checked by the caller with :func:`archsearch.outputs.check_output` before the benchmark
    runs)."""
    tables = " + ".join(p.name for p in [table_rows.path, *table_rows.joined])
    page = Page(
        "archsearch strategy benchmark",
        f"{tables} · {queries} queries · {len(scores[0].picks) if scores else 0} seeds · written {_stamp(time.time())}",
        png_dir,
    )
    if truth is not None:
        _pareto_sections(page, scores, truth)
        return write_file(page.render(), out)
    curves = {s.strategy: best_so_far_curves(table_rows, s.runs, queries) for s in scores}
    finals = {s.strategy: list(s.picks) for s in scores}
    rows = [(s.strategy, round(s.mean, 3), round(s.std, 3), len(s.picks), round(s.ms_per_trial, 3), s.repeats)
            for s in scores]  # fmt: skip
    page.section(
        "Strategies",
        f"<p>Each run spends its queries on distinct architectures, picks the one with the best search signal "
        f"({esc(table_rows.signal)}) and reports its {esc(table_rows.report)}.</p>"
        + table(["strategy", "mean", "std", "runs", "ms/trial", "repeats/run"], rows),
        "table",
    )
    for figure in anytime_figures(curves, finals):
        page.section(figure.caption[:1].upper() + figure.caption[1:], page.figure(figure), figure.name)
    return write_file(page.render(), out)


def _pareto_sections(page: Page, scores: Sequence[Any], truth: Any) -> None:
    from archsearch.reporting.figures import benchmark_front_figures

    budgets = sorted(scores[0].shares) if scores else []
    rows = [(s.strategy, *(f"{np.mean(s.shares[b]):.2f} ± {np.std(s.shares[b]):.2f}" for b in budgets))
            for s in scores]  # fmt: skip
    page.section(
        "Hypervolume share",
        f"<p>Each run's front (non-dominated by the search's objectives) is scored on {esc(', '.join(truth.names))}"
        " by its hypervolume as a percentage of the table's true front's, from the true front's nadir "
        f"({esc(', '.join(f'{v:.4g}' for v in truth.reference))}); mean ± std over the seeds, by queries.</p>"
        + table(["strategy", *(f"{b} queries" for b in budgets)], rows),
        "table",
    )
    for figure in benchmark_front_figures(scores, truth):
        page.section(figure.caption[:1].upper() + figure.caption[1:], page.figure(figure), figure.name)

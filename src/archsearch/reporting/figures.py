"""The report's figures (matplotlib): a search's history and Pareto front, a one-shot search's epochs, a retraining's
curves, a strategy benchmark's anytime curves. Each comes with the hover data of its points: a scatter collection
gets an SVG id (``gid``) and the list of what each of its points is, in drawing order, which the page's script shows
on hover."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.objectives import DIRECTIONS
from archsearch.reporting.drawings import pyplot
from archsearch.reporting.plots import alpha_figure
from archsearch.reporting.rundata import TrialRow

BLUE, GREY, RED, ORANGE = "#1f77b4", "#9a9a9a", "#d62728", "#ff7f0e"


@dataclass
class Figure:
    """A figure of the report: its file name, caption, the matplotlib figure and its points' hover data."""

    name: str
    caption: str
    fig: Any
    points: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _hover(t: TrialRow, metric: str) -> dict[str, Any]:
    shown = {k: v for k, v in t.metrics.items() if isinstance(v, (int, float))}
    return {"trial": t.number, "arch": t.arch, "status": t.status, metric: t.metrics.get(metric), **shown}


def _scatter(ax: Any, gid: str, xs: Sequence[float], ys: Sequence[float], fig: Figure, hover: list[dict[str, Any]],
             **style: Any) -> None:  # fmt: skip
    if not xs:
        return
    collection = ax.scatter(xs, ys, **{"zorder": 3, **style})  # points above lines and grid, for hovering
    collection.set_gid(gid)
    fig.points[gid] = hover


def history_figure(trials: Sequence[TrialRow], metric: str, higher: bool | None = None) -> Figure:
    """Each trial's metric against trial number and against time since the run started, the best-so-far line,
    failed and infeasible trials marked along the bottom; multi-fidelity runs coloured by rung (epochs). ``higher``:
    the metric's direction (default: the built-in metric's)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    out = Figure("history", f"{metric} of every trial, best so far as a line", fig)
    higher = DIRECTIONS.get(metric, True) if higher is None else higher
    done = [t for t in trials if t.status == "complete" and metric in t.metrics]
    start = min((t.started for t in trials), default=0.0)
    values = [t.metrics[metric] for t in done]
    floor = min(values) if values else 0.0
    rungs = sorted({t.fidelity for t in done if t.fidelity is not None})
    for ax, axis in zip(axes, ("number", "time")):

        def x_of(t: TrialRow, axis: str = axis) -> float:
            return float(t.number) if axis == "number" else (t.finished or t.started) - start

        if len(rungs) > 1:
            cmap = plt.get_cmap("viridis")
            for k, rung in enumerate(rungs):
                group = [t for t in done if t.fidelity == rung]
                _scatter(ax, f"pts-{axis}-rung{k}", [x_of(t) for t in group], [t.metrics[metric] for t in group], out,
                         [_hover(t, metric) for t in group], s=16, color=cmap(k / max(1, len(rungs) - 1)),
                         label=f"{rung:g} epochs")  # fmt: skip
        else:
            _scatter(ax, f"pts-{axis}-done", [x_of(t) for t in done], values, out, [_hover(t, metric) for t in done],
                     s=16, color=BLUE, label="complete")  # fmt: skip
        ordered = sorted(done, key=x_of)
        best: list[float] = []
        for t in ordered:
            v = t.metrics[metric]
            best.append(v if not best else (max(best[-1], v) if higher else min(best[-1], v)))
        if ordered:
            ax.step([x_of(t) for t in ordered], best, where="post", color=ORANGE, lw=1.6, label="best so far")
        for status, marker, colour in (("failed", "x", RED), ("infeasible", "v", GREY)):
            group = [t for t in trials if t.status == status]
            _scatter(ax, f"pts-{axis}-{status}", [x_of(t) for t in group], [floor] * len(group), out,
                     [{"trial": t.number, "arch": t.arch, "status": status, "error": t.error} for t in group],
                     marker=marker, s=26, color=colour, label=status)  # fmt: skip
        ax.set_xlabel("trial" if axis == "number" else "seconds since the run started")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(metric)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return out


def pareto_figure(trials: Sequence[TrialRow], objectives: Sequence[str], front_numbers: set[int],
                  hypervolume: float | None) -> Figure:  # fmt: skip
    """Every complete trial in the plane of the first two objectives, the Pareto front joined."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    a, b = objectives[0], objectives[1]
    hv = "" if hypervolume is None else f", hypervolume {hypervolume:.4g}"
    out = Figure("pareto", f"Pareto front over {a} and {b}{hv}", fig)
    usable = [t for t in trials if t.status == "complete" and a in t.metrics and b in t.metrics]
    rest = [t for t in usable if t.number not in front_numbers]
    front = sorted((t for t in usable if t.number in front_numbers), key=lambda t: t.metrics[a])
    _scatter(ax, "pts-pareto-rest", [t.metrics[a] for t in rest], [t.metrics[b] for t in rest], out,
             [_hover(t, a) for t in rest], s=14, color=GREY, label="trials")  # fmt: skip
    if front:
        ax.plot([t.metrics[a] for t in front], [t.metrics[b] for t in front], color=ORANGE, lw=1.2, zorder=1)
    _scatter(ax, "pts-pareto-front", [t.metrics[a] for t in front], [t.metrics[b] for t in front], out,
             [_hover(t, a) for t in front], s=30, color=ORANGE, label="Pareto front", zorder=2)  # fmt: skip
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    if b in ("params", "flops") and usable:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(out.caption, fontsize=10)
    fig.tight_layout()
    return out


def oneshot_figures(history: Sequence[dict[str, Any]], op_names: Sequence[str], max_skips: int | None,
                    table: dict[str, Any] | None = None) -> list[Figure]:  # fmt: skip
    """Alpha evolution of every edge, op frequency of the derived cells per epoch, skip connections against the
    collapse limit, losses and accuracies per epoch, and (``table``: the run's table, its columns and highest
    values) the derived cell's figures in that table per epoch."""
    plt = pyplot()
    figures = []
    cell_types = sorted({c for r in history for c in r.get("probabilities", {})})
    for cell_type in cell_types:
        name = f"alphas_{cell_type}"
        label = "the cell" if cell_type == "cell" else f"the {cell_type} cell"
        figures.append(Figure(name, f"{label}: softmaxed architecture weights of every edge per epoch",
                              alpha_figure(history, op_names, cell_type)))  # fmt: skip
    epochs = [r["epoch"] for r in history]
    marker = "." if len(epochs) <= 12 else None  # markers on every epoch of a long run only add ink (and bytes)
    if any("genotype" in r for r in history):
        fig, ax = plt.subplots(figsize=(7, 3.4))
        counts = [Counter(_ops_of(r.get("genotype", ""), op_names)) for r in history]
        for op in op_names:
            ax.plot(epochs, [c.get(op, 0) for c in counts], marker=marker, label=op)
        ax.set_xlabel("epoch")
        ax.set_ylabel("edges of the derived cells")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.append(Figure("op_frequency", "ops of the cells derived after each epoch", fig))
    if any("skips" in r for r in history):
        fig, ax = plt.subplots(figsize=(6, 3))
        skips = [r.get("skips", math.nan) for r in history]
        ax.plot(epochs, skips, marker=marker, color=BLUE, label="skip connections")
        if max_skips is not None:
            ax.axhline(max_skips, color=RED, ls="--", lw=1, label=f"collapse limit ({max_skips})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("skips in the normal cell")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.append(Figure("skips", "skip connections of the derived normal cell against the collapse limit", fig))
    if history:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
        for key, label in (("train_loss", "train"), ("val_loss", "validation")):
            left.plot(epochs, [_num(r.get(key)) for r in history], marker=marker, label=label)
        for key, label in (("train_acc", "train"), ("val_acc", "validation")):
            right.plot(epochs, [_num(r.get(key)) for r in history], marker=marker, label=label)
        left.set_ylabel("loss")
        right.set_ylabel("accuracy (%)")
        for ax in (left, right):
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.append(
            Figure("losses", "losses and accuracies per epoch (weights on one half, alphas on the other)", fig)
        )
    if any(table_figures(r) for r in history):
        figures.append(_table_figure(history, table, marker))
    if any(latency_figures(r) for r in history):
        figures.append(_latency_figure(history, marker))
    from matplotlib.ticker import MaxNLocator

    for figure in figures:  # epochs are whole numbers
        for ax in figure.fig.axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figures


def table_figures(record: dict[str, Any]) -> dict[str, float]:
    """The numeric table figures a stored epoch record holds (none when the field is missing or malformed)."""
    row = record.get("table")
    if not isinstance(row, dict):
        return {}
    return {str(k): float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def latency_figures(record: dict[str, Any]) -> dict[str, float]:
    """The numeric latency figures a stored epoch record holds under a latency target (none when missing)."""
    row = record.get("latency")
    if not isinstance(row, dict):
        return {}
    return {str(k): float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _latency_figure(history: Sequence[dict[str, Any]], marker: str | None) -> Figure:
    """Under a latency target: the supernet's expected latency, the derived network's predicted and measured
    latency per epoch against the target, and the penalty's multiplier."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    epochs = [r["epoch"] for r in history]
    rows = [latency_figures(r) for r in history]
    for key, label, colour in (("expected_ms", "supernet, expected", BLUE), ("predicted_ms", "derived, predicted",
                               ORANGE), ("measured_ms", "derived, measured", GREY)):  # fmt: skip
        ax.plot(epochs, [row.get(key, math.nan) for row in rows], marker=marker, color=colour, label=label)
    targets = {row["target_ms"] for row in rows if "target_ms" in row}
    for target in sorted(targets):
        ax.axhline(target, color=RED, ls="--", lw=1, label=f"target ({target:g} ms)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("latency (ms)")
    right = ax.twinx()
    right.plot(epochs, [row.get("multiplier", math.nan) for row in rows], color="black", lw=0.8, ls=":",
               label="multiplier")  # fmt: skip
    right.set_ylabel("penalty multiplier")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Figure("latency", "latency per epoch against the target: the supernet's expectation, the derived "
                  "network predicted and measured, and the penalty's multiplier", fig)


def _table_figure(history: Sequence[dict[str, Any]], table: Any, marker: str | None) -> Figure:
    """The table's accuracies of the cell derived after each epoch (the NAS-Bench-201 protocol's curves), with each
    column's highest value in the table dashed."""
    plt = pyplot()
    rows = [table_figures(r) for r in history]
    found = list(dict.fromkeys(k for row in rows for k in row))
    columns = [c for c in found if "acc" in c] or found
    highest = table.get("max") if isinstance(table, dict) else None
    fig, ax = plt.subplots(figsize=(7, 3.4))
    epochs = [r["epoch"] for r in history]
    for column in columns:
        (line,) = ax.plot(epochs, [_num(row.get(column)) for row in rows], marker=marker, label=column)
        top = highest.get(column) if isinstance(highest, dict) else None
        if isinstance(top, (int, float)):
            ax.axhline(top, color=line.get_color(), ls="--", lw=0.8, label=f"{column}: table's best {top:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("in the table")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return Figure("table", "the table's figures of the cell derived after each epoch (never seen by the search)", fig)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _ops_of(genotype_text: str, op_names: Sequence[str]) -> list[str]:
    import re

    names = "|".join(sorted(map(re.escape, op_names), key=len, reverse=True))
    return re.findall(names, genotype_text) if names else []


def retrain_figure(retrain: dict[str, Any]) -> Figure:
    """The winner's and the baseline's training curves side by side (validation accuracy, training loss)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, colour in (("winner", BLUE), ("baseline", GREY)):
        history = (retrain.get(name) or {}).get("history") or []
        epochs = [h["epoch"] for h in history]
        left.plot(epochs, [h["val_acc"] for h in history], marker=".", color=colour, label=name)
        right.plot(epochs, [h["train_loss"] for h in history], marker=".", color=colour, label=name)
    left.set_ylabel("validation accuracy (%)")
    right.set_ylabel("training loss")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return Figure("retrain", "the winner and the hand-designed baseline CNN retrained at the same budget", fig)


def anytime_figures(curves: dict[str, np.ndarray], finals: dict[str, list[float]]) -> list[Figure]:
    """A strategy benchmark: mean and a band of one standard deviation of the best-so-far reported figure against
    queries, over the seeds (``curves[name]`` is seeds x queries); the final figures per strategy as box plots."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    cmap = plt.get_cmap("tab10")
    for k, (name, runs) in enumerate(curves.items()):
        mean, std = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0)
        q = np.arange(1, runs.shape[1] + 1)
        ax.plot(q, mean, color=cmap(k % 10), lw=1.5, label=name)
        ax.fill_between(q, mean - std, mean + std, color=cmap(k % 10), alpha=0.15)
    ax.set_xlabel("queries")
    ax.set_ylabel("reported accuracy of the best so far (%)")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    tops = [np.nanmean(r, axis=0)[-1] for r in curves.values() if r.size]
    if tops:
        ax.set_ylim(min(np.nanmean(r, axis=0)[min(9, r.shape[1] - 1)] for r in curves.values()) - 0.5, max(tops) + 0.6)
    fig.tight_layout()
    anytime = Figure("anytime", "best-so-far reported accuracy against queries: mean and one standard deviation", fig)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    names = list(finals)
    ax.boxplot([finals[n] for n in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("reported accuracy of the pick (%)")
    ax.tick_params(axis="x", rotation=30)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return [anytime, Figure("final", "the pick's reported accuracy per strategy over the seeds", fig)]


def benchmark_front_figures(scores: Sequence[Any], truth: Any) -> list[Figure]:
    """A multi-objective benchmark: each strategy's median-seed front against the table's true front, and the mean
    hypervolume share against queries."""
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    a, b = truth.names
    order = np.argsort(truth.points[:, 0])
    ax.step(truth.points[order, 0], truth.points[order, 1], where="pre", color="black", lw=1.2, label="true front")
    for k, s in enumerate(scores):
        pts = np.array(s.median_front, dtype=float).reshape(-1, 2)
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=14, color=cmap(k % 10), label=f"{s.strategy} (median seed)", zorder=3)
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fronts = Figure("fronts", f"each strategy's front (its median seed) against the true front on {a} and {b}", fig)
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for k, s in enumerate(scores):
        budgets = sorted(s.shares)
        mean = [float(np.mean(s.shares[q])) for q in budgets]
        ax.plot(budgets, mean, marker="o", color=cmap(k % 10), label=s.strategy)
    ax.set_xlabel("queries")
    ax.set_ylabel("hypervolume, % of the true front's")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [fronts, Figure("hv-anytime", "mean hypervolume share against queries", fig)]

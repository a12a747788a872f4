"""Plots of a one-shot search (matplotlib, written as PNG files): how the softmaxed alphas of chosen edges evolve
over the epochs, and which ops the derived cells use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    from archsearch.reporting.drawings import pyplot

    return pyplot()


def threshold_epochs(
    history: Sequence[dict[str, Any]], cell_type: str, threshold: float = 0.6
) -> dict[int, int | None]:
    """Per edge, the first epoch at which its largest softmaxed alpha passes ``threshold`` (``None``: never)."""
    out: dict[int, int | None] = {}
    for record in history:
        probs = record.get("probabilities", {}).get(cell_type)
        if probs is None:
            continue
        for edge, row in enumerate(probs):
            out.setdefault(edge, None)
            if out[edge] is None and max(row) > threshold:
                out[edge] = int(record["epoch"])
    return out


def plot_alpha_evolution(
    history: Sequence[dict[str, Any]],
    op_names: Sequence[str],
    path: str | Path,
    cell_type: str,
    edges: Sequence[int] | None = None,
    edge_labels: Sequence[str] | None = None,
) -> Path:
    """One panel per edge of ``cell_type`` (all, or ``edges``): each op's softmaxed weight per epoch, as a PNG."""
    return _save(alpha_figure(history, op_names, cell_type, edges, edge_labels), path)


def _save(fig: Any, path: str | Path) -> Path:
    import io

    from archsearch.outputs import write_file

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    _pyplot().close(fig)
    return write_file(buffer.getvalue(), path)


def alpha_figure(
    history: Sequence[dict[str, Any]],
    op_names: Sequence[str],
    cell_type: str,
    edges: Sequence[int] | None = None,
    edge_labels: Sequence[str] | None = None,
) -> Any:
    """The figure of :func:`plot_alpha_evolution`."""
    records = [r for r in history if cell_type in r.get("probabilities", {})]
    if not records:
        raise ValueError(f"the history holds no architecture weights for cell type {cell_type!r}")
    num_edges = len(records[0]["probabilities"][cell_type])
    chosen = list(range(num_edges)) if edges is None else list(edges)
    for e in chosen:
        if not 0 <= e < num_edges:
            raise ValueError(f"edge {e} out of range (the {cell_type} cell has edges 0..{num_edges - 1})")
    plt = _pyplot()
    cols = min(4, len(chosen))
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True)
    epochs = [r["epoch"] for r in records]
    marker = "." if len(epochs) <= 12 else None  # markers on every epoch of a long run only add ink (and bytes)
    shown = [r["probabilities"][cell_type][e][k] for r in records for e in chosen for k in range(len(op_names))]
    uniform = 1.0 / len(op_names)
    low, high = min([*shown, uniform]), max([*shown, uniform])
    margin = max(0.01, 0.08 * (high - low))  # the axis follows the data, so small movements show
    for ax, e in zip(axes.flat, chosen):
        for k, op in enumerate(op_names):
            ax.plot(epochs, [r["probabilities"][cell_type][e][k] for r in records], label=op, marker=marker)
        ax.axhline(uniform, color="black", lw=0.7, ls=":")
        if low - margin < 0.6 < high + margin:
            ax.axhline(0.6, color="grey", lw=0.6, ls="--")
        ax.set_ylim(low - margin, high + margin)
        ax.set_title(edge_labels[e] if edge_labels else f"edge {e}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in list(axes.flat)[len(chosen) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel(f"softmax(alpha); dotted: uniform {uniform:.3g}")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=len(op_names), fontsize=8)
    fig.suptitle(f"{_cell_name(cell_type)}: architecture weights per epoch")
    # margins in inches (title, legend, the y label) rather than tight_layout, which measures every tick label of
    # every panel and took most of the plot's time for a DARTS cell's 14 panels
    width, height = 3.2 * cols, 2.6 * rows
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.1 / width, top=1 - 0.55 / height, bottom=0.75 / height,
                        wspace=0.08, hspace=0.55)  # fmt: skip
    return fig


def plot_op_frequency(cells: dict[str, Sequence[str]], op_names: Sequence[str], path: str | Path) -> Path:
    """Bar charts of how often each op appears in each derived cell (``cells``: cell name -> its ops), as a PNG."""
    return _save(op_frequency_figure(cells, op_names), path)


def op_frequency_figure(cells: dict[str, Sequence[str]], op_names: Sequence[str]) -> Any:
    """The figure of :func:`plot_op_frequency`."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(cells), figsize=(4.5 * len(cells), 3.2), squeeze=False)
    for ax, (name, ops) in zip(axes.flat, cells.items()):
        counts = Counter(ops)
        ax.bar(range(len(op_names)), [counts.get(op, 0) for op in op_names])
        ax.set_xticks(range(len(op_names)), op_names, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{name} cell")
        ax.set_ylabel("edges")
    fig.tight_layout()
    return fig


def alpha_separation(history: Sequence[dict[str, Any]], threshold: float = 0.6) -> list[str]:
    """In words, how far the softmaxed alphas of the last epoch separated from uniform, per cell type."""
    last = history[-1].get("probabilities") if history else None
    if not last:
        return []
    lines = []
    for cell_type, rows in sorted(last.items()):
        tops = [max(row) for row in rows]
        uniform = 1.0 / len(rows[0])
        mean = sum(tops) / len(tops)
        name = _cell_name(cell_type)
        if max(tops) - uniform < 0.05:
            lines.append(
                f"{name}: top weight {mean:.3f} on average (at most {max(tops):.3f}) against {uniform:.3f} uniform: "
                f"the alphas have hardly moved, so the derived {'network' if cell_type == 'layer' else 'cell'} is "
                "close to random; train longer or raise "
                "--alpha-lr"
            )
            continue
        passed = {e: ep for e, ep in threshold_epochs(history, cell_type, threshold).items() if ep is not None}
        first = f", the first after epoch {min(passed.values())}" if passed else ""
        lines.append(
            f"{name}: top weight {mean:.3f} on average (at most {max(tops):.3f}) against {uniform:.3f} uniform; "
            f"{len(passed)} of {len(tops)} {'slots' if cell_type == 'layer' else 'edges'} passed {threshold}{first}"
        )
    return lines


def _cell_name(cell_type: str) -> str:
    """'normal cell', 'reduce cell', 'the cell' for a space with one cell type (not 'cell cell'), or 'the layers'
    for a block supernet's slots."""
    if cell_type == "layer":
        return "the layers"
    return "the cell" if cell_type == "cell" else f"{cell_type} cell"


def genotype_cells(genotype: Any) -> dict[str, list[str]]:
    """The ops of each cell of a DARTS or NB201 genotype (of a mobile one: its layers' blocks, as one "cell")."""
    if hasattr(genotype, "stages"):
        return {"layer": [layer.text() for stage in genotype.stages for layer in stage]}
    if hasattr(genotype, "normal"):
        return {"normal": [op for op, _ in genotype.normal], "reduce": [op for op, _ in genotype.reduce]}
    return {"cell": list(genotype.ops)}

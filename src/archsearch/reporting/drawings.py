"""Drawings of architectures, in the style of DARTS's cell figures: each space lays its genotypes out as data
(:mod:`archsearch.spaces.drawing`: cells as DAGs with edges labelled by op, networks as stacks of layers with their
skip connections, MobileNet-style stages), and this module renders those layouts. Drawn with matplotlib, so one
drawing gives SVG (inline in reports) and PNG (for papers); no Graphviz needed.

The layout is fixed by the cell's structure (inputs left, intermediate nodes in order, output right), which for
cells of a handful of nodes reads as clearly as Graphviz's left-to-right layout.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.outputs import write_file
from archsearch.spaces import SPACES, Space, get_space
from archsearch.spaces.drawing import Dag, LayerStack, Layout, TwoInputCell

OP_COLOURS = {
    "none": "#bbbbbb",
    "skip_connect": "#1f77b4",
    "avg_pool_3x3": "#2ca02c",
    "max_pool_3x3": "#17becf",
    "nor_conv_1x1": "#ff7f0e",
    "nor_conv_3x3": "#d62728",
    "sep_conv_3x3": "#d62728",
    "sep_conv_5x5": "#9467bd",
    "dil_conv_3x3": "#ff7f0e",
    "dil_conv_5x5": "#8c564b",
}
NODE = {"boxstyle": "round,pad=0.35", "fc": "#eef3fb", "ec": "#35507a", "lw": 1.2}
IO_NODE = {"boxstyle": "round,pad=0.35", "fc": "#d9ead3", "ec": "#38761d", "lw": 1.2}
OUT_NODE = {"boxstyle": "round,pad=0.35", "fc": "#fde9d9", "ec": "#a64d1d", "lw": 1.2}


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed), with math text off: labels hold stored text (op
    and metric names), which must show as written, never be parsed (``$\\frac{$`` would fail the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _edge(
    ax: Any,
    a: tuple[float, float],
    b: tuple[float, float],
    op: str,
    bend: float,
    at: float = 0.5,
    placed: list[tuple[float, float]] | None = None,
) -> None:
    """An arrow from ``a`` to ``b`` bent by ``bend`` (matplotlib's arc3), its op written at fraction ``at`` of it, or,
    when ``placed`` lists the labels already written, at the fraction near ``at`` that keeps clear of them."""
    colour = OP_COLOURS.get(op, "#444444")
    dashed = op == "none"
    ax.annotate(
        "", xy=b, xytext=a,
        arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.0 if dashed else 1.6, "ls": "--" if dashed else "-",
                    "connectionstyle": f"arc3,rad={bend}", "shrinkA": 14, "shrinkB": 14},
    )  # fmt: skip
    # the point at ``at`` on arc3's quadratic Bezier curve, whose control point is the midpoint moved sideways
    dx, dy = b[0] - a[0], b[1] - a[1]
    cx, cy = (a[0] + b[0]) / 2 + bend * dy, (a[1] + b[1]) / 2 - bend * dx

    def point(t: float) -> tuple[float, float]:
        u = 1 - t
        return u * u * a[0] + 2 * u * t * cx + t * t * b[0], u * u * a[1] + 2 * u * t * cy + t * t * b[1]

    lx, ly = point(at)
    if placed is not None:
        candidates = [point(t) for t in (at, at - 0.15, at + 0.15, at - 0.27, at + 0.25, at - 0.37)]

        def clearance(p: tuple[float, float]) -> float:  # label boxes are about 1.1 wide and 0.25 high
            return min((max(abs(p[0] - q[0]) / 1.1, abs(p[1] - q[1]) / 0.28) for q in placed), default=9.0)

        lx, ly = next((p for p in candidates if clearance(p) >= 1.0), max(candidates, key=clearance))
        placed.append((lx, ly))
    ax.text(lx, ly, op, fontsize=7.5, ha="center", va="center", color=colour, zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})  # fmt: skip


def _node(ax: Any, xy: tuple[float, float], text: str, style: dict[str, Any]) -> None:
    ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=9, bbox=style, zorder=3)


def _frame(plt: Any, width: float, height: float, title: str | None) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_axis_off()
    ax.set_aspect("equal")  # arc3 bends in display space: equal scales put the labels on the arcs
    if title:
        ax.set_title(title, fontsize=10)
    return fig, ax


def _dag_bend(to: int, frm: int) -> float:
    """How much an edge of a row of nodes bends: neighbours straight, longer edges arched above and below in turn
    (the layout of NAS-Bench-201's figures for its 4-node cell)."""
    if to - frm == 1:
        return 0.0
    return (-1.0 if frm % 2 == 0 else 1.0) * (0.45 if to - frm == 2 else 0.42)


def draw_dag(dag: Dag, title: str | None = None) -> Any:
    """A cell as a row of nodes, input 0 to output n-1, an edge labelled by its op from node to node (``none``
    edges dashed: they carry nothing)."""
    plt = pyplot()
    last = dag.nodes - 1
    fig, ax = _frame(plt, 1.6 * dag.nodes, 3.6, title)
    pos = {n: (1.3 * n, 0.0) for n in range(dag.nodes)}
    for to, frm, op in dag.edges:
        _edge(ax, pos[frm], pos[to], op, _dag_bend(to, frm))
    for n, xy in pos.items():
        text, style = {0: ("in 0", IO_NODE), last: (f"out {last}", OUT_NODE)}.get(n, (str(n), NODE))
        _node(ax, xy, text, style)
    ax.set_xlim(-0.5, 1.3 * last + 0.5)
    ax.set_ylim(-1.3, 1.45)
    fig.tight_layout()
    return fig


def draw_darts_cell(cell: Sequence[tuple[str, int]], concat: Sequence[int], title: str | None = None) -> Any:
    """One DARTS cell laid out as DARTS's figures are: inputs c_{k-2} and c_{k-1} on the left, the intermediate
    nodes 0..n-1 in a column (two inputs each, edges labelled by op), and on the right the output c_{k}, which
    concatenates the nodes in ``concat``."""
    plt = pyplot()
    steps = len(cell) // 2
    fig, ax = _frame(plt, 6.0, 0.4 + 1.5 * steps, title)
    ys = [1.5 * (steps - 1) / 2 - 1.5 * k for k in range(steps)]
    pos: dict[int, tuple[float, float]] = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for k in range(steps):
        pos[k + 2] = (2.6, ys[k])
    out = (5.0, 0.0)
    placed: list[tuple[float, float]] = []
    for k in range(steps):
        pair = cell[2 * k : 2 * k + 2]
        same = pair[0][1] == pair[1][1]
        for n, (op, j) in enumerate(pair):
            a, b = pos[j], pos[k + 2]
            if j >= 2:  # from an earlier intermediate node: an arc on the column's right
                _edge(ax, a, b, op, -0.4 - 0.2 * n, at=0.5, placed=placed)
            else:
                _edge(ax, a, b, op, (0.15 if n == 0 else -0.15) if same else 0.0, at=0.6, placed=placed)
    for n in concat:
        ax.annotate("", xy=out, xytext=pos[n], arrowprops={"arrowstyle": "-|>", "color": "#999999", "lw": 0.9,
                                                           "shrinkA": 12, "shrinkB": 16})  # fmt: skip
    _node(ax, pos[0], "c_{k-2}", IO_NODE)
    _node(ax, pos[1], "c_{k-1}", IO_NODE)
    for k in range(steps):
        _node(ax, pos[k + 2], str(k), NODE)
    _node(ax, out, "c_{k}", OUT_NODE)
    ax.set_xlim(-0.7, out[0] + 0.6)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    fig.tight_layout()
    return fig


def draw_stack(stack: LayerStack, title: str | None = None) -> Any:
    """A network top to bottom: input, one box per layer, the head (if any), and each extra connection as an arc
    from the layer it leaves to the layer it joins (merged as the stack says)."""
    plt = pyplot()
    layers = stack.layers
    fig, ax = _frame(plt, 4.6, 0.9 + 0.55 * (len(layers) + 2), title)
    y = {i: -(i + 1) * 1.0 for i in range(len(layers))}
    _node(ax, (0.0, 0.0), "input", IO_NODE)
    for i, text in enumerate(layers):
        _node(ax, (0.0, y[i]), text, NODE)
        ax.annotate("", xy=(0.0, y[i]), xytext=(0.0, y[i] + 1.0),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "shrinkA": 9, "shrinkB": 9})  # fmt: skip
    for j, i in stack.skips:
        ax.annotate("", xy=(0.55, y[i]), xytext=(0.55, y[j]),
                    arrowprops={"arrowstyle": "-|>", "color": "#1f77b4", "lw": 1.3, "shrinkA": 4, "shrinkB": 4,
                                "connectionstyle": f"arc3,rad=-{0.25 + 0.05 * (i - j)}"})  # fmt: skip
    end = -(len(layers) + 1) * 1.0 if stack.head else y.get(len(layers) - 1, 0.0)
    if stack.head:
        _node(ax, (0.0, end), stack.head, OUT_NODE)
        ax.annotate("", xy=(0.0, end), xytext=(0.0, end + 1.0),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "shrinkA": 9, "shrinkB": 9})  # fmt: skip
    if stack.skips:
        ax.text(1.55, 0.0, f"skips ({stack.merge})", color="#1f77b4", fontsize=8, ha="center")
    ax.set_xlim(-1.6, 2.0)
    ax.set_ylim(end - 0.6, 0.6)
    fig.tight_layout()
    return fig


BLOCK_COLOURS = {"identity": "#eeeeee", "3": "#fde9d9", "6": "#f4b183", "1": "#d9ead3"}


def draw_stages(stages: Sequence[Sequence[str]], title: str | None = None) -> Any:
    """A MobileNet-style network top to bottom: stem, one box per block (``MB<expansion> K<kernel>[ SE]`` or
    ``identity``), shaded by expansion, its stage written beside it, then the head."""
    plt = pyplot()
    rows = [(i, label) for i, stage in enumerate(stages) for label in stage]
    fig, ax = _frame(plt, 4.2, 1.0 + 0.5 * (len(rows) + 2), title)
    _node(ax, (0.0, 0.0), "stem conv 3x3", IO_NODE)
    y, previous = 0.0, None
    for stage, label in rows:
        y -= 0.9
        kind = "identity" if label == "identity" else label.split()[0].removeprefix("MB")
        style = {**NODE, "fc": BLOCK_COLOURS.get(kind, NODE["fc"])}
        _node(ax, (0.0, y), label, style)
        ax.annotate("", xy=(0.0, y), xytext=(0.0, y + 0.9),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "shrinkA": 9, "shrinkB": 9})  # fmt: skip
        if stage != previous:
            ax.text(-1.5, y, f"stage {stage}", fontsize=8, color="#35507a", ha="left", va="center")
            previous = stage
    y -= 0.9
    _node(ax, (0.0, y), "1x1 conv, pool, linear", OUT_NODE)
    ax.annotate("", xy=(0.0, y), xytext=(0.0, y + 0.9),
                arrowprops={"arrowstyle": "-|>", "color": "#555555", "shrinkA": 9, "shrinkB": 9})  # fmt: skip
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(y - 0.6, 0.6)
    fig.tight_layout()
    return fig


def render(layout: Layout, title: str | None = None) -> Any:
    """The matplotlib figure of one layout."""
    if isinstance(layout, Dag):
        return draw_dag(layout, title)
    if isinstance(layout, TwoInputCell):
        return draw_darts_cell(layout.edges, layout.concat, title)
    if isinstance(layout, LayerStack):
        return draw_stack(layout, title)
    return draw_stages(layout.stages, title)


def draw(genotype: Any, space: Space[Any] | None = None) -> list[tuple[str, Any]]:
    """Figures of an architecture in any registered space, as the space lays it out (:meth:`Space.drawings`):
    ``[(part, figure), ...]`` (DARTS: its normal and reduction cells)."""
    if space is None:
        name = getattr(genotype, "space", None)
        if name not in SPACES:
            raise ArchsearchError(f"no drawing for space {name!r}: it is not registered in this process "
                                  f"(registered: {', '.join(SPACES)})")  # fmt: skip
        space = get_space(name)
    return [(d.part, render(d.layout, d.title)) for d in space.drawings(genotype)]


def save_figure(fig: Any, path: str | Path, dpi: int = 150) -> Path:
    """Write the figure as SVG or PNG (by the file's suffix) and close it."""
    out = Path(path)
    if out.suffix.lower() not in (".svg", ".png"):
        raise ArchsearchError(f"{out}: a drawing is written as .svg or .png")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=out.suffix.lower()[1:], dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return write_file(buffer.getvalue(), out)

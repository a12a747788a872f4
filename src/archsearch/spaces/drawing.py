"""What a drawing of an architecture shows, as data. Each space says how its genotypes are laid out
(:meth:`archsearch.Space.drawings`); the report and ``archsearch draw`` render these layouts with matplotlib
(:mod:`archsearch.reporting.drawings`), so a space of your own is drawn without drawing code of its own."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dag:
    """A cell whose nodes stand in a row, input first and output last, every edge labelled by its op
    (NAS-Bench-201's cells); ``edges`` are (to, from, op)."""

    nodes: int
    edges: tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class TwoInputCell:
    """A DARTS cell: inputs c_{k-2} and c_{k-1}, intermediate nodes with two (op, input) edges each, and the output
    that concatenates the nodes in ``concat``."""

    edges: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]


@dataclass(frozen=True)
class LayerStack:
    """A network top to bottom: the input, one box per layer, the head (none when empty), and extra connections
    (from, to) drawn as arcs, merged as ``merge`` says."""

    layers: tuple[str, ...]
    skips: tuple[tuple[int, int], ...] = ()
    merge: str = ""
    head: str = "pool + linear"


@dataclass(frozen=True)
class Stages:
    """A MobileNet-style network: stem, the blocks of each stage (``MB<expansion> K<kernel>[ SE]`` or ``identity``),
    then the head."""

    stages: tuple[tuple[str, ...], ...]


Layout = Dag | TwoInputCell | LayerStack | Stages


@dataclass(frozen=True)
class Drawing:
    """One figure of an architecture: its part's name (a file suffix when there are several), title and layout."""

    part: str
    title: str
    layout: Layout

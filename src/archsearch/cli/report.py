"""``archsearch report`` (a self-contained HTML page of a run, rewritten while it runs with ``--watch``) and
``archsearch draw`` (one architecture as SVG or PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archsearch.cli.common import emit, read_archs
from archsearch.errors import ArchsearchError
from archsearch.rundir import is_busy
from archsearch.spaces import SPACES


def cmd_report(args: argparse.Namespace) -> None:
    """Write the run's report (and its figures as PNGs with --png); with --watch, rewrite it while the run goes."""
    import time

    from archsearch.report.html import watch
    from archsearch.report.run_report import build_run_report

    def build() -> Path:
        start = time.perf_counter()
        path = build_run_report(args.run, args.out, args.png)
        build.seconds = time.perf_counter() - start  # type: ignore[attr-defined]
        return path

    def written(path: Path) -> None:
        size = path.stat().st_size
        emit(
            args,
            {"report": str(path), "bytes": size, "seconds": round(build.seconds, 3), "png": args.png},  # type: ignore[attr-defined]
            f"wrote {path} ({size / 1024:.0f} KiB in {build.seconds:.1f}s)"  # type: ignore[attr-defined]
            + (f"; figures as PNG in {args.png}" if args.png else ""),
        )

    if args.watch:
        watch(build, lambda: is_busy(args.run), 5.0 if args.every is None else args.every, written)
    else:
        if args.every is not None:
            raise ArchsearchError("--every sets how often --watch rewrites the report; it needs --watch")
        written(build())


def cmd_draw(args: argparse.Namespace) -> None:
    """Draw one architecture: ``--out cell.svg`` (DARTS: ``cell_normal.svg`` and ``cell_reduce.svg``)."""
    from archsearch.report.drawings import draw, save_figure

    archs = list(read_archs([args.arch], args.space))
    if len(archs) != 1:
        raise ArchsearchError(f"draw takes one architecture, got {len(archs)}")
    _, genotype = archs[0]
    out = Path(args.out)
    if out.suffix.lower() not in (".svg", ".png"):
        raise ArchsearchError(f"{out}: --out must end in .svg or .png")
    figures = draw(genotype)
    written = []
    for part, fig in figures:
        path = out if len(figures) == 1 else out.with_name(f"{out.stem}_{part}{out.suffix}")
        written.append(str(save_figure(fig, path)))
    emit(args, {"arch": str(genotype), "files": written}, "\n".join(f"wrote {w}" for w in written))


def add_report_commands(command: Any) -> None:
    """Register report and draw with the ``command`` factory of the main parser."""
    p = command("report", cmd_report, "write a self-contained HTML report of a run directory")
    p.add_argument("run", help="a run directory (a search or a one-shot search)")
    p.add_argument("--out", help="the HTML file (default: RUN/report.html)")
    p.add_argument("--png", metavar="DIR", help="also write every figure as a PNG into DIR")
    p.add_argument("--watch", action="store_true", help="rewrite the report while a process writes the run")
    p.add_argument("--every", type=float, help="seconds between rewrites with --watch (default 5)")
    p.set_defaults(every=None)

    p = command("draw", cmd_draw, "draw an architecture as SVG or PNG (cells as DAGs, chains as layer stacks)")
    p.add_argument("arch", metavar="ARCH", help="an architecture, as `archsearch cost` takes it")
    p.add_argument("--space", choices=SPACES.names(), help="require the architecture to be of this space")
    p.add_argument("--out", required=True, help="cell.svg or cell.png (DARTS writes _normal and _reduce files)")

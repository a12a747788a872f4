"""``archsearch report`` (a self-contained HTML page of a run, rewritten while it runs with ``--watch``) and
``archsearch draw`` (one architecture as SVG or PNG)."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch import api
from archsearch.cli.common import emit, read_archs
from archsearch.errors import ArchsearchError
from archsearch.options import finite_float
from archsearch.spaces import SPACES


def cmd_report(args: argparse.Namespace) -> None:
    """Write the run's report (and its figures as PNGs with --png); with --watch, rewrite it while the run goes."""

    def written(report: api.ReportFile) -> None:
        emit(args, report.to_json(), f"wrote {report.path} ({report.bytes / 1024:.0f} KiB in {report.seconds:.1f}s)"
             + (f"; figures as PNG in {report.png}" if report.png else ""))  # fmt: skip

    if args.watch:
        api.watch_report(args.run, args.out, args.png, every=5.0 if args.every is None else args.every,
                         on_write=written, force=args.force)  # fmt: skip
    else:
        if args.every is not None:
            raise ArchsearchError("--every sets how often --watch rewrites the report; it needs --watch")
        written(api.report(args.run, args.out, args.png, force=args.force))


def cmd_draw(args: argparse.Namespace) -> None:
    """Draw one architecture: ``--out cell.svg`` (DARTS: ``cell_normal.svg`` and ``cell_reduce.svg``)."""
    archs = list(read_archs([args.arch], args.space))
    if len(archs) != 1:
        raise ArchsearchError(f"draw takes one architecture, got {len(archs)}")
    drawing = api.draw(archs[0][1], args.out, force=args.force)
    emit(args, drawing.to_json(), "\n".join(f"wrote {w}" for w in drawing.files))


def add_report_commands(command: Any) -> None:
    """Register report and draw with the ``command`` factory of the main parser."""
    p = command("report", cmd_report, "write a self-contained HTML report of a run directory")
    p.add_argument("run", help="a run directory (a search or a one-shot search)")
    p.add_argument("--out", help="the HTML file (default: RUN/report.html)")
    p.add_argument("--png", metavar="DIR", help="also write every figure as a PNG into DIR")
    p.add_argument("--force", action="store_true", help="replace --out if it exists (RUN/report.html always is)")
    p.add_argument("--watch", action="store_true", help="rewrite the report while a process writes the run")
    p.add_argument("--every", type=finite_float, help="seconds between rewrites with --watch (default 5)")
    p.set_defaults(every=None)

    p = command("draw", cmd_draw, "draw an architecture as SVG or PNG (cells as DAGs, chains as layer stacks)")
    p.add_argument("arch", metavar="ARCH", help="an architecture, as `archsearch cost` takes it")
    p.add_argument("--space", choices=SPACES.names(), help="require the architecture to be of this space")
    p.add_argument("--out", required=True, help="cell.svg or cell.png (DARTS writes _normal and _reduce files)")
    p.add_argument("--force", action="store_true", help="replace the drawing's files if they exist")

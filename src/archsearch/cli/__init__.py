"""The ``archsearch`` command line. Every command takes ``--json`` (one JSON object per result per line); errors are
one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Sequence

from archsearch.cli.common import visible
from archsearch.cli.core import add_core_commands
from archsearch.cli.export import add_export_command
from archsearch.cli.latency import add_latency_commands
from archsearch.cli.oneshot import add_oneshot_command
from archsearch.cli.options import given_options
from archsearch.cli.report import add_report_commands
from archsearch.cli.score import add_score_command
from archsearch.cli.search import add_search_commands
from archsearch.cli.train import add_train_command
from archsearch.errors import ArchsearchError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="archsearch", description="Neural architecture search for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object per result per line")
        p.set_defaults(func=func)
        return p

    add_core_commands(command)
    add_train_command(command)
    add_search_commands(command)
    add_oneshot_command(command)
    add_score_command(command)
    add_report_commands(command)
    add_export_command(command)
    add_latency_commands(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archsearch`` command."""
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        args.given = given_options(build_parser(), argv)
    except KeyboardInterrupt:
        print("archsearch: interrupted while starting", file=sys.stderr)
        return 130
    try:
        args.func(args)
    except BrokenPipeError:  # the reader (e.g. `head`) stopped reading: not an error of ours
        sys.stderr.close()
        return 141
    except ArchsearchError as exc:
        print(f"archsearch {args.command}: error: {visible(exc)}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # a store damaged while it was being read
        print(f"archsearch {args.command}: error: the store is damaged ({visible(exc)})", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:  # I/O or a network failing to run: one line, no traceback
        print(f"archsearch {args.command}: error: {type(exc).__name__}: {visible(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"archsearch {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0

"""Helpers shared by the commands: output, argument types (the number parsers live with the option groups, in
:mod:`archsearch.options`), reading architectures, build options."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.options import positive_int
from archsearch.spaces import Space, parse_arch

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def visible(text: Any, newlines: bool = True) -> str:
    """``text`` safe to print to a terminal: control characters (escape sequences, bell, carriage return, C1,
    bidirectional overrides) shown as ``\\x1b``-style escapes instead of acting; newlines and tabs kept unless
    ``newlines`` is false (a table cell, one line of a list)."""
    out = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))
    return out if newlines else out.replace("\n", "\\n").replace("\t", "\\t")


def emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    """Print ``obj`` as one JSON line with ``--json``, else ``text`` (its control characters made visible)."""
    print(json.dumps(obj) if args.json else visible(text), flush=True)


def table_text(row: dict[str, float] | None) -> str:
    """An architecture's row of a benchmark table, in one line."""
    return "not in the table" if row is None else "  ".join(f"{k} {v:g}" for k, v in row.items())


def latency_text(latency: dict[str, Any]) -> str:
    """A one-shot run's latency target and the derived network's measured latency, in one line (and its notes)."""
    target, measured = latency.get("target_ms"), latency.get("measured_ms")
    if not isinstance(target, (int, float)):
        return "latency: no target recorded"
    if not isinstance(measured, (int, float)):
        line = f"latency: target {target:g} ms; the derived network is not measured yet"
    else:
        verdict = "met" if measured <= target else "BROKEN"
        line = f"latency: derived network measured {measured:.4g} ms against the {target:g} ms target ({verdict})"
    return "\n  ".join([line, *(f"note: {n}" for n in latency.get("notes") or [])])


def input_shape(text: str) -> tuple[int, int, int]:
    """Parse ``C,H,W`` (square images)."""
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive integers (e.g. 3,32,32), got {text!r}")
    if parts[1] != parts[2]:
        raise argparse.ArgumentTypeError(f"images must be square (H == W), got {text!r}")
    return parts  # type: ignore[return-value]


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (an architecture string too long for a file name is not one)."""
    try:
        return Path(text).is_file()
    except OSError:
        return False


def _arch_texts(items: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(where, text) for every architecture named on the command line: text, a file, or '-' for stdin lines."""
    for n, item in enumerate(items, start=1):
        if item == "-":
            yield from _lines("stdin", sys.stdin.read())
        elif item.lower().endswith((".json", ".jsonl", ".txt")) or (_is_file(item) and not item.startswith("|")):
            path = Path(item)
            if not path.is_file():
                raise ArchsearchError(f"{item}: no such file")
            content = path.read_text()
            try:
                obj = json.loads(content)
            except json.JSONDecodeError:
                yield from _lines(item, content)
                continue
            for k, entry in enumerate(obj if isinstance(obj, list) else [obj]):
                yield f"{item}[{k}]", json.dumps(entry)
        else:
            yield f"ARCH {n}", item


def _lines(where: str, content: str) -> Iterator[tuple[str, str]]:
    for n, line in enumerate(content.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield f"{where}:{n}", line


def read_archs(items: Sequence[str], space: str | None) -> Iterator[tuple[Space[Any], Any]]:
    """Every architecture named on the command line, with its space; errors say where the bad one came from."""
    for where, text in _arch_texts(items):
        try:
            yield parse_arch(text, space)
        except ArchsearchError as exc:
            raise ArchsearchError(f"{where}: {exc}") from None


def add_depth_arguments(p: argparse.ArgumentParser) -> None:
    """The depth of the built networks, each space's under its own name: ``--cells`` counts all of a DARTS network's
    cells, ``--cells-per-stage`` NAS-Bench-201's cells in each of its three stages."""
    p.add_argument("--cells", type=positive_int, help="darts: cells in the network, two of them reductions "
                   "(default 20)")  # fmt: skip
    p.add_argument("--cells-per-stage", type=positive_int, help="nb201: cells in each of its three stages (default 5)")


def build_options(args: argparse.Namespace) -> dict[str, Any]:
    """The build options given on the command line (``None``: not given); the API checks them against each space."""
    return {
        "channels": args.channels,
        "cells": args.cells,
        "cells_per_stage": args.cells_per_stage,
        "width": args.width,
        "auxiliary": getattr(args, "auxiliary", False) or None,
        "head": getattr(args, "head", None),
    }

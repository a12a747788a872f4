"""The ``archsearch`` command line. Every command takes ``--json`` (one JSON object per result per line); errors are
one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archsearch import costs
from archsearch.errors import ArchsearchError
from archsearch.spaces import SPACES, Space, get_space, parse_arch


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text, flush=True)


def _input_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W with positive integers (e.g. 3,32,32), got {text!r}")
    if parts[1] != parts[2]:
        raise argparse.ArgumentTypeError(f"images must be square (H == W), got {text!r}")
    return parts  # type: ignore[return-value]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# --- reading architectures ---------------------------------------------------------------------------------------
def _arch_texts(items: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(where, text) for every architecture named on the command line: text, a file, or '-' for stdin lines."""
    for n, item in enumerate(items, start=1):
        if item == "-":
            yield from _lines("stdin", sys.stdin.read())
        elif item.lower().endswith((".json", ".jsonl", ".txt")) or (Path(item).is_file() and not item.startswith("|")):
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


def _read_archs(items: Sequence[str], space: str | None) -> Iterator[tuple[Space[Any], Any]]:
    for where, text in _arch_texts(items):
        try:
            yield parse_arch(text, space)
        except ArchsearchError as exc:
            raise ArchsearchError(f"{where}: {exc}") from None


# --- commands ----------------------------------------------------------------------------------------------------
def cmd_spaces(args: argparse.Namespace) -> None:
    """List the registered spaces with their size and ops."""
    for name in SPACES:
        space = get_space(name)
        size = space.size()
        size_text = f"{size:,}" if size is not None and size < 10**9 else (f"{size:.3g}" if size else "unbounded")
        _emit(
            args,
            {"name": name, "size": size, "ops": space.ops(), "description": space.description},
            f"{name:<8} {size_text:>12}  {space.description}\n{'':<8} ops: {', '.join(space.ops())}",
        )


def cmd_sample(args: argparse.Namespace) -> None:
    """Print ``--n`` random genotypes of a space as JSON, one per line."""
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    for _ in range(args.n):
        genotype = space.sample(rng)
        print(json.dumps(genotype.to_json()) if args.json or not args.text else str(genotype), flush=True)


def _build_options(space: Space[Any], args: argparse.Namespace) -> dict[str, Any]:
    given = {"channels": args.channels, "cells": args.cells, "width": args.width}
    if args.auxiliary:
        given["auxiliary"] = True
    options = {k: v for k, v in given.items() if v is not None}
    allowed = space.build_options()
    for name in options:
        if name not in allowed:
            raise ArchsearchError(
                f"--{name} does not apply to space {space.name!r} (its options: "
                f"{', '.join('--' + o for o in allowed if o != 'drop_path') or 'none'})"
            )
    return options


def cmd_cost(args: argparse.Namespace) -> None:
    """Parameters, multiply-adds and latency of each architecture given."""
    shape = args.input_shape
    for n, (space, genotype) in enumerate(_read_archs(args.arch, args.space)):
        if n == 0 and not args.json:
            print(f"{'space':<6} {'params':>10} {'MACs':>10} {'latency':>10}  arch")
        model = space.build(
            genotype,
            in_channels=shape[0],
            num_classes=args.classes,
            input_size=shape[1],
            seed=0,
            **_build_options(space, args),
        )
        cost = costs.measure(
            model,
            shape,
            device=args.device,
            latency=not args.no_latency,
            memory=args.memory,
            batch_size=args.batch_size,
            threads=args.threads,
            runs=args.runs,
        )
        record = {
            "arch": str(genotype),
            "space": space.name,
            "key": genotype.key,
            "input_shape": list(shape),
            **cost.to_json(),
        }
        latency = "-" if cost.latency_ms is None else f"{cost.latency_ms:.2f}ms"
        text = f"{space.name:<6} {cost.params / 1e6:>9.6f}M {cost.flops / 1e6:>9.2f}M {latency:>10}  {genotype}"
        if cost.train_peak_mb is not None:
            text += (
                f"\n{'':<6} peak memory: forward {cost.forward_peak_mb:.1f} MiB, "
                f"train step {cost.train_peak_mb:.1f} MiB"
            )
        _emit(args, record, text)


# --- parser ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="archsearch", description="Neural architecture search for PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], None], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object per result per line")
        p.set_defaults(func=func)
        return p

    command("spaces", cmd_spaces, "list the search spaces: name, size, ops")

    p = command("sample", cmd_sample, "sample random genotypes of a space (JSON, one per line)")
    p.add_argument("--space", required=True, choices=SPACES.names())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=_positive_int, default=1, help="how many genotypes (default 1)")
    p.add_argument("--text", action="store_true", help="print each genotype's text form instead of JSON")

    p = command("cost", cmd_cost, "parameters, multiply-adds (MACs) and latency of architectures")
    p.add_argument(
        "arch",
        nargs="+",
        metavar="ARCH",
        help="an NB201 string, a DARTS Genotype(...) or published name (DARTS_V2), a chain 'add: ...', "
        "a JSON object or file, or '-' for one architecture per line on stdin",
    )
    p.add_argument("--space", choices=SPACES.names(), help="require the architectures to be of this space")
    p.add_argument("--channels", type=_positive_int, help="initial channels (nb201 default 16, darts 36)")
    p.add_argument(
        "--cells", type=_positive_int, help="cells per stage (nb201, default 5) or in all (darts, default 20)"
    )
    p.add_argument("--width", type=float, help="channel multiplier (chain, default 1.0)")
    p.add_argument("--auxiliary", action="store_true", help="build DARTS's auxiliary head (never counted)")
    p.add_argument("--classes", type=_positive_int, default=10)
    p.add_argument("--input-shape", type=_input_shape, default=(3, 32, 32), help="C,H,W (default 3,32,32)")
    p.add_argument("--batch-size", type=_positive_int, default=1, help="batch size for latency (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive_int, help="CPU threads while timing")
    p.add_argument("--runs", type=_positive_int, default=10, help="timed runs; the median is reported")
    p.add_argument("--no-latency", action="store_true", help="skip timing")
    p.add_argument("--memory", action="store_true", help="also measure peak memory (forward, train step; batch 32)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archsearch`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # the reader (e.g. `head`) stopped reading: not an error of ours
        sys.stderr.close()
        return 141
    except ArchsearchError as exc:
        print(f"archsearch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:  # I/O or a network failing to run: one line, no traceback
        print(f"archsearch {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"archsearch {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

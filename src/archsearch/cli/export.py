"""``archsearch export``: a found network as ONNX, a ``torch.export`` program, TorchScript or a standalone model.py."""

from __future__ import annotations

import argparse
from typing import Any

from archsearch import api
from archsearch.cli.common import add_depth_arguments, build_options, emit, input_shape, read_archs
from archsearch.errors import ArchsearchError
from archsearch.export.formats import FORMATS, describe
from archsearch.options import finite_float, positive_int
from archsearch.rundir import names_directory
from archsearch.spaces import SPACES


def cmd_export(args: argparse.Namespace) -> None:
    """Export a run's winner or an architecture and print what was written and the check it passed."""
    if names_directory(args.arch):
        arch: Any = args.arch
    else:
        archs = list(read_archs([args.arch], args.space))
        if len(archs) != 1:
            raise ArchsearchError(f"export takes one architecture, got {len(archs)}")
        arch = archs[0][1]
    exported = api.export(arch, args.format, args.out, space=args.space, input_shape=args.input_shape,
                          num_classes=args.num_classes, weights=args.weights, build=build_options(args),
                          force=args.force)  # fmt: skip
    emit(args, exported.to_json(), describe(exported))


def add_export_command(command: Any) -> None:
    """Register ``export`` with the ``command`` factory of the main parser."""
    p = command("export", cmd_export, "export a run's winner or an architecture for deployment, checked")
    p.add_argument("arch", metavar="RUN_DIR|ARCH", help="a run directory (its winner) or an architecture")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="onnx (opset 17, checked by ONNX Runtime), pt2 (torch.export), torchscript (for libtorch "
                   "users; this PyTorch deprecates it), python (model.py + weights.pt, only torch "
                   "imported)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (new, or holding only "
                   "files export writes)")
    p.add_argument("--force", action="store_true", help="replace the files this export writes if --out holds them")
    p.add_argument("--space", choices=SPACES.names(), help="the architecture's space (a registered space's text)")
    p.add_argument("--input-shape", type=input_shape, help="C,H,W (default: the run's data, else 3,32,32)")
    p.add_argument("--num-classes", type=positive_int, help="classes (default: the run's data, else 10)")
    p.add_argument("--weights", help="a state dict file to load (model.pt of `archsearch train --save`)")
    p.add_argument("--channels", type=positive_int)
    add_depth_arguments(p)
    p.add_argument("--width", type=finite_float)
    p.set_defaults(auxiliary=False)

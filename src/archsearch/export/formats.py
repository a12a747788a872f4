"""Exporting a network for deployment, each format checked against PyTorch on a seeded batch after it is written:

- ``onnx``: ``DIR/model.onnx``, opset 17, dynamic batch dimension, written by ``torch.onnx.export``'s TorchScript
  exporter (``dynamo=False``: it needs the ``onnx`` package only), checked by ONNX Runtime on the CPU;
- ``pt2``: ``DIR/model.pt2``, a ``torch.export`` ExportedProgram (``torch.export.save``; loadable by
  ``torch.export.load`` and AOTInductor), dynamic batch, checked after ``torch.export.load``;
- ``torchscript``: ``DIR/model.ts`` by ``torch.jit.trace`` for libtorch (C++) users; this PyTorch marks TorchScript
  deprecated, so its warnings are kept out of the output and the help says so; checked after ``torch.jit.load``;
- ``python``: ``DIR/model.py`` + ``DIR/weights.pt``: plain PyTorch (see :mod:`archsearch.export.standalone`),
  checked in a fresh, isolated interpreter (``python -I``, model.py loaded by its path) in which archsearch cannot
  be imported.

Everything is written into a private folder beside ``--out`` and moved into ``--out`` only after the check passed;
``--out`` must be new or hold only files export writes, and what is there is replaced only with ``--force``.

The check runs a seeded batch of 3 (another size than the one traced, so the dynamic batch is exercised) and
requires the largest absolute difference from PyTorch eager to be at most 1e-4 x max(1, the largest |logit|): a
float32 network whose sums another runtime orders differently agrees to about 1e-7 of its outputs' size, and an
untrained deep network's logits can reach the hundreds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.outputs import new_folder_beside

FORMATS = ("onnx", "pt2", "torchscript", "python")
FILES = {"onnx": "model.onnx", "pt2": "model.pt2", "torchscript": "model.ts", "python": "model.py"}
TOLERANCE = 1e-4
OPSET = 17  # the TorchScript-based exporter's (needs the onnx package only)
DYNAMO_OPSET = 18  # the torch.export-based exporter's, for what the first cannot express (needs onnxscript)


@dataclass
class Exported:
    """What an export wrote and the check it passed."""

    format: str
    files: list[str]
    max_abs_diff: float
    checked_with: str
    batch_checked: int
    opset: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _batch(input_shape: tuple[int, int, int], n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, *input_shape, generator=torch.Generator().manual_seed(seed))


def onnxruntime_module() -> Any:
    """The ``onnxruntime`` module, or an error that says how to install it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ArchsearchError("ONNX export is checked by ONNX Runtime: pip install onnx onnxruntime "
                              "(or archsearch[export])") from None  # fmt: skip
    return ort


def write_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> tuple[str, int]:
    """Write ``model`` as ONNX with a dynamic batch dimension: the TorchScript-based exporter (opset 17), or the
    torch.export-based one (opset 18) for what the first cannot express. Returns (which exporter, opset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = {"input": {0: "batch"}, "logits": {0: "batch"}}
        try:
            with _quiet_fds():  # on failure the exporter prints its whole graph from C++
                torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=OPSET,
                                  input_names=["input"], output_names=["logits"], dynamic_axes=axes)  # fmt: skip
        except Exception as exc:  # an op it cannot express (adaptive pooling to a size that does not divide)
            try:
                import onnxscript  # noqa: F401 - the torch.export-based exporter needs it
            except ImportError:
                raise ArchsearchError(f"this network needs the torch.export-based ONNX exporter ({str(exc)[:120]}): "
                                      "pip install onnxscript") from None  # fmt: skip
            _dynamo_onnx(model, example, path)
            return "torch.export-based exporter", DYNAMO_OPSET
    return "TorchScript-based exporter", OPSET


def _onnx(model: nn.Module, example: torch.Tensor, path: Path, check: torch.Tensor) -> tuple[Any, str]:
    ort = onnxruntime_module()
    how, opset = write_onnx(model, example, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: check.numpy()})[0]
    return torch.from_numpy(out), f"onnxruntime {ort.__version__} (CPU execution provider; {how}, opset {opset})"


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Standard output and error of this process (file descriptors 1 and 2, C++ writes too) go to /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _dynamo_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """``torch.onnx.export(dynamo=True)``, its progress lines kept out of the output."""
    import io
    import logging

    quiet = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=DYNAMO_OPSET,
                                        dynamic_shapes=({0: batch},), verbose=False)  # fmt: skip
            program.save(str(path))
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _pt2(model: nn.Module, example: torch.Tensor, path: Path, check: torch.Tensor) -> tuple[Any, str]:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    loaded = torch.export.load(str(path)).module()
    return loaded(check), "torch.export.load"


def _torchscript(model: nn.Module, example: torch.Tensor, path: Path, check: torch.Tensor) -> tuple[Any, str]:
    with warnings.catch_warnings():  # TorchScript is deprecated in this PyTorch; the help says so once
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
        return loaded(check), "torch.jit.load"


# run as `python -I` (no current directory, no user site, no PYTHON* variables on sys.path): model.py is loaded by
# its path, so nothing else in its folder can be imported in its place, and archsearch is hidden from it
_RUN_STANDALONE = """
import builtins, importlib.util, sys, torch
real_import = builtins.__import__
def no_archsearch(name, *args, **kwargs):
    if name == "archsearch" or name.startswith("archsearch."):
        raise ImportError("archsearch is hidden: model.py must not need it")
    return real_import(name, *args, **kwargs)
builtins.__import__ = no_archsearch
folder, check_in, check_out = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("exported_model", folder + "/model.py")
model = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = model  # dataclasses (and pickling) look a class's module up there
spec.loader.exec_module(model)
net = model.load(folder + "/weights.pt")
x = torch.load(check_in, weights_only=True)
torch.save(net(x), check_out)
"""


def _python(model: nn.Module, out: Path, source: str, check: torch.Tensor) -> tuple[Any, str]:
    """Write model.py and weights.pt into the private folder ``out`` and run them in an isolated interpreter; the
    check's own files go into a folder of their own, removed after."""
    (out / "model.py").write_text(source)
    torch.save(model.state_dict(), out / "weights.pt")
    with tempfile.TemporaryDirectory(prefix="archsearch-check-") as scratch:
        check_in, check_out = Path(scratch) / "input.pt", Path(scratch) / "output.pt"
        torch.save(check, check_in)
        run = subprocess.run([sys.executable, "-I", "-c", _RUN_STANDALONE, str(out), str(check_in), str(check_out)],
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        if run.returncode != 0:
            raise ArchsearchError(f"the standalone model.py failed its check: {run.stderr.strip()[-500:]}")
        return torch.load(check_out, weights_only=True), "a fresh, isolated Python with archsearch hidden"


def _written_names(fmt: str) -> list[str]:
    return [FILES[fmt]] + (["weights.pt"] if fmt == "python" else [])


def check_export_folder(out: str | Path, fmt: str, force: bool = False) -> Path:
    """``out`` if an export of ``fmt`` may be written there: a new folder, or a real (not linked) folder that holds
    only files export writes; the files this export writes are replaced only with ``force``."""
    folder = Path(out)
    if os.path.islink(folder):
        raise ArchsearchError(f"--out {folder} is a symbolic link; archsearch does not write through links")
    if not os.path.lexists(folder):
        return folder
    if not folder.is_dir():
        raise ArchsearchError(f"--out {folder} exists and is not a folder; name a folder to export into")
    ours = set(FILES.values()) | {"weights.pt"}
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in ours or p.is_symlink() or not p.is_file())
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ArchsearchError(f"--out {folder} holds files export does not write ({shown}); export into an empty "
                              f"or new folder (it writes only {', '.join(sorted(ours))})")  # fmt: skip
    present = [n for n in _written_names(fmt) if (folder / n).exists()]
    if present and not force:
        raise ArchsearchError(f"--out {folder} already holds {', '.join(present)}; pass --force to replace")
    return folder


def export_network(
    model: nn.Module, input_shape: tuple[int, int, int], fmt: str, out: str | Path, source: str | None = None,
    force: bool = False,
) -> Exported:  # fmt: skip
    """Write ``model`` (eval mode) in format ``fmt`` into the folder ``out`` and check the written file against
    PyTorch; ``source`` is the standalone model.py for ``python``. The files are written into a private folder
    beside ``out`` and moved into ``out`` only after the check passed: a failed or killed export leaves ``out`` as
    it was. Existing files are replaced only with ``force`` (see :func:`check_export_folder`)."""
    if fmt not in FORMATS:
        raise ArchsearchError(f"unknown export format {fmt!r} (allowed: {', '.join(FORMATS)})")
    folder = check_export_folder(out, fmt, force)
    model = model.eval()
    example, check = _batch(input_shape, 2), _batch(input_shape, 3, seed=1)
    with torch.no_grad():
        expected = model(check)
    scratch = new_folder_beside(folder)
    try:
        target = scratch / FILES[fmt]
        with torch.no_grad():
            if fmt == "onnx":
                got, how = _onnx(model, example, target, check)
            elif fmt == "pt2":
                got, how = _pt2(model, example, target, check)
            elif fmt == "torchscript":
                got, how = _torchscript(model, example, target, check)
            else:
                if source is None:
                    raise ArchsearchError("the python format needs the standalone source")
                got, how = _python(model, scratch, source, check)
        got = (got if isinstance(got, torch.Tensor) else torch.as_tensor(got)).detach()
        diff = float((got - expected).abs().max())
        scale = max(1.0, float(expected.abs().max()))  # float32 sums reordered: relative to the logits' size
        if not diff <= TOLERANCE * scale:
            raise ArchsearchError(f"the exported {fmt} model differs from PyTorch by {diff:.3g} (allowed: "
                                  f"{TOLERANCE} x max(1, largest |logit| {scale:.3g}))")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        check_export_folder(folder, fmt, force)  # again: nothing may have appeared there meanwhile
        written = [folder / name for name in reversed(_written_names(fmt))]  # weights first, model.py last
        for path in written:
            os.replace(scratch / path.name, path)  # a rename: replaces a name, never follows a link
    except BaseException as exc:
        if isinstance(exc, (ArchsearchError, KeyboardInterrupt)):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ArchsearchError(f"the {fmt} export failed: {type(exc).__name__}: {first[:300]}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    opset = None if fmt != "onnx" else (DYNAMO_OPSET if "torch.export-based" in how else OPSET)
    return Exported(fmt, [str(p) for p in reversed(written)], diff, how, len(check), opset)


def describe(exported: Exported) -> str:
    """One line: what was written and the check it passed."""
    return (f"wrote {', '.join(exported.files)}; checked with {exported.checked_with} on a batch of "
            f"{exported.batch_checked}: max |difference| {exported.max_abs_diff:.2e}")  # fmt: skip


__all__ = ["FORMATS", "Exported", "describe", "export_network", "write_onnx"]

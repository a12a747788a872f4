"""Checking a device name before any work goes to it."""

from __future__ import annotations

import torch

from archsearch.errors import ArchsearchError


def check_device(name: str) -> str:
    """``name`` if this PyTorch build can run on it, else an error that says why and what is available."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ArchsearchError(f"device {name!r} is not a device name ({exc}); use cpu, cuda, cuda:N or mps") from None
    available = ["cpu"]
    if torch.cuda.is_available():
        available.append(f"cuda (cuda:0..{torch.cuda.device_count() - 1})")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.append("mps")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ArchsearchError(f"device {name!r}: {build} (available: {', '.join(available)})")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ArchsearchError(f"device {name!r}: no GPU {device.index} here (available: {', '.join(available)})")
    elif device.type == "mps" and "mps" not in available:
        raise ArchsearchError(f"device {name!r}: MPS is not available here (available: {', '.join(available)})")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ArchsearchError(f"device {name!r} is not supported (available: {', '.join(available)})")
    return name

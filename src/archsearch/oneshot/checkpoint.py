"""A one-shot search's checkpoint (``oneshot.pt``): the method's state and the history, written after every epoch and
read with ``weights_only=True``.

A supernet's state is thousands of small tensors (the ``mobile`` supernet's, with its optimizers: 7,858), and
``torch.save`` writes each as its own record: 0.42 s to save and 0.9 s to load (a report reading the history
paid that too). So the checkpoint holds them packed, one flat tensor per dtype plus where each tensor lies in it:
0.22 s to save, 0.33 s to load, unpacking included. A checkpoint written before packing still loads as it is.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from archsearch.errors import ArchsearchError
from archsearch.outputs import save_torch

#: the key of the dict that stands for a packed tensor in the skeleton
TENSOR = "__archsearch_packed_tensor__"
#: the top-level key of a packed object
PACKED = "__archsearch_packed__"


def pack(obj: Any) -> dict[str, Any]:
    """``obj`` (dicts, lists and tuples of tensors and plain values) with its dense tensors moved into one flat
    tensor per dtype and device; :func:`unpack` gives it back equal."""
    groups: dict[str, list[torch.Tensor]] = {}
    filled: dict[str, int] = {}
    placed: list[tuple[str, int, list[int]]] = []

    def leaf(value: Any) -> Any:
        if type(value) is not torch.Tensor or value.layout != torch.strided:
            return _CONTAINER
        group = f"{value.dtype}|{value.device}"
        flat = value.detach().reshape(-1)
        at = filled.get(group, 0)
        placed.append((group, at, list(value.shape)))
        groups.setdefault(group, []).append(flat)
        filled[group] = at + len(flat)
        return {TENSOR: len(placed) - 1}

    skeleton = _rebuild(obj, leaf)
    flats = {group: torch.cat(members) for group, members in groups.items()}
    return {PACKED: 1, "skeleton": skeleton, "flats": flats, "placed": placed}


def unpack(saved: Any) -> Any:
    """What :func:`pack` packed (anything else is returned as it is: a checkpoint written before packing)."""
    if not (isinstance(saved, dict) and saved.get(PACKED) == 1):
        return saved
    flats, placed = saved["flats"], saved["placed"]

    def leaf(value: Any) -> Any:
        if not (isinstance(value, dict) and set(value) == {TENSOR}):
            return _CONTAINER
        group, offset, shape = placed[value[TENSOR]]
        return flats[group][offset : offset + math.prod(shape)].view(shape).clone()  # each its own, as saved

    return _rebuild(saved["skeleton"], leaf)


_CONTAINER = object()  # what a leaf function answers for a value it leaves to _rebuild


def _rebuild(value: Any, leaf: Any) -> Any:
    """``value`` with every part that ``leaf`` replaces replaced (dicts, lists and tuples rebuilt around them; a
    state dict stays an ``OrderedDict`` with the versions ``load_state_dict`` reads)."""
    replaced = leaf(value)
    if replaced is not _CONTAINER:
        return replaced
    if isinstance(value, dict):
        out = {k: _rebuild(v, leaf) for k, v in value.items()}
        if not isinstance(value, OrderedDict):
            return out
        ordered = OrderedDict(out)
        if hasattr(value, "_metadata"):
            ordered._metadata = value._metadata  # type: ignore[attr-defined]
        return ordered
    if type(value) in (list, tuple):
        return type(value)(_rebuild(v, leaf) for v in value)
    return value


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``state`` packed, written to a fresh temporary name and renamed into place."""
    save_torch(pack(state), path)


def load_checkpoint(path: Path, device: Any = "cpu") -> dict[str, Any]:
    """A one-shot checkpoint, loaded with ``weights_only=True`` (tensors and plain containers only, so a planted file
    cannot run code); anything else is refused in one line."""
    try:
        with warnings.catch_warnings():  # torch's notes on a foreign pickle's protocol: the one line below says it
            warnings.simplefilter("ignore")
            saved = unpack(torch.load(path, map_location=device, weights_only=True))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchsearchError(f"{path}: not a one-shot checkpoint archsearch wrote ({first[:200]})") from None
    if not isinstance(saved, dict) or not {"method", "history", "stopped"} <= set(saved):
        raise ArchsearchError(f"{path}: not a one-shot checkpoint archsearch wrote (expected method, history, stopped)")
    return saved

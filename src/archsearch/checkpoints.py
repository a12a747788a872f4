"""Saving a trained network with what is needed to rebuild it, and loading it back with ``weights_only=True``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.errors import ArchsearchError
from archsearch.nn.baseline import build_model
from archsearch.outputs import save_torch, write_file
from archsearch.spaces import genotype_from_json, get_space

WEIGHTS = "model.pt"
RECORD = "record.json"


def model_spec(
    in_channels: int,
    num_classes: int,
    input_size: int,
    genotype: Any = None,
    model: str | None = None,
    build: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """How to rebuild a network: a genotype (with its build options) or a named hand-designed model."""
    if (genotype is None) == (model is None):
        raise ArchsearchError("a model spec names either a genotype or a model, not both or neither")
    spec: dict[str, Any] = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size}
    if genotype is not None:
        spec.update(genotype=genotype.to_json(), build=dict(build or {}))
    else:
        spec.update(model=model)
    return spec


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    """A freshly initialised network from a spec made by :func:`model_spec`."""
    if "model" in spec:
        return build_model(spec["model"], spec["in_channels"], spec["num_classes"])
    genotype = genotype_from_json(spec["genotype"])
    space = get_space(spec["genotype"]["space"])
    build = space.current_build_options(spec["build"])  # saved before a rename: today's names
    return space.build(genotype, spec["in_channels"], spec["num_classes"], spec["input_size"], **build)


def save_trained(directory: str | Path, model: nn.Module, spec: dict[str, Any], record: dict[str, Any]) -> Path:
    """Write ``model.pt`` (the state dict) and ``record.json`` (spec and result) into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_torch(model.state_dict(), out / WEIGHTS)
    write_file(json.dumps({"spec": spec, **record}, indent=2), out / RECORD)
    return out


def load_weights(path: str | Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True`` (a pickle holding anything but tensors is
    refused, nothing in it runs); a file that is not one is an :class:`ArchsearchError` naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # UnpicklingError (code refused), a zip that is not torch's, a missing file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ArchsearchError(f"{path}: not a weights file archsearch can load safely ({type(exc).__name__}: "
                              f"{first[:200]})") from None  # fmt: skip
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):  # fmt: skip
        raise ArchsearchError(f"{path}: not a state dict (names to tensors)")
    return state


def load_into(model: nn.Module, path: str | Path, device: str = "cpu") -> nn.Module:
    """Load the weights in ``path`` into ``model``; weights of another network are refused naming the file."""
    state = load_weights(path, device)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchsearchError(f"{path}: not weights of this network ({first[:200]})") from None
    return model

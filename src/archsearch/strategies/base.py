"""The multi-trial strategy interface: ``ask`` for genotypes, ``tell`` results, save and load state.

Strategies never build or train networks and never write to the store; they see genotypes and the scores they are
told (higher is better; ``None`` for a failed or infeasible trial). Each owns its random generator and saves its
state in ``state_dict()`` (JSON-able), so a resumed search continues exactly where it stopped.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from archsearch.spaces import Space
from archsearch.trial import Trial


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A generator's state as JSON-able data."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore a generator saved with :func:`rng_state`."""
    rng.bit_generator.state = state


def pack(obj: Any) -> Any:
    """Torch state (state dicts, optimizer state, generator state) as JSON-able data: tensors become base64 of
    their raw bytes; dict keys and tuples keep their types. Much faster than ``torch.save`` for small states."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {
            "__tensor__": base64.b64encode(raw).decode(),
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
        }
    if isinstance(obj, dict):
        return {"__dict__": [[pack(k), pack(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [pack(v) for v in obj]}
    if isinstance(obj, list):
        return [pack(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot pack {type(obj).__name__} into strategy state")


def unpack(obj: Any) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(obj, list):
        return [unpack(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        dtype = getattr(torch, obj["dtype"])
        raw = bytearray(base64.b64decode(obj["__tensor__"]))
        flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
        return flat.view(dtype).reshape(obj["shape"]).clone()
    if "__tuple__" in obj:
        return tuple(unpack(v) for v in obj["__tuple__"])
    return {unpack(k): unpack(v) for k, v in obj["__dict__"]}


class Strategy(ABC):
    """Base class: a space, a seeded generator, and the keys of what was already asked."""

    name: ClassVar[str]
    #: whether the strategy can run against a tabular benchmark (no training needed)
    tabular: ClassVar[bool] = True
    #: whether it optimises several objectives (a Pareto front) rather than the one score it is told
    multi_objective: ClassVar[bool] = False
    #: state keys whose value the strategy hands out as the same object until it changes (the store then skips
    #: re-encoding them after every trial)
    stable_state_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, space: Space[Any], seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.asked: set[str] = set()

    @abstractmethod
    def ask(self, n: int = 1) -> list[Any]:
        """Up to ``n`` genotypes to evaluate next."""

    @abstractmethod
    def tell(self, trials: Sequence[Trial]) -> None:
        """Results of evaluated trials, in any order."""

    def sample_new(self, tries: int = 100) -> Any:
        """A random genotype not asked before (after ``tries`` draws, one that may repeat)."""
        g = self.space.sample(self.rng)
        for _ in range(tries):
            if g.key not in self.asked:
                break
            g = self.space.sample(self.rng)
        self.asked.add(g.key)
        return g

    # --- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue identically: random state, asked keys, the strategy's own state."""
        return {
            "name": self.name,
            "seed": self.seed,
            "rng": rng_state(self.rng),
            "asked": sorted(self.asked),
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict`."""
        set_rng_state(self.rng, state["rng"])
        self.seed = int(state.get("seed", self.seed))
        self.asked = set(state["asked"])
        self.load_extra_state(state)

    def extra_state(self) -> dict[str, Any]:
        """The strategy's own state (override)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - an optional hook, not abstract
        """Restore :meth:`extra_state` (override)."""

    # genotypes travel through state as JSON
    def _g(self, obj: dict[str, Any]) -> Any:
        return self.space.from_json(obj)

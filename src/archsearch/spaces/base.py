"""What every search space provides, and the decision view that samplers and controllers draw from.

A genotype is data: a frozen dataclass of plain values, validated when it is made, with ``key`` (a canonical string,
equal for equal architectures), ``to_json()`` and ``str()``. A :class:`Space` knows how to sample, mutate, cross,
enumerate, encode and build its genotypes.

The *decision view* shows a genotype as an ordered list of categorical decisions (name, choices, value). A space
builds genotypes through :meth:`Space.decide`, which asks a ``chooser(name, choices)`` for each decision in turn, so
one code path serves uniform sampling, Optuna's ``trial.suggest_categorical`` and a REINFORCE controller. A name's
choices never change, so Optuna's samplers accept them; later decisions may depend on earlier values (the chain's
depth decides how many layer decisions follow).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.options import rename_keys, unchanged
from archsearch.spaces.drawing import Drawing, LayerStack
from archsearch.spaces.sizing import check_fits, check_options, might_not_fit


class Genotype(Protocol):
    """What every genotype offers (each space's frozen dataclass satisfies this)."""

    space: ClassVar[str]

    @property
    def key(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


G = TypeVar("G", bound=Genotype)
Chooser = Callable[[str, Sequence[Any]], Any]


@dataclass(frozen=True)
class Decision:
    """One categorical decision of a genotype: its name, the allowed choices and the chosen value."""

    name: str
    choices: tuple[Any, ...]
    value: Any


def uniform_chooser(rng: np.random.Generator) -> Chooser:
    """A chooser that picks every decision uniformly with ``rng``."""

    def choose(name: str, choices: Sequence[Any]) -> Any:
        return choices[int(rng.integers(len(choices)))]

    return choose


class _Recorder:
    """Wraps a chooser and records each decision it answers."""

    def __init__(self, choose: Chooser) -> None:
        self.choose = choose
        self.decisions: list[Decision] = []

    def __call__(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.choose(name, choices)
        if value not in choices:
            raise GenotypeError(name, f"{value!r} is not one of the allowed choices {list(choices)}")
        self.decisions.append(Decision(name, tuple(choices), value))
        return value


class Space(ABC, Generic[G]):
    """A search space: a family of genotypes and the operations strategies and evaluators need on them."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: whether every genotype asks the same decisions in the same order (no decision depends on an earlier one)
    fixed_decisions: ClassVar[bool] = False
    #: whether a genotype's text is exactly its key (tables in this space are then looked up without parsing)
    text_is_key: ClassVar[bool] = False

    # --- the decision view -------------------------------------------------------------------------------------
    @abstractmethod
    def decide(self, choose: Chooser) -> G:
        """Build a genotype by asking ``choose(name, choices)`` for each decision in order."""

    @abstractmethod
    def decisions(self, genotype: G) -> list[Decision]:
        """The genotype as the ordered decisions :meth:`decide` would ask for, with their values."""

    def from_decisions(self, values: Mapping[str, Any] | Sequence[Decision]) -> G:
        """Rebuild a genotype from decision values (a name -> value mapping or a list of :class:`Decision`)."""
        table = {d.name: d.value for d in values} if not isinstance(values, Mapping) else dict(values)

        def choose(name: str, choices: Sequence[Any]) -> Any:
            if name not in table:
                raise GenotypeError(name, "decision missing")
            return table[name]

        return self.decide(_Recorder(choose))

    def trace(self, choose: Chooser) -> tuple[G, list[Decision]]:
        """Like :meth:`decide`, also returning the decisions asked for (what a controller emitted)."""
        recorder = _Recorder(choose)
        return self.decide(recorder), recorder.decisions

    # --- search operators --------------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> G:
        """A random genotype, every decision drawn uniformly with ``rng``."""
        return self.decide(uniform_chooser(rng))

    @abstractmethod
    def mutate(self, genotype: G, rng: np.random.Generator) -> G:
        """A valid genotype one random edit away from ``genotype`` (never equal to it)."""

    @abstractmethod
    def crossover(self, a: G, b: G, rng: np.random.Generator) -> G:
        """A valid child mixing the parents ``a`` and ``b``."""

    @abstractmethod
    def neighbors(self, genotype: G) -> list[G]:
        """Every genotype one edit away, distinct by key, ``genotype`` itself excluded."""

    @abstractmethod
    def encode(self, genotype: G) -> np.ndarray:
        """A fixed-length float vector describing the genotype (for predictors)."""

    def encode_paths(self, genotype: G) -> np.ndarray:
        """BANANAS's path encoding where the space defines one (a count per sequence of ops along an input-to-output
        path); by default the plain :meth:`encode`."""
        return self.encode(genotype)

    def degenerate(self, genotype: G) -> str | None:
        """Why ``genotype``'s network cannot depend on its input (every path from the input is cut), or ``None``.
        Most spaces cannot express such a network (DARTS cells always connect their inputs; a chain whose skips
        bypass layers still computes); NB201 can, through ``none`` edges."""
        return None

    @abstractmethod
    def validate(self, genotype: Any) -> G:
        """Return ``genotype`` if it belongs to this space, else raise :class:`GenotypeError` naming the field."""

    @abstractmethod
    def build_network(
        self, genotype: G, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        """The network of ``genotype`` (see :meth:`build`)."""

    def network_call(
        self, genotype: G, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]] | None:
        """The network of ``genotype`` as a class of ``archsearch.nn`` and keyword arguments of plain values (what a
        standalone ``model.py`` calls), or ``None`` when the space builds its networks with code of its own."""
        return None

    def build(
        self,
        genotype: G,
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        seed: int | None = None,
        **options: Any,
    ) -> nn.Module:
        """Build ``genotype`` as an ``nn.Module`` for ``in_channels`` x ``input_size`` x ``input_size`` images.

        ``options`` are the space's width/depth knobs (see :meth:`build_options`). With ``seed``, initial weights
        are drawn from that seed without touching the global random state.
        """
        self.validate(genotype)
        allowed = self.build_options()
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise GenotypeError("build options", f"unknown option(s) {unknown} for space {self.name!r} (allowed: "
                                f"{sorted(allowed)}){self.renamed_hint(unknown)}")  # fmt: skip
        check_options(self.name, options)
        if might_not_fit(options, allowed, in_channels, input_size):
            check_fits(lambda: self.build_network(genotype, in_channels, num_classes, input_size, **options),
                       in_channels, input_size, f"the {self.name} network")  # fmt: skip
        if seed is None:
            return self.build_network(genotype, in_channels, num_classes, input_size, **options)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build_network(genotype, in_channels, num_classes, input_size, **options)

    def build_options(self) -> dict[str, Any]:
        """Names and defaults of the width/depth options :meth:`build` accepts."""
        return {}

    #: build options renamed since (old name -> new name), so that runs and weights saved before still build
    renamed_build_options: ClassVar[dict[str, str]] = {}

    def current_build_options(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """Build options as a run, a checkpoint or a config recorded them, under today's names."""
        return rename_keys(options or {}, {old: (new, unchanged) for old, new in self.renamed_build_options.items()})

    def renamed_hint(self, names: Sequence[str]) -> str:
        """What to say of build option ``names`` this space has renamed (``""`` when none is)."""
        renamed = [f"{self.name}'s {n!r} is now {self.renamed_build_options[n]!r}" for n in names
                   if n in self.renamed_build_options]  # fmt: skip
        return f"; {', '.join(renamed)}" if renamed else ""

    def counts(self, genotype: G, in_channels: int = 3, num_classes: int = 10, input_size: int = 32,
               **options: Any) -> dict[str, float]:  # fmt: skip
        """``params`` and ``flops`` (multiply-adds, PyTorch's counter) of ``genotype`` built for these inputs, without
        training: what a search on a table uses as size objectives. Spaces may answer faster without building."""
        from archsearch.nn.counting import count_flops, count_params

        model = self.build(genotype, in_channels, num_classes, input_size, seed=0, **options)
        shape = (in_channels, input_size, input_size)
        return {"params": float(count_params(model)), "flops": float(count_flops(model, shape))}

    # --- how it is shown ----------------------------------------------------------------------------------------
    @classmethod
    def recognizes(cls, text: str) -> bool:
        """Whether ``text`` has this space's text form, so :func:`archsearch.parse_arch` can tell the space without
        being told. The default recognises nothing: a space's own text then needs its name (``--space``)."""
        return False

    #: a short example of the text form :meth:`recognizes`, named in the error for text no space recognises
    text_example: ClassVar[str] = ""

    def drawings(self, genotype: G) -> list[Drawing]:
        """The figures of ``genotype`` as data (:mod:`archsearch.spaces.drawing`). The default draws its decisions
        as a stack, one box per decision; spaces with cells or stages draw those."""
        rows = tuple(f"{d.name}: {d.value}" for d in self.decisions(genotype))
        return [Drawing("network", f"{self.name} architecture ({len(rows)} decisions)", LayerStack(rows, head=""))]

    def tiny_build(self) -> dict[str, Any]:
        """Build options that make this space's networks as small as they can be while still exercising every
        choice: what the property checks of :mod:`archsearch.testing` build with. The default is the defaults."""
        return {}

    # --- size and enumeration ----------------------------------------------------------------------------------
    def size(self) -> int | None:
        """Number of distinct genotypes, or ``None`` when it is too large to matter."""
        return None

    def enumerate(self) -> Iterator[G]:
        """Every genotype of a finite space."""
        raise NotImplementedError(f"space {self.name!r} is too large to enumerate")

    def ops(self) -> list[str]:
        """The operation names this space chooses among."""
        return []

    def supernet_ops(self) -> list[str]:
        """The candidate operations a supernet of this space mixes on each edge, in the order of its architecture
        parameters (the report labels their plots with these). The default is :meth:`ops`."""
        return self.ops()

    @abstractmethod
    def complexity(self, genotype: G) -> float:
        """A cheap size measure computed from the genotype alone (for progressive search); larger is bigger."""

    # --- text and JSON -----------------------------------------------------------------------------------------
    @abstractmethod
    def from_json(self, obj: Mapping[str, Any]) -> G:
        """The genotype of a JSON object made by ``genotype.to_json()``."""

    def parse(self, text: str) -> G:
        """A genotype from its text form (the space's own string, or JSON)."""
        text = text.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise GenotypeError("json", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            return self.from_json(obj)
        raise GenotypeError(self.name, f"cannot read {text[:60]!r} as a {self.name} genotype")


def check_keys(obj: Mapping[str, Any], space: str, required: Sequence[str]) -> None:
    """Raise if a genotype's JSON object is not a dict with exactly ``space`` plus the ``required`` keys."""
    if not isinstance(obj, Mapping):
        raise GenotypeError("json", f"a {space} genotype must be a JSON object, got {type(obj).__name__}")
    if obj.get("space", space) != space:
        raise GenotypeError("space", f"expected {space!r}, got {obj.get('space')!r}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise GenotypeError("json", f"missing field(s) {missing} for a {space} genotype")
    unknown = sorted(set(obj) - set(required) - {"space"})
    if unknown:
        raise GenotypeError("json", f"unknown field(s) {unknown} for a {space} genotype (allowed: {list(required)})")

"""NAS-Bench-Macro's space (Su et al., CVPR 2021): a MobileNet-style chain of 8 searched layers.

A 3x3 stem conv to 32 channels (BN, ReLU); three stages of 2, 3 and 3 layers whose first layer has stride 2 and
doubles the channels (64, 128, 256); each layer is ``0`` identity (a strided 1x1 conv-BN where it must change the
shape), ``1`` an inverted residual of expansion 3 and kernel 3, or ``2`` one of expansion 6 and kernel 5; a 1x1 conv
to 1280 channels, global pooling and a linear classifier. 3^8 = 6,561 architectures.

Text form: the benchmark's 8-digit string, e.g. ``02012100``. Identity layers after the first of a stage change
nothing, so the benchmark stores architectures with those identities moved to the end of their stage; the
:attr:`MacroGenotype.key` is that form, so equal networks have equal keys. Parameter and FLOP counts equal the
benchmark's (its ``count_parameters`` and ``count_FLOPs``: convolution and linear multiply-adds, no BN).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.nn.mobile import MobileBlockSpec, MobileNetwork
from archsearch.spaces.base import Chooser, Decision, Space, check_keys
from archsearch.spaces.drawing import Drawing, Stages

STAGES: tuple[int, ...] = (2, 3, 3)
CHOICES: tuple[int, ...] = (0, 1, 2)
#: choice -> (expansion, kernel) of its inverted residual; 0 is the identity
BLOCKS: dict[int, tuple[int, int]] = {1: (3, 3), 2: (6, 5)}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
LAYERS = sum(STAGES)


@dataclass(frozen=True)
class MacroGenotype:
    """One choice (0 identity, 1 MB3-K3, 2 MB6-K5) per searched layer."""

    layers: tuple[int, ...]
    space: ClassVar[str] = "macro"

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple) or len(self.layers) != LAYERS:
            raise GenotypeError("layers", f"needs {LAYERS} choices, got {self.layers!r}"[:200])
        for i, c in enumerate(self.layers):
            if type(c) is not int or c not in CHOICES:  # 1.0 or True is not the choice 1
                raise GenotypeError(f"layers[{i}]", f"{c!r} is not a choice (allowed: 0 identity, 1 MB3-K3, 2 MB6-K5)")

    @property
    def key(self) -> str:
        """The benchmark's stored form: within a stage, identities after the first layer move to the end."""
        out, i = [], 0
        for n in STAGES:
            stage = self.layers[i : i + n]
            rest = [c for c in stage[1:] if c != 0]
            out += [stage[0], *rest, *[0] * (n - 1 - len(rest))]
            i += n
        return "".join(map(str, out))

    def __str__(self) -> str:
        return "".join(map(str, self.layers))

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "arch": str(self)}


def parse_digits(text: str) -> MacroGenotype:
    """A genotype from the benchmark's 8-digit string."""
    t = text.strip()
    if len(t) != LAYERS or any(ch not in "012" for ch in t):
        raise GenotypeError(
            "macro", f"expected {LAYERS} digits of 0 (identity), 1 (MB3-K3) or 2 (MB6-K5), e.g. 02012100; got {t!r}"
        )
    return MacroGenotype(tuple(int(ch) for ch in t))


class MacroSpace(Space[MacroGenotype]):
    """NAS-Bench-Macro: 8 layers, each identity, MB3-K3 or MB6-K5 (see the module docstring)."""

    name = "macro"
    description = "NAS-Bench-Macro: 8 layers x {identity, MB3-K3, MB6-K5} in 3 stages (6,561 networks)"
    fixed_decisions = True

    def decide(self, choose: Chooser) -> MacroGenotype:
        return MacroGenotype(tuple(choose(f"layer{i}", CHOICES) for i in range(LAYERS)))

    def decisions(self, genotype: MacroGenotype) -> list[Decision]:
        self.validate(genotype)
        return [Decision(f"layer{i}", CHOICES, c) for i, c in enumerate(genotype.layers)]

    def _with(self, genotype: MacroGenotype, i: int, c: int) -> MacroGenotype:
        return MacroGenotype(genotype.layers[:i] + (c,) + genotype.layers[i + 1 :])

    def mutate(self, genotype: MacroGenotype, rng: np.random.Generator) -> MacroGenotype:
        """One layer changed to another choice, so that the network changes (its key differs)."""
        options = [g for g in self.neighbors(genotype)]
        return options[int(rng.integers(len(options)))]

    def crossover(self, a: MacroGenotype, b: MacroGenotype, rng: np.random.Generator) -> MacroGenotype:
        take_a = rng.random(LAYERS) < 0.5
        return MacroGenotype(tuple(x if t else y for x, y, t in zip(a.layers, b.layers, take_a)))

    def neighbors(self, genotype: MacroGenotype) -> list[MacroGenotype]:
        """Every single-layer change that gives another network (distinct keys)."""
        seen, out = {genotype.key}, []
        for i in range(LAYERS):
            for c in CHOICES:
                if c != genotype.layers[i]:
                    g = self._with(genotype, i, c)
                    if g.key not in seen:
                        seen.add(g.key)
                        out.append(g)
        return out

    def encode(self, genotype: MacroGenotype) -> np.ndarray:
        """One-hot choice per layer of the canonical form."""
        canonical = [int(ch) for ch in genotype.key]
        return np.concatenate([np.eye(len(CHOICES), dtype=np.float32)[c] for c in canonical])

    def validate(self, genotype: Any) -> MacroGenotype:
        if not isinstance(genotype, MacroGenotype):
            raise GenotypeError("genotype", f"expected a macro genotype, got {genotype!r}"[:200])
        return genotype

    def blocks(self, genotype: MacroGenotype, stem_channels: int = STEM_CHANNELS) -> list[MobileBlockSpec]:
        """The 8 layers as block specs (identity where the choice is 0)."""
        specs, channels, it = [], stem_channels, iter(genotype.layers)
        for n in STAGES:
            for idx in range(n):
                choice = next(it)
                out, stride = (channels * 2, 2) if idx == 0 else (channels, 1)
                if choice == 0:
                    specs.append(MobileBlockSpec("skip", channels, out, stride))
                else:
                    expansion, kernel = BLOCKS[choice]
                    specs.append(MobileBlockSpec("mb", channels, out, stride, expansion, kernel))
                channels = out
        return specs

    def build_options(self) -> dict[str, Any]:
        return {"width": 1.0}

    def network_call(
        self, genotype: MacroGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        width = float(options.get("width", 1.0))
        if width <= 0:
            raise GenotypeError("width", f"must be positive, got {width}")
        stem = max(4, round(STEM_CHANNELS * width))
        return MobileNetwork, {"blocks": self.blocks(genotype, stem), "stem_channels": stem, "stem_stride": 1,
                               "head_channels": HEAD_CHANNELS, "num_classes": num_classes,
                               "in_channels": in_channels}  # fmt: skip

    def build_network(
        self, genotype: MacroGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        cls, kwargs = self.network_call(genotype, in_channels, num_classes, input_size, **options)
        return cls(**kwargs)

    def block_cover(self) -> list[MacroGenotype]:
        """Genotypes whose networks together hold every block any network of the space holds (a layer's block
        depends only on its position and choice): one per choice, every layer making it."""
        return [MacroGenotype((c,) * LAYERS) for c in CHOICES]

    def size(self) -> int:
        return len(CHOICES) ** LAYERS

    def enumerate(self) -> Iterator[MacroGenotype]:
        for layers in itertools.product(CHOICES, repeat=LAYERS):
            yield MacroGenotype(layers)

    def ops(self) -> list[str]:
        return ["identity", "mb3_k3", "mb6_k5"]

    def complexity(self, genotype: MacroGenotype) -> float:
        """Sum of the choices (0 identity < 1 MB3-K3 < 2 MB6-K5)."""
        return float(sum(genotype.layers))

    def from_json(self, obj: Mapping[str, Any]) -> MacroGenotype:
        check_keys(obj, self.name, ["arch"])
        if not isinstance(obj["arch"], str):
            raise GenotypeError("arch", f"must be the 8-digit string, got {obj['arch']!r}")
        return parse_digits(obj["arch"])

    @classmethod
    def recognizes(cls, text: str) -> bool:
        return text.strip().isdigit()

    text_example = "a macro '02012100'"

    def drawings(self, genotype: MacroGenotype) -> list[Drawing]:
        labels = ["identity" if c == 0 else f"MB{BLOCKS[c][0]} K{BLOCKS[c][1]}" for c in genotype.layers]
        starts = [sum(STAGES[:i]) for i in range(len(STAGES))]
        stages = tuple(tuple(labels[a : a + n]) for a, n in zip(starts, STAGES))
        return [Drawing("network", f"macro network ({len(labels)} searched layers)", Stages(stages))]

    def tiny_build(self) -> dict[str, Any]:
        return {"width": 0.125}

    def parse(self, text: str) -> MacroGenotype:
        """The 8-digit string (``02012100``) or JSON."""
        if text.strip().startswith("{"):
            return super().parse(text)
        return parse_digits(text)

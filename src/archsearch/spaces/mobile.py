"""A MnasNet / ProxylessNAS-like space: stages of inverted residuals at ImageNet widths, searched per layer and depth.

The network (``archsearch.nn.mobile.MobileNetwork``): a 3x3 stem conv (32 channels), a fixed inverted residual of
expansion 1 to 16 channels, then the stages of :data:`STAGES` (channels, stride of the first layer, allowed depths)
and a 1x1 head conv to 1280 channels, pooling and a linear classifier. Per stage the depth is searched; per layer the
depthwise kernel (3/5/7), the expansion (3/6) and squeeze-excitation (on/off). Channels are scaled by the ``width``
build option and rounded to multiples of 8 (MobileNet's rule), so small inputs get small networks; inputs under
64 px keep stride 1 in the stem and the first stage (as the CIFAR versions of these networks do), so 28x28 and 32x32
images end at 4x4 and 224x224 images at 7x7.

Text form and key: stages separated by ``|``, layers by ``-``, each ``k<kernel>e<expansion>`` plus ``se`` when
squeeze-excitation is on, e.g. ``k3e3-k5e6se|k3e6-k3e3|...``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.nn.mobile import MobileBlockSpec, MobileNetwork
from archsearch.spaces.base import Chooser, Decision, Space, check_keys
from archsearch.spaces.drawing import Drawing, Stages

KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANSIONS: tuple[int, ...] = (3, 6)
SE: tuple[bool, ...] = (False, True)
#: (output channels at width 1, stride of the stage's first layer, allowed depths), as in ProxylessNAS's backbone
STAGES: tuple[tuple[int, int, tuple[int, ...]], ...] = (
    (24, 2, (2, 3, 4)),
    (40, 2, (2, 3, 4)),
    (80, 2, (2, 3, 4)),
    (96, 1, (2, 3, 4)),
    (192, 2, (2, 3, 4)),
    (320, 1, (1,)),
)
STEM_CHANNELS, FIRST_CHANNELS, HEAD_CHANNELS = 32, 16, 1280
SMALL_INPUT = 64  # below this many pixels a side, the stem and first stage do not stride
_LAYER = re.compile(r"k(\d+)e(\d+)(se)?")


def round_channels(channels: float, divisor: int = 8) -> int:
    """MobileNet's rounding: the nearest multiple of ``divisor`` not below 90% of ``channels`` (at least one)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


@dataclass(frozen=True)
class MobileLayer:
    """One searched layer: depthwise kernel, expansion ratio, squeeze-excitation."""

    kernel: int
    expansion: int
    se: bool = False

    def text(self) -> str:
        return f"k{self.kernel}e{self.expansion}" + ("se" if self.se else "")


@dataclass(frozen=True)
class MobileGenotype:
    """The layers of every stage (a stage's depth is its number of layers)."""

    stages: tuple[tuple[MobileLayer, ...], ...]
    space: ClassVar[str] = "mobile"

    def __post_init__(self) -> None:
        if not isinstance(self.stages, tuple) or not all(isinstance(s, tuple) for s in self.stages):
            raise GenotypeError("stages", "must be a tuple of stages, each a tuple of layers")
        for i, stage in enumerate(self.stages):
            for j, layer in enumerate(stage):
                where = f"stages[{i}][{j}]"
                if not isinstance(layer, MobileLayer):
                    raise GenotypeError(where, f"must be a MobileLayer, got {type(layer).__name__}")
                if layer.kernel not in KERNELS or isinstance(layer.kernel, bool):
                    raise GenotypeError(f"{where}.kernel", f"{layer.kernel!r} is not allowed (allowed: {KERNELS})")
                if layer.expansion not in EXPANSIONS or isinstance(layer.expansion, bool):
                    raise GenotypeError(f"{where}.expansion", f"{layer.expansion!r} is not allowed ({EXPANSIONS})")
                if not isinstance(layer.se, bool):
                    raise GenotypeError(f"{where}.se", f"must be true or false, got {layer.se!r}")

    @cached_property
    def key(self) -> str:
        return "|".join("-".join(layer.text() for layer in stage) for stage in self.stages)

    def __str__(self) -> str:
        return self.key

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "stages": [[vars(layer) for layer in stage] for stage in self.stages]}


class MobileSpace(Space[MobileGenotype]):
    """Stages of inverted residuals with searched depth, kernel, expansion and SE (see the module docstring).

    ``stages`` replaces the stage table: ``[(channels, stride, depths), ...]``."""

    name = "mobile"
    description = "MnasNet/ProxylessNAS-like: per stage a depth, per layer kernel 3/5/7, expansion 3/6, SE on/off"

    def __init__(self, stages: Sequence[Sequence[Any]] | None = None) -> None:
        table = STAGES if stages is None else stages
        checked = []
        for i, row in enumerate(table):
            try:
                channels, stride, depths = int(row[0]), int(row[1]), tuple(int(d) for d in row[2])
            except (TypeError, ValueError, IndexError):
                raise GenotypeError(f"stages[{i}]", f"must be (channels, stride, depths), got {row!r}") from None
            if channels < 1 or stride not in (1, 2) or not depths or min(depths) < 1 or len(set(depths)) != len(depths):
                raise GenotypeError(f"stages[{i}]", f"needs channels >= 1, stride 1/2, distinct depths >= 1: {row!r}")
            checked.append((channels, stride, depths))
        if not checked:
            raise GenotypeError("stages", "the stage table is empty")
        self.stages: tuple[tuple[int, int, tuple[int, ...]], ...] = tuple(checked)

    # --- the decision view ---------------------------------------------------------------------------------------
    def decide(self, choose: Chooser) -> MobileGenotype:
        stages = []
        for i, (_, _, depths) in enumerate(self.stages):
            depth = choose(f"s{i}.depth", depths)
            stages.append(tuple(
                MobileLayer(choose(f"s{i}.l{j}.kernel", KERNELS), choose(f"s{i}.l{j}.expansion", EXPANSIONS),
                            choose(f"s{i}.l{j}.se", SE))
                for j in range(depth)
            ))  # fmt: skip
        return MobileGenotype(tuple(stages))

    def decisions(self, genotype: MobileGenotype) -> list[Decision]:
        self.validate(genotype)
        out = []
        for i, stage in enumerate(genotype.stages):
            out.append(Decision(f"s{i}.depth", self.stages[i][2], len(stage)))
            for j, layer in enumerate(stage):
                out += [Decision(f"s{i}.l{j}.kernel", KERNELS, layer.kernel),
                        Decision(f"s{i}.l{j}.expansion", EXPANSIONS, layer.expansion),
                        Decision(f"s{i}.l{j}.se", SE, layer.se)]  # fmt: skip
        return out

    # --- search operators ----------------------------------------------------------------------------------------
    def _random_layer(self, rng: np.random.Generator) -> MobileLayer:
        return MobileLayer(KERNELS[int(rng.integers(3))], EXPANSIONS[int(rng.integers(2))], SE[int(rng.integers(2))])

    def mutate(self, genotype: MobileGenotype, rng: np.random.Generator) -> MobileGenotype:
        """One decision changed: a stage's depth (new layers drawn at random) or one field of one layer."""
        variable = [d for d in self.decisions(genotype) if len(d.choices) > 1]
        d = variable[int(rng.integers(len(variable)))]
        value = [c for c in d.choices if c != d.value][int(rng.integers(len(d.choices) - 1))]
        stages = list(genotype.stages)
        i = int(d.name[1 : d.name.index(".")])
        if d.name.endswith(".depth"):
            layers = stages[i][:value]
            stages[i] = layers + tuple(self._random_layer(rng) for _ in range(value - len(layers)))
        else:
            j, field = int(d.name.split(".")[1][1:]), d.name.rsplit(".", 1)[1]
            stages[i] = tuple(_replace(la, field, value) if k == j else la for k, la in enumerate(stages[i]))
        return MobileGenotype(tuple(stages))

    def crossover(self, a: MobileGenotype, b: MobileGenotype, rng: np.random.Generator) -> MobileGenotype:
        """Each stage taken whole from one parent."""
        take_a = rng.random(len(self.stages)) < 0.5
        return MobileGenotype(tuple(x if t else y for x, y, t in zip(a.stages, b.stages, take_a)))

    def neighbors(self, genotype: MobileGenotype) -> list[MobileGenotype]:
        """Every one-decision change; a deeper stage repeats its last layer."""
        self.validate(genotype)
        out: dict[str, MobileGenotype] = {}
        for i, stage in enumerate(genotype.stages):
            for depth in self.stages[i][2]:
                if depth != len(stage):
                    layers = stage[:depth] + (stage[-1],) * max(0, depth - len(stage))
                    g = MobileGenotype(genotype.stages[:i] + (layers,) + genotype.stages[i + 1 :])
                    out.setdefault(g.key, g)
            for j, layer in enumerate(stage):
                for field, choices in (("kernel", KERNELS), ("expansion", EXPANSIONS), ("se", SE)):
                    for c in choices:
                        if c != getattr(layer, field):
                            new = stage[:j] + (_replace(layer, field, c),) + stage[j + 1 :]
                            g = MobileGenotype(genotype.stages[:i] + (new,) + genotype.stages[i + 1 :])
                            out.setdefault(g.key, g)
        out.pop(genotype.key, None)
        return list(out.values())

    def encode(self, genotype: MobileGenotype) -> np.ndarray:
        """Per stage and layer slot: active, one-hot kernel, one-hot expansion, SE (zeros for an absent layer)."""
        parts = []
        for i, (_, _, depths) in enumerate(self.stages):
            for j in range(max(depths)):
                slot = np.zeros(7, dtype=np.float32)
                if j < len(genotype.stages[i]):
                    la = genotype.stages[i][j]
                    slot[0], slot[1 + KERNELS.index(la.kernel)] = 1.0, 1.0
                    slot[4 + EXPANSIONS.index(la.expansion)], slot[6] = 1.0, float(la.se)
                parts.append(slot)
        return np.concatenate(parts)

    def validate(self, genotype: Any) -> MobileGenotype:
        if not isinstance(genotype, MobileGenotype):
            raise GenotypeError("genotype", f"expected a mobile genotype, got {genotype!r}"[:200])
        if len(genotype.stages) != len(self.stages):
            raise GenotypeError("stages", f"the space has {len(self.stages)} stages, got {len(genotype.stages)}")
        for i, (stage, (_, _, depths)) in enumerate(zip(genotype.stages, self.stages)):
            if len(stage) not in depths:
                raise GenotypeError(f"stages[{i}]", f"depth {len(stage)} is not allowed (allowed: {list(depths)})")
            for j, layer in enumerate(stage):
                for field, choices in (("kernel", KERNELS), ("expansion", EXPANSIONS), ("se", SE)):
                    value = getattr(layer, field, None)
                    # exact types: 3.0 or True is not the kernel 3, 1 is not se=True
                    if type(value) is not type(choices[0]) or value not in choices:
                        raise GenotypeError(f"stages[{i}][{j}].{field}", f"{value!r:.40} is not allowed (allowed: "
                                            f"{', '.join(map(str, choices))})")  # fmt: skip
        return genotype

    # --- the network ---------------------------------------------------------------------------------------------
    def build_options(self) -> dict[str, Any]:
        return {"width": 1.0, "head": HEAD_CHANNELS}

    def network_call(
        self, genotype: MobileGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        width, head = float(options.get("width", 1.0)), int(options.get("head", HEAD_CHANNELS))
        if width <= 0 or head < 1:
            raise GenotypeError("build options", f"width must be > 0 and head >= 1, got {width}, {head}")
        small = input_size < SMALL_INPUT
        stem = round_channels(STEM_CHANNELS * width)
        channels = round_channels(FIRST_CHANNELS * width)
        blocks = [MobileBlockSpec("mb", stem, channels, 1, 1, 3)]
        for i, (stage, (c, stride, _)) in enumerate(zip(genotype.stages, self.stages)):
            out = round_channels(c * width)
            for j, la in enumerate(stage):
                s = (1 if small and i == 0 else stride) if j == 0 else 1
                blocks.append(MobileBlockSpec("mb", channels, out, s, la.expansion, la.kernel, la.se))
                channels = out
        return MobileNetwork, {"blocks": blocks, "stem_channels": stem, "stem_stride": 1 if small else 2,
                               "head_channels": head, "num_classes": num_classes,
                               "in_channels": in_channels}  # fmt: skip

    def build_network(
        self, genotype: MobileGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        cls, kwargs = self.network_call(genotype, in_channels, num_classes, input_size, **options)
        return cls(**kwargs)

    def block_cover(self) -> list[MobileGenotype]:
        """Genotypes whose networks together hold every block any network of the space holds: a layer's block
        depends only on its stage, whether it is the stage's first, and its choices, so one genotype per layer
        choice, every stage at its greatest depth and every layer making that choice."""
        return [MobileGenotype(tuple((MobileLayer(k, e, se),) * max(d) for _, _, d in self.stages))
                for k in KERNELS for e in EXPANSIONS for se in SE]  # fmt: skip

    # --- size, text, JSON ----------------------------------------------------------------------------------------
    def size(self) -> int:
        per_layer = len(KERNELS) * len(EXPANSIONS) * len(SE)
        return int(np.prod([sum(per_layer**d for d in depths) for _, _, depths in self.stages], dtype=object))

    def ops(self) -> list[str]:
        return [f"k{k}e{e}" + s for k in KERNELS for e in EXPANSIONS for s in ("", "se")]

    def complexity(self, genotype: MobileGenotype) -> float:
        """Layers weighted by expansion and kernel area (a rough multiply-add measure)."""
        return float(sum(la.expansion * la.kernel**2 / 9 + 0.5 * la.se for s in genotype.stages for la in s))

    def from_json(self, obj: Mapping[str, Any]) -> MobileGenotype:
        check_keys(obj, self.name, ["stages"])
        if not isinstance(obj["stages"], list) or not all(isinstance(s, list) for s in obj["stages"]):
            raise GenotypeError("stages", "must be a list of stages, each a list of layer objects")
        stages = []
        for i, stage in enumerate(obj["stages"]):
            layers = []
            for j, item in enumerate(stage):
                if not isinstance(item, Mapping) or sorted(item) != ["expansion", "kernel", "se"]:
                    raise GenotypeError(f"stages[{i}][{j}]", "must be an object with exactly kernel, expansion, se")
                layers.append(MobileLayer(item["kernel"], item["expansion"], item["se"]))
            stages.append(tuple(layers))
        return self.validate(MobileGenotype(tuple(stages)))

    @classmethod
    def recognizes(cls, text: str) -> bool:
        return re.fullmatch(r"k\d.*", text.strip()) is not None

    text_example = "a mobile 'k3e6-k5e3se|...'"

    def drawings(self, genotype: MobileGenotype) -> list[Drawing]:
        stages = tuple(tuple(f"MB{la.expansion} K{la.kernel}" + (" SE" if la.se else "") for la in stage)
                       for stage in genotype.stages)  # fmt: skip
        title = f"mobile network ({sum(map(len, stages))} searched layers)"
        return [Drawing("network", title, Stages(stages))]

    def tiny_build(self) -> dict[str, Any]:
        return {"width": 0.125, "head": 32}

    def parse(self, text: str) -> MobileGenotype:
        """``k3e3-k5e6se|k3e6-k3e3|...`` or JSON."""
        text = text.strip()
        if text.startswith("{"):
            return super().parse(text)
        stages = []
        for i, part in enumerate(text.split("|")):
            layers = []
            for j, token in enumerate(part.strip().split("-")):
                m = _LAYER.fullmatch(token.strip())
                if not m:
                    expected = "expected k<3|5|7>e<3|6>[se], e.g. k5e6se"
                    raise GenotypeError(f"stage {i} layer {j}", f"cannot read {token.strip()!r}: {expected}")
                layers.append(MobileLayer(int(m[1]), int(m[2]), bool(m[3])))
            stages.append(tuple(layers))
        return self.validate(MobileGenotype(tuple(stages)))


def _replace(layer: MobileLayer, field: str, value: Any) -> MobileLayer:
    values = {**vars(layer), field: value}
    return MobileLayer(values["kernel"], values["expansion"], values["se"])

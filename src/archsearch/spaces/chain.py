"""The macro chain space: 3-20 layers in sequence, each a conv (kernel 1/3/5/7, 16-256 channels, stride 1
or 2) or a 3x3 max/avg pool, with optional skip / dense connections from earlier layers, merged by add or concat.

Text form and key: ``add: conv3x3/64/s1 | maxpool/s2 | conv5x5/128/s1 +0``. ``+0`` lists the earlier layers (by
index) whose outputs join this layer's input besides the previous layer's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch import nn

from archsearch.errors import GenotypeError
from archsearch.nn.networks import ChainLayerSpec, ChainNetwork
from archsearch.spaces.base import Chooser, Decision, Space, check_keys
from archsearch.spaces.drawing import Drawing, LayerStack

LAYER_OPS: tuple[str, ...] = ("conv", "max_pool", "avg_pool")
KERNELS: tuple[int, ...] = (1, 3, 5, 7)
CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)
STRIDES: tuple[int, ...] = (1, 2)
MERGES: tuple[str, ...] = ("add", "concat")
POOL_KERNEL = 3
_POOL_TEXT = {"max_pool": "maxpool", "avg_pool": "avgpool"}


@dataclass(frozen=True)
class ChainLayer:
    """One layer: ``op`` with its kernel, output channels (0 for a pool), stride and extra (skip) inputs."""

    op: str
    kernel: int
    channels: int
    stride: int
    inputs: tuple[int, ...] = ()

    def text(self) -> str:
        body = f"conv{self.kernel}x{self.kernel}/{self.channels}" if self.op == "conv" else _POOL_TEXT[self.op]
        skips = " +" + ",".join(str(j) for j in self.inputs) if self.inputs else ""
        return f"{body}/s{self.stride}{skips}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class ChainGenotype:
    """A chain of layers and how skip inputs are merged (``add`` or ``concat``)."""

    layers: tuple[ChainLayer, ...]
    merge: str = "add"
    space: ClassVar[str] = "chain"

    def __post_init__(self) -> None:
        if self.merge not in MERGES:
            raise GenotypeError("merge", f"unknown merge {self.merge!r} (allowed: {', '.join(MERGES)})")
        if not isinstance(self.layers, tuple) or not self.layers:
            raise GenotypeError("layers", "must be a non-empty tuple of layers")
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            if not isinstance(layer, ChainLayer):
                raise GenotypeError(where, f"must be a ChainLayer, got {type(layer).__name__}")
            if layer.op not in LAYER_OPS:
                raise GenotypeError(f"{where}.op", f"unknown op {layer.op!r} (allowed: {', '.join(LAYER_OPS)})")
            if layer.op == "conv":
                if not _is_int(layer.kernel) or layer.kernel < 1 or layer.kernel % 2 == 0:
                    raise GenotypeError(f"{where}.kernel", f"must be an odd positive integer, got {layer.kernel!r}")
                if not _is_int(layer.channels) or layer.channels < 1:
                    raise GenotypeError(f"{where}.channels", f"must be a positive integer, got {layer.channels!r}")
            else:
                if layer.kernel != POOL_KERNEL:
                    raise GenotypeError(f"{where}.kernel", f"a pool's kernel is {POOL_KERNEL}, got {layer.kernel!r}")
                if layer.channels != 0:
                    raise GenotypeError(
                        f"{where}.channels", f"a pool keeps its channels: must be 0, got {layer.channels!r}"
                    )
            if layer.stride not in STRIDES or not _is_int(layer.stride):
                raise GenotypeError(f"{where}.stride", f"must be 1 or 2, got {layer.stride!r}")
            if not isinstance(layer.inputs, tuple) or not all(_is_int(j) for j in layer.inputs):
                raise GenotypeError(f"{where}.inputs", f"must be a tuple of layer indices, got {layer.inputs!r}")
            for j in layer.inputs:
                if not 0 <= j < i - 1:
                    raise GenotypeError(
                        f"{where}.inputs",
                        f"input {j} is not an earlier layer before layer {i - 1} "
                        f"(allowed: 0..{i - 2}; layer {i - 1} is already the main input)",
                    )
            if list(layer.inputs) != sorted(set(layer.inputs)):
                raise GenotypeError(f"{where}.inputs", f"must be sorted and unique, got {list(layer.inputs)}")

    @cached_property
    def key(self) -> str:
        return f"{self.merge}: " + " | ".join(layer.text() for layer in self.layers)

    def __str__(self) -> str:
        return self.key

    def to_json(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "merge": self.merge,
            "layers": [
                {
                    "op": la.op,
                    "kernel": la.kernel,
                    "channels": la.channels,
                    "stride": la.stride,
                    "inputs": list(la.inputs),
                }
                for la in self.layers
            ],
        }

    @classmethod
    def from_string(cls, text: str) -> ChainGenotype:
        """Parse the text form ``merge: layer | layer | ...``."""
        merge, sep, body = text.strip().partition(":")
        if not sep:
            raise GenotypeError("chain string", f"must start with 'add:' or 'concat:', got {text[:40]!r}")
        layers = []
        for i, part in enumerate(body.split("|")):
            m = _LAYER_RE.fullmatch(part.strip())
            if not m:
                raise GenotypeError(
                    f"layers[{i}]", f"cannot read {part.strip()!r} (expected e.g. 'conv3x3/64/s1 +0,2' or 'maxpool/s2')"
                )
            if m["k1"] is not None and m["k1"] != m["k2"]:
                raise GenotypeError(f"layers[{i}].kernel", f"kernels are square, got {m['k1']}x{m['k2']}")
            inputs = tuple(int(j) for j in m["inputs"].split(",")) if m["inputs"] else ()
            if m["pool"]:
                op = "max_pool" if m["pool"] == "maxpool" else "avg_pool"
                layers.append(ChainLayer(op, POOL_KERNEL, 0, int(m["stride"]), inputs))
            else:
                layers.append(ChainLayer("conv", int(m["k1"]), int(m["channels"]), int(m["stride"]), inputs))
        return cls(tuple(layers), merge.strip())


_LAYER_RE = re.compile(
    r"(?:conv(?P<k1>\d+)x(?P<k2>\d+)/(?P<channels>\d+)|(?P<pool>maxpool|avgpool))/s(?P<stride>\d+)"
    r"(?:\s*\+(?P<inputs>\d+(?:,\d+)*))?"
)


class ChainSpace(Space[ChainGenotype]):
    """Chains of ``min_layers``..``max_layers`` layers; random samples draw each skip with ``skip_prob``."""

    name = "chain"
    description = "macro chain: 3-20 conv/pool layers, skip/dense connections, add or concat merge"

    def __init__(
        self,
        min_layers: int = 3,
        max_layers: int = 20,
        channels: Sequence[int] = CHANNELS,
        kernels: Sequence[int] = KERNELS,
        skip_prob: float = 0.2,
    ) -> None:
        if not 1 <= min_layers <= max_layers:
            raise GenotypeError("layers", f"need 1 <= min_layers <= max_layers, got {min_layers}, {max_layers}")
        self.min_layers, self.max_layers = min_layers, max_layers
        self.channels, self.kernels = tuple(channels), tuple(kernels)
        self.skip_prob = skip_prob

    # --- decisions ---------------------------------------------------------------------------------------------
    def decide(self, choose: Chooser) -> ChainGenotype:
        depth = choose("depth", tuple(range(self.min_layers, self.max_layers + 1)))
        merge = choose("merge", MERGES)
        layers = []
        for i in range(depth):
            op = choose(f"layer{i}.op", ("conv", "pool"))
            if op == "pool":
                op = choose(f"layer{i}.pool", ("max", "avg")) + "_pool"
            kernel, channels = POOL_KERNEL, 0
            if op == "conv":
                kernel = choose(f"layer{i}.kernel", self.kernels)
                channels = choose(f"layer{i}.channels", self.channels)
            stride = choose(f"layer{i}.stride", STRIDES)
            inputs = tuple(j for j in range(i - 1) if choose(f"layer{i}.skip{j}", (0, 1)))
            layers.append(ChainLayer(op, kernel, channels, stride, inputs))
        return ChainGenotype(tuple(layers), merge)

    def decisions(self, genotype: ChainGenotype) -> list[Decision]:
        out = [
            Decision("depth", tuple(range(self.min_layers, self.max_layers + 1)), len(genotype.layers)),
            Decision("merge", MERGES, genotype.merge),
        ]
        for i, la in enumerate(genotype.layers):
            out.append(Decision(f"layer{i}.op", ("conv", "pool"), "conv" if la.op == "conv" else "pool"))
            if la.op != "conv":
                out.append(Decision(f"layer{i}.pool", ("max", "avg"), la.op.removesuffix("_pool")))
            else:
                out.append(Decision(f"layer{i}.kernel", self.kernels, la.kernel))
                out.append(Decision(f"layer{i}.channels", self.channels, la.channels))
            out.append(Decision(f"layer{i}.stride", STRIDES, la.stride))
            out.extend(Decision(f"layer{i}.skip{j}", (0, 1), int(j in la.inputs)) for j in range(i - 1))
        return out

    def sample(self, rng: np.random.Generator) -> ChainGenotype:
        """Uniform over every decision except skips, each drawn with probability ``skip_prob``."""

        def choose(name: str, choices: Sequence[Any]) -> Any:
            if ".skip" in name:
                return int(rng.random() < self.skip_prob)
            return choices[int(rng.integers(len(choices)))]

        return self.decide(choose)

    # --- edits -------------------------------------------------------------------------------------------------
    def _conv(self, channels: int, stride: int = 1, inputs: tuple[int, ...] = ()) -> ChainLayer:
        return ChainLayer("conv", 3 if 3 in self.kernels else self.kernels[0], channels, stride, inputs)

    def _change_layer(self, g: ChainGenotype, i: int) -> list[ChainGenotype]:
        la = g.layers[i]
        alts: list[ChainLayer] = []
        for op in LAYER_OPS:
            if op == la.op:
                continue
            if op == "conv":
                alts.append(self._conv(self.channels[len(self.channels) // 2], la.stride, la.inputs))
            else:
                alts.append(ChainLayer(op, POOL_KERNEL, 0, la.stride, la.inputs))
        if la.op == "conv":
            alts += [replace(la, kernel=k) for k in self.kernels if k != la.kernel]
            alts += [replace(la, channels=c) for c in self.channels if c != la.channels]
        alts.append(replace(la, stride=3 - la.stride))
        for j in range(i - 1):
            alts.append(replace(la, inputs=tuple(sorted(set(la.inputs) ^ {j}))))
        return [ChainGenotype(g.layers[:i] + (alt,) + g.layers[i + 1 :], g.merge) for alt in alts]

    def _remove(self, g: ChainGenotype, r: int) -> ChainGenotype:
        layers = []
        for i, la in enumerate(g.layers):
            if i == r:
                continue
            new_i = i - (i > r)
            inputs = tuple(sorted({j - (j > r) for j in la.inputs if j != r and j - (j > r) < new_i - 1}))
            layers.append(replace(la, inputs=inputs))
        return ChainGenotype(tuple(layers), g.merge)

    def _insert(self, g: ChainGenotype, r: int) -> ChainGenotype:
        prev = next((la.channels for la in reversed(g.layers[:r]) if la.op == "conv"), self.channels[0])
        layers = [replace(la, inputs=tuple(j + (j >= r) for j in la.inputs)) for la in g.layers]
        layers.insert(r, self._conv(prev))
        return ChainGenotype(tuple(layers), g.merge)

    def neighbors(self, genotype: ChainGenotype) -> list[ChainGenotype]:
        out = [ChainGenotype(genotype.layers, m) for m in MERGES if m != genotype.merge]
        for i in range(len(genotype.layers)):
            out += self._change_layer(genotype, i)
        n = len(genotype.layers)
        if n > self.min_layers:
            out += [self._remove(genotype, r) for r in range(n)]
        if n < self.max_layers:
            out += [self._insert(genotype, r) for r in range(n + 1)]
        seen = {genotype.key}
        unique = []
        for child in out:
            if child.key not in seen:
                seen.add(child.key)
                unique.append(child)
        return unique

    def mutate(self, genotype: ChainGenotype, rng: np.random.Generator) -> ChainGenotype:
        n = len(genotype.layers)
        kinds = ["layer", "layer", "layer", "merge"]
        kinds += ["remove"] * (n > self.min_layers) + ["insert"] * (n < self.max_layers)
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "merge":
            return ChainGenotype(genotype.layers, "concat" if genotype.merge == "add" else "add")
        if kind == "remove":
            child = self._remove(genotype, int(rng.integers(n)))
        elif kind == "insert":
            child = self._insert(genotype, int(rng.integers(n + 1)))
        else:
            options = self._change_layer(genotype, int(rng.integers(n)))
            child = options[int(rng.integers(len(options)))]
        return child if child.key != genotype.key else self.mutate(genotype, rng)

    def crossover(self, a: ChainGenotype, b: ChainGenotype, rng: np.random.Generator) -> ChainGenotype:
        """One-point crossover: a prefix of ``a`` then a suffix of ``b``, skip inputs renumbered, length in range."""
        cuts = []
        for ca in range(1, len(a.layers) + 1):
            lo = max(0, ca + len(b.layers) - self.max_layers)
            hi = min(len(b.layers) - 1, ca + len(b.layers) - self.min_layers)
            cuts += [(ca, cb) for cb in range(lo, hi + 1)]
        ca, cb = cuts[int(rng.integers(len(cuts)))]
        layers = list(a.layers[:ca])
        for la in b.layers[cb:]:
            i = len(layers)
            inputs = tuple(sorted({j + ca - cb for j in la.inputs if 0 <= j + ca - cb < i - 1}))
            layers.append(replace(la, inputs=inputs))
        merge = a.merge if rng.random() < 0.5 else b.merge
        return ChainGenotype(tuple(layers), merge)

    # --- the rest ----------------------------------------------------------------------------------------------
    def encode(self, genotype: ChainGenotype) -> np.ndarray:
        """Per layer slot: present, op one-hot, kernel one-hot, log2 channels, stride; the skip matrix; merge."""
        m = self.max_layers
        per = 1 + len(LAYER_OPS) + len(self.kernels) + 2
        layers = np.zeros((m, per), dtype=np.float32)
        skips = np.zeros((m, m), dtype=np.float32)
        for i, la in enumerate(genotype.layers):
            layers[i, 0] = 1.0
            layers[i, 1 + LAYER_OPS.index(la.op)] = 1.0
            if la.op == "conv":
                layers[i, 1 + len(LAYER_OPS) + self.kernels.index(la.kernel)] = 1.0
                layers[i, -2] = np.log2(la.channels) / 8.0
            layers[i, -1] = la.stride - 1
            skips[i, list(la.inputs)] = 1.0
        tri = skips[np.tril_indices(m, -2)]
        return np.concatenate([layers.ravel(), tri, [float(genotype.merge == "concat")]]).astype(np.float32)

    def validate(self, genotype: Any) -> ChainGenotype:
        if not isinstance(genotype, ChainGenotype):
            raise GenotypeError("genotype", f"expected a chain genotype, got {type(genotype).__name__}")
        n = len(genotype.layers)
        if not self.min_layers <= n <= self.max_layers:
            raise GenotypeError("layers", f"{n} layers out of range (allowed: {self.min_layers}..{self.max_layers})")
        for i, la in enumerate(genotype.layers):
            for field in ("kernel", "channels", "stride"):
                value = getattr(la, field)
                if value is not None and type(value) is not int:  # 3.0 or True is not the kernel 3
                    raise GenotypeError(f"layers[{i}].{field}", f"{value!r:.40} is not a whole number")
            if la.op == "conv" and la.kernel not in self.kernels:
                raise GenotypeError(f"layers[{i}].kernel", f"{la.kernel} not allowed (allowed: {list(self.kernels)})")
            if la.op == "conv" and la.channels not in self.channels:
                raise GenotypeError(
                    f"layers[{i}].channels", f"{la.channels} not allowed (allowed: {list(self.channels)})"
                )
        return genotype

    def build_options(self) -> dict[str, Any]:
        return {"width": 1.0}

    def build_network(
        self, genotype: ChainGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        cls, kwargs = self.network_call(genotype, in_channels, num_classes, input_size, **options)
        return cls(**kwargs)

    def network_call(
        self, genotype: ChainGenotype, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> tuple[type[nn.Module], dict[str, Any]]:
        width = float(options.get("width", 1.0))
        if width <= 0:
            raise GenotypeError("width", f"must be positive, got {width}")
        specs = [ChainLayerSpec(la.op, la.kernel, la.channels, la.stride, la.inputs) for la in genotype.layers]
        return ChainNetwork, {"layers": specs, "merge": genotype.merge, "num_classes": num_classes,
                              "in_channels": in_channels, "width": width}  # fmt: skip

    def complexity(self, genotype: ChainGenotype) -> float:
        """Layers, plus half a layer per skip connection."""
        return len(genotype.layers) + 0.5 * sum(len(la.inputs) for la in genotype.layers)

    def ops(self) -> list[str]:
        return [f"conv{k}x{k}" for k in self.kernels] + ["max_pool_3x3", "avg_pool_3x3"]

    def from_json(self, obj: Mapping[str, Any]) -> ChainGenotype:
        check_keys(obj, self.name, ["merge", "layers"])
        if not isinstance(obj["layers"], list):
            raise GenotypeError("layers", "must be a list of layer objects")
        layers = []
        for i, item in enumerate(obj["layers"]):
            fields = ["op", "kernel", "channels", "stride", "inputs"]
            if not isinstance(item, Mapping) or sorted(item) != sorted(fields):
                raise GenotypeError(f"layers[{i}]", f"must be an object with exactly the fields {fields}")
            inputs = item["inputs"]
            if not isinstance(inputs, list):
                raise GenotypeError(f"layers[{i}].inputs", f"must be a list of layer indices, got {inputs!r}")
            layers.append(ChainLayer(item["op"], item["kernel"], item["channels"], item["stride"], tuple(inputs)))
        return self.validate(ChainGenotype(tuple(layers), obj["merge"]))

    @classmethod
    def recognizes(cls, text: str) -> bool:
        return text.strip().startswith(("add:", "concat:"))

    text_example = "a chain 'add: ...'"

    def drawings(self, genotype: ChainGenotype) -> list[Drawing]:
        layers = tuple(f"{i}: {layer.text().split(' +')[0]}" for i, layer in enumerate(genotype.layers))
        skips = tuple((j, i) for i, layer in enumerate(genotype.layers) for j in layer.inputs)
        title = f"chain network ({len(layers)} layers)"
        return [Drawing("network", title, LayerStack(layers, skips, genotype.merge))]

    def tiny_build(self) -> dict[str, Any]:
        return {"width": 0.0625}

    def parse(self, text: str) -> ChainGenotype:
        stripped = text.strip()
        if stripped.startswith(MERGES):
            return self.validate(ChainGenotype.from_string(stripped))
        return super().parse(text)

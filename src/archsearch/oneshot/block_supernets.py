"""Supernets of the chain spaces ``mobile`` (MnasNet / ProxylessNAS-like) and ``macro`` (NAS-Bench-Macro): a stem,
fixed blocks, then one *slot* per searched layer holding a block for each of its choices, and a head.

``mobile``: a stage with allowed depths ``D`` has ``max(D)`` slots, each choosing one of the 12 inverted residuals
(kernel 3/5/7, expansion 3/6, squeeze-excitation off/on) or, when ``j >= min(D)``, the identity (``skip``). A
genotype of depth ``d`` runs its layers in slots ``0..d-1`` and the identity in the rest: exactly the network's
blocks, since a stage's later layers keep its channels at stride 1. The identity's entry of a slot that cannot skip
is masked to ``-inf`` (:meth:`BlockSupernet.arch_logits`), so no method samples or weighs it. A slot's 12 blocks
share one set of weights, each a slice of the largest (:mod:`archsearch.oneshot.shared_blocks`, which says why).

``macro``: 8 slots, each the identity (a strided 1x1 conv where the layer changes the shape), MB3-K3 or MB6-K5.

Memory is that of one path when a method runs single paths (GDAS's Gumbel samples, SPOS); DARTS's mixed step runs
every block of every slot. The expected latency (:meth:`BlockSupernet.expected_latency`) is a latency table's
prediction with each slot's block replaced by the probability-weighted sum of its choices' entries (a mobile
identity adds nothing): stem, fixed blocks and head included, the call overhead counted once per block that runs and
the table's calibration scale applied, so for a one-hot choice it equals
:meth:`~archsearch.costs.lookup.LatencyTable.predict` of that network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.costs.lookup import LatencyTable, block_key, network_blocks
from archsearch.errors import BuildError
from archsearch.nn.mobile import MobileBlockSpec, MobileHead, MobileStem, make_block
from archsearch.oneshot.search_cell import CellArch
from archsearch.oneshot.shared_blocks import SharedSlot
from archsearch.oneshot.supernets import Supernet
from archsearch.spaces.macro import CHOICES, LAYERS, MacroGenotype, MacroSpace
from archsearch.spaces.mobile import EXPANSIONS, KERNELS, SE, MobileGenotype, MobileLayer, MobileSpace

SKIP = "skip"
#: a mobile slot's choices: every block of the space (in :meth:`MobileSpace.ops`'s order), then the identity
MOBILE_OPS: tuple[str, ...] = (*(f"k{k}e{e}" + ("se" if se else "") for k in KERNELS for e in EXPANSIONS for se in SE),
                               SKIP)  # fmt: skip
_LAYERS = tuple(MobileLayer(k, e, se) for k in KERNELS for e in EXPANSIONS for se in SE)


class ChoiceList(nn.ModuleList):
    """A slot with a separate block per choice (``None`` in the layout: the identity)."""

    def run(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Choice ``k`` on ``x``."""
        return self[k](x)


class BlockSupernet(Supernet):
    """Stem, fixed blocks, one slot per searched layer (a block per choice; ``None``: the identity), head. A
    subclass lays the network out (:meth:`layout`) and maps genotypes to and from a choice per slot."""

    cell_types = ("layer",)

    def __init__(self, space: Any, in_channels: int, num_classes: int, input_size: int, build: dict[str, Any],
                 seed: int) -> None:  # fmt: skip
        super().__init__()
        self.space, self.build = space, build
        self.input_shape, self.num_classes = (in_channels, input_size, input_size), num_classes
        reference, stem, fixed, slots, head = self.layout()
        self.reference = reference  # a genotype whose network has a block in every slot (for the slots' shapes)
        self.fixed_specs, self.slot_specs = fixed, slots
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = MobileStem(in_channels, *stem)
            self.fixed = nn.ModuleList(make_block(s) for s in fixed)
            self.layers = nn.ModuleList(self.make_slot(choices) for choices in slots)
            self.head = MobileHead(*head, num_classes)
        self._init_arch(len(slots), False, generator)
        self.register_buffer("choice_mask", self.mask())

    # --- what a subclass says ------------------------------------------------------------------------------------
    def layout(self) -> tuple[Any, tuple[int, int], list[MobileBlockSpec], list[list[MobileBlockSpec | None]],
                              tuple[int, int]]:  # fmt: skip
        """(reference genotype, stem (channels, stride), fixed block specs, per slot the spec of each choice,
        head (in channels, channels))."""
        raise NotImplementedError

    def make_slot(self, choices: list[MobileBlockSpec | None]) -> nn.Module:
        """The module of one slot (its ``run(x, k)`` runs choice ``k``): here a separate block per choice."""
        return ChoiceList(nn.Identity() if s is None else make_block(s) for s in choices)

    def mask(self) -> torch.Tensor:
        """0 where a slot allows a choice, ``-inf`` where it does not."""
        return torch.zeros(len(self.slot_specs), len(self.op_names))

    def edge_list(self) -> list[tuple[int, int]]:
        return [(e, e) for e in range(len(self.slot_specs))]

    def arch_logits(self) -> dict[str, torch.Tensor]:
        """The alphas with the choices a slot does not allow masked out."""
        return {"layer": self.alphas["layer"] + self.choice_mask}

    # --- running -------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, archs: Mapping[str, CellArch] | None = None) -> torch.Tensor:
        arch = (self.mixed_archs() if archs is None else archs)["layer"]
        x = self.stem(x)
        for block in self.fixed:
            x = block(x)
        for e, blocks in enumerate(self.layers):
            if arch.choice is not None:
                k = int(arch.choice[e])
                x = blocks.run(x, k) if arch.hard is None else blocks.run(x, k) * arch.hard[e, k]
            else:
                assert arch.weights is not None
                w = arch.weights[e]
                x = sum((w[k] * blocks.run(x, k) for k in range(len(w)) if float(w[k].detach()) != 0.0),
                        torch.zeros((), device=x.device))  # fmt: skip
        return self.head(x)

    # --- latency -------------------------------------------------------------------------------------------------
    def latency_terms(self, table: LatencyTable) -> tuple[float, torch.Tensor]:
        """``(fixed, per_choice)``: the table's milliseconds for the blocks every network has, with the call
        overhead counted once, and per slot and choice what that choice adds (its entry less the overhead; 0 for an
        identity that runs no block), both before the table's scale. Refuses a table built for another space,
        input, classes or build, naming the difference."""
        table.check(self.space.name, input_shape=self.input_shape, num_classes=self.num_classes, build=self.build)
        blocks = network_blocks(self.space, self.reference, self.input_shape, self.num_classes, self.build)
        n = len(self.fixed_specs)
        entry, overhead = _entry(table), table.overhead_ms
        # stem, fixed blocks and head; a slot's input shape does not depend on the choices before it
        fixed = overhead + sum(entry(key) - overhead for key, _, _ in (*blocks[: 1 + n], blocks[-1]))
        per_choice = torch.zeros(len(self.slot_specs), len(self.op_names))
        for e, (choices, (_, _, shape)) in enumerate(zip(self.slot_specs, blocks[1 + n : -1])):
            for k, spec in enumerate(choices):
                if spec is not None:
                    per_choice[e, k] = entry(block_key(spec, shape)) - overhead
        return fixed, per_choice

    def expected_latency(self, table: LatencyTable, probs: torch.Tensor | None = None) -> torch.Tensor:
        """The expected predicted latency (ms) under ``probs`` (slots x choices; default: the softmax of the masked
        alphas, differentiable). A one-hot ``probs`` gives exactly the table's prediction for that network."""
        fixed, per_choice = self.latency_terms(table)
        p = F.softmax(self.arch_logits()["layer"], dim=-1) if probs is None else probs
        return table.scale * (fixed + (p * per_choice.to(p)).sum())


class MobileSupernet(BlockSupernet):
    """The ``mobile`` space's supernet (see the module docstring)."""

    op_names = MOBILE_OPS
    options: ClassVar[tuple[str, ...]] = ("width", "head")
    tiny: ClassVar[dict[str, Any]] = {"width": 0.125, "head": 16}

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: float = 1.0,
                 head: int = 1280, space: MobileSpace | None = None, seed: int = 0) -> None:  # fmt: skip
        space = space or MobileSpace()
        self.stages = space.stages
        super().__init__(space, in_channels, num_classes, input_size, {"width": float(width), "head": int(head)}, seed)

    @classmethod
    def create(cls, in_channels: int, num_classes: int, input_size: int, seed: int,
               options: Mapping[str, Any]) -> Supernet:  # fmt: skip
        return cls(in_channels, num_classes, input_size, seed=seed, **options)

    def layout(self) -> tuple[Any, tuple[int, int], list[MobileBlockSpec], list[list[MobileBlockSpec | None]],
                              tuple[int, int]]:  # fmt: skip
        deepest = MobileGenotype(tuple((_LAYERS[0],) * max(d) for _, _, d in self.stages))
        c, h, _ = self.input_shape
        _, kw = self.space.network_call(deepest, c, self.num_classes, h, **self.build)
        specs: list[MobileBlockSpec] = kw["blocks"]
        slots: list[list[MobileBlockSpec | None]] = []
        for base in specs[1:]:
            choices: list[MobileBlockSpec | None] = [
                MobileBlockSpec("mb", base.in_channels, base.out_channels, base.stride, la.expansion, la.kernel, la.se)
                for la in _LAYERS
            ]
            slots.append([*choices, None])
        return deepest, (kw["stem_channels"], kw["stem_stride"]), specs[:1], slots, (specs[-1].out_channels,
                                                                                    kw["head_channels"])  # fmt: skip

    def make_slot(self, choices: list[MobileBlockSpec | None]) -> nn.Module:
        """The slot's blocks as slices of one shared block (:mod:`archsearch.oneshot.shared_blocks`: random paths
        through separate blocks did not train at small budgets)."""
        base = next(s for s in choices if s is not None)
        return SharedSlot(base.in_channels, base.out_channels, base.stride, _LAYERS)

    def mask(self) -> torch.Tensor:
        mask = super().mask()
        e = 0
        for _, _, depths in self.stages:
            mask[e : e + min(depths), len(_LAYERS)] = float("-inf")  # the layers every network of the stage has
            e += max(depths)
        return mask

    def derive(self, scores: torch.Tensor | None = None) -> MobileGenotype:
        """Per stage, the allowed depth ``d`` whose path is most probable: the best block in each of slots
        ``0..d-1`` and the identity in the rest (log-probabilities added), with those blocks. ``scores`` (slots x
        choices) replaces the log-probabilities (a latency-aware derivation lowers the costly choices')."""
        logp = F.log_softmax(self.arch_logits()["layer"].detach(), dim=-1) if scores is None else scores
        skip = len(_LAYERS)
        stages, e = [], 0
        for _, _, depths in self.stages:
            rows = logp[e : e + max(depths)]
            best = rows[:, :skip].max(dim=-1)
            depth = max(sorted(depths), key=lambda d: float(best.values[:d].sum() + rows[d:, skip].sum()))
            stages.append(tuple(_LAYERS[int(k)] for k in best.indices[:depth]))
            e += max(depths)
        return MobileGenotype(tuple(stages))

    def single_path(self, genotype: Any) -> dict[str, CellArch]:
        """The genotype's blocks in the first slots of each stage, the identity in the rest."""
        g = self.space.validate(genotype)
        choice: list[int] = []
        for stage, (_, _, depths) in zip(g.stages, self.stages):
            choice += [_LAYERS.index(la) for la in stage] + [len(_LAYERS)] * (max(depths) - len(stage))
        return {"layer": CellArch(choice=choice)}


class MacroSupernet(BlockSupernet):
    """The ``macro`` space's supernet: 8 slots of identity, MB3-K3 and MB6-K5 (see the module docstring)."""

    op_names = ("identity", "mb3_k3", "mb6_k5")
    options: ClassVar[tuple[str, ...]] = ("width",)
    tiny: ClassVar[dict[str, Any]] = {"width": 0.125}

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, width: float = 1.0,
                 seed: int = 0) -> None:  # fmt: skip
        super().__init__(MacroSpace(), in_channels, num_classes, input_size, {"width": float(width)}, seed)

    @classmethod
    def create(cls, in_channels: int, num_classes: int, input_size: int, seed: int,
               options: Mapping[str, Any]) -> Supernet:  # fmt: skip
        return cls(in_channels, num_classes, input_size, seed=seed, **options)

    def layout(self) -> tuple[Any, tuple[int, int], list[MobileBlockSpec], list[list[MobileBlockSpec | None]],
                              tuple[int, int]]:  # fmt: skip
        c, h, _ = self.input_shape
        per_choice = []
        for choice in CHOICES:  # a layer's block depends only on its place and choice
            _, kw = self.space.network_call(MacroGenotype((choice,) * LAYERS), c, self.num_classes, h, **self.build)
            per_choice.append(kw["blocks"])
        slots: list[list[MobileBlockSpec | None]] = [[blocks[e] for blocks in per_choice] for e in range(LAYERS)]
        reference = MacroGenotype((1,) * LAYERS)
        return reference, (kw["stem_channels"], kw["stem_stride"]), [], slots, (per_choice[0][-1].out_channels,
                                                                               kw["head_channels"])  # fmt: skip

    def derive(self, scores: torch.Tensor | None = None) -> MacroGenotype:
        """The strongest choice of every slot (``scores`` replaces the log-probabilities)."""
        logp = F.log_softmax(self.arch_logits()["layer"].detach(), dim=-1) if scores is None else scores
        return MacroGenotype(tuple(int(k) for k in logp.argmax(-1)))

    def single_path(self, genotype: Any) -> dict[str, CellArch]:
        """The genotype's choice in every slot."""
        return {"layer": CellArch(choice=list(self.space.validate(genotype).layers))}


def _entry(table: LatencyTable) -> Any:
    def entry(key: str) -> float:
        if key not in table.entries:
            raise BuildError(f"the latency table has no entry for block {key!r} (it holds {table.describe()})")
        return table.entries[key]

    return entry


__all__: Sequence[str] = ["MOBILE_OPS", "SKIP", "BlockSupernet", "MacroSupernet", "MobileSupernet"]

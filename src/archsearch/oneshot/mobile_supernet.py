"""The supernet of the ``mobile`` space (MnasNet / ProxylessNAS-like): every searched layer holds one inverted
residual per choice of kernel, expansion and squeeze-excitation, and, where its stage may be shallower, the identity.

A stage with allowed depths ``D`` has ``max(D)`` layer slots; slot ``j`` may be the identity (``skip``) when
``j >= min(D)``. A genotype of depth ``d`` runs its layers in slots ``0..d-1`` and the identity in the rest, so
its single path has exactly the network's blocks (the same shapes: a stage's later layers keep its channels and
stride 1). The architecture parameters are one row per slot over :data:`OPS`; the identity's entry of a slot that
cannot skip is masked to ``-inf`` (:meth:`MobileSupernet.arch_logits`), so no method ever samples or weighs it.

The expected latency (:meth:`MobileSupernet.expected_latency`) is the latency table's prediction with each slot's
block replaced by the probability-weighted sum of its choices' entries (the identity adds nothing): stem, the fixed
first block and head included, the call overhead counted once per block that runs and the table's calibration scale
applied, so for a one-hot choice it equals :meth:`~archsearch.costs.lookup.LatencyTable.predict` of that network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.costs.lookup import LatencyTable, block_key, network_blocks
from archsearch.errors import BuildError
from archsearch.nn.mobile import MobileBlockSpec, MobileHead, MobileStem, make_block
from archsearch.oneshot.search_cell import CellArch
from archsearch.oneshot.supernets import Supernet
from archsearch.spaces.mobile import EXPANSIONS, KERNELS, SE, MobileGenotype, MobileLayer, MobileSpace

SKIP = "skip"
#: a slot's choices: every block of the space (in :meth:`MobileSpace.ops`'s order), then the identity
OPS: tuple[str, ...] = (*(f"k{k}e{e}" + ("se" if se else "") for k in KERNELS for e in EXPANSIONS for se in SE), SKIP)
_LAYERS = tuple(MobileLayer(k, e, se) for k in KERNELS for e in EXPANSIONS for se in SE)


class MobileSupernet(Supernet):
    """Stem, the fixed first block, one slot per searchable layer (each holding a block per choice), head."""

    cell_types = ("layer",)
    op_names = OPS
    options: ClassVar[tuple[str, ...]] = ("width", "head")
    tiny: ClassVar[dict[str, Any]] = {"width": 0.125, "head": 16}

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: int = 32,
        width: float = 1.0,
        head: int = 1280,
        space: MobileSpace | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.space = space or MobileSpace()
        self.build = {"width": float(width), "head": int(head)}
        self.input_shape = (in_channels, input_size, input_size)
        self.num_classes = num_classes
        deepest = self.deepest = MobileGenotype(tuple((_LAYERS[0],) * max(d) for _, _, d in self.space.stages))
        _, kw = self.space.network_call(deepest, in_channels, num_classes, input_size, **self.build)
        specs: list[MobileBlockSpec] = kw["blocks"]
        self.first_spec = specs[0]
        #: (stage, layer) of each slot, and the block spec of each slot at the first choice
        self.slots: list[tuple[int, int]] = [(i, j) for i, (_, _, d) in enumerate(self.space.stages) for j in range(max(d))]
        self.slot_specs = specs[1:]
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = MobileStem(in_channels, kw["stem_channels"], kw["stem_stride"])
            self.first = make_block(self.first_spec)
            self.layers = nn.ModuleList(
                nn.ModuleList(make_block(self._spec(s, la)) for la in _LAYERS) for s in self.slot_specs
            )
            self.head = MobileHead(specs[-1].out_channels, kw["head_channels"], num_classes)
        self._init_arch(len(self.slots), False, generator)
        mask = torch.zeros(len(self.slots), len(OPS))
        for e, (i, j) in enumerate(self.slots):
            if j < min(self.space.stages[i][2]):
                mask[e, OPS.index(SKIP)] = float("-inf")
        self.register_buffer("skip_mask", mask)

    @staticmethod
    def _spec(base: MobileBlockSpec, layer: MobileLayer) -> MobileBlockSpec:
        return MobileBlockSpec("mb", base.in_channels, base.out_channels, base.stride, layer.expansion, layer.kernel,
                               layer.se)  # fmt: skip

    @classmethod
    def create(cls, in_channels: int, num_classes: int, input_size: int, seed: int, options: Mapping[str, Any]) -> Supernet:
        return cls(in_channels, num_classes, input_size, seed=seed, **options)

    def edge_list(self) -> list[tuple[int, int]]:
        return self.slots

    def arch_logits(self) -> dict[str, torch.Tensor]:
        """The alphas with the identity masked out of the slots that cannot skip."""
        return {"layer": self.alphas["layer"] + self.skip_mask}

    # --- running -------------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, archs: Mapping[str, CellArch] | None = None) -> torch.Tensor:
        arch = (self.mixed_archs() if archs is None else archs)["layer"]
        x = self.first(self.stem(x))
        skip = len(OPS) - 1
        for e, blocks in enumerate(self.layers):
            if arch.choice is not None:
                k = int(arch.choice[e])
                out = x if k == skip else blocks[k](x)
                x = out if arch.hard is None else out * arch.hard[e, k]
            else:
                assert arch.weights is not None
                w = arch.weights[e]
                out = w[skip] * x
                for k, block in enumerate(blocks):
                    out = out + w[k] * block(x)
                x = out
        return self.head(x)

    def derive(self, scores: torch.Tensor | None = None) -> MobileGenotype:
        """Per stage, the allowed depth ``d`` whose path is most probable: the best block in each of slots
        ``0..d-1`` and the identity in the rest (log-probabilities added), with those blocks. ``scores`` (slots x
        choices) replaces the log-probabilities (a latency-aware derivation lowers the costly choices')."""
        logp = F.log_softmax(self.arch_logits()["layer"].detach(), dim=-1) if scores is None else scores
        skip = len(OPS) - 1
        stages, e = [], 0
        for _, _, depths in self.space.stages:
            rows = logp[e : e + max(depths)]
            best = rows[:, :skip].max(dim=-1)
            depth = max(sorted(depths), key=lambda d: float(best.values[:d].sum() + rows[d:, skip].sum()))
            stages.append(tuple(_LAYERS[int(k)] for k in best.indices[:depth]))
            e += max(depths)
        return MobileGenotype(tuple(stages))

    def single_path(self, genotype: Any) -> dict[str, CellArch]:
        """The genotype's blocks in the first slots of each stage, the identity in the rest."""
        g = self.space.validate(genotype)
        choice = []
        for stage, (_, _, depths) in zip(g.stages, self.space.stages):
            choice += [_LAYERS.index(la) for la in stage] + [len(OPS) - 1] * (max(depths) - len(stage))
        return {"layer": CellArch(choice=choice)}

    # --- latency -------------------------------------------------------------------------------------------------
    def latency_terms(self, table: LatencyTable) -> tuple[float, torch.Tensor]:
        """``(fixed, per_choice)``: the table's milliseconds for the blocks every network has, with the call
        overhead counted once, and per slot and choice what that choice adds (its entry less the overhead; 0 for the
        identity), both before the table's scale. Refuses a table built for another space, input or build."""
        table.check(self.space.name, input_shape=self.input_shape, num_classes=self.num_classes, build=self.build)
        blocks = network_blocks(self.space, self.deepest, self.input_shape, self.num_classes, self.build)
        entry = _entry(table)
        # stem, the fixed first block and head; a slot's input shape does not depend on the choices before it
        fixed = table.overhead_ms + sum(entry(key) - table.overhead_ms for key, _, _ in (*blocks[:2], blocks[-1]))
        per_choice = torch.zeros(len(self.slots), len(OPS))
        for e, (spec, (_, _, shape)) in enumerate(zip(self.slot_specs, blocks[2:-1])):
            for k, layer in enumerate(_LAYERS):
                per_choice[e, k] = entry(block_key(self._spec(spec, layer), shape)) - table.overhead_ms
        return fixed, per_choice

    def expected_latency(self, table: LatencyTable, probs: torch.Tensor | None = None) -> torch.Tensor:
        """The expected predicted latency (ms) under ``probs`` (slots x choices; default: the softmax of the masked
        alphas, differentiable). A one-hot ``probs`` gives exactly the table's prediction for that network."""
        fixed, per_choice = self.latency_terms(table)
        p = F.softmax(self.arch_logits()["layer"], dim=-1) if probs is None else probs
        return table.scale * (fixed + (p * per_choice.to(p)).sum())


def _entry(table: LatencyTable) -> Any:
    def entry(key: str) -> float:
        if key not in table.entries:
            raise BuildError(f"the latency table has no entry for block {key!r} (it holds {table.describe()})")
        return table.entries[key]

    return entry

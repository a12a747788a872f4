"""The two supernets: DARTS's search network (normal and reduction cells) and NAS-Bench-201's, with their
architecture parameters and the rule that turns those parameters into a genotype of the space."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import BuildError
from archsearch.nn.cells import ResNetBasicBlock
from archsearch.nn.ops import FactorizedReduce, ReLUConvBN
from archsearch.oneshot.search_cell import CellArch, SearchCell, edge_normalised
from archsearch.registry import Registry
from archsearch.spaces.darts import DARTS_SEARCH_OPS, DartsGenotype, DartsSpace
from archsearch.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201_PATHS, NB201Genotype, NB201Space


class Supernet(nn.Module):
    """Base: named cell types (``cell_types``), one alpha matrix ``(edges, ops)`` per type, optional PC-DARTS betas.

    ``forward(x, archs)`` takes a :class:`CellArch` per cell type; without one, every cell type runs mixed with the
    softmax of its alphas (DARTS)."""

    cell_types: tuple[str, ...] = ()
    op_names: tuple[str, ...] = ()
    derive_note: str | None = None  # what :meth:`derive` had to do beyond its rule, said to the user
    #: the depth option as users name it (its space's build option), the constructor's own name for it, its default
    #: for a search, and what it counts (for the command line's help)
    depth_option: ClassVar[str] = "cells"
    cells_option: ClassVar[str] = "cells"
    default_cells: ClassVar[int] = 1
    cells_help: ClassVar[str] = "cells"
    #: the build options a supernet of another kind takes (none: a cell supernet, which takes ``channels``, its
    #: depth option, ``partial`` and ``edge_norm``)
    options: ClassVar[tuple[str, ...]] = ()
    #: the smallest supernet options that still exercise every edge and op (the one-shot property checks')
    tiny: ClassVar[dict[str, int]] = {}

    @classmethod
    def create(
        cls, in_channels: int, num_classes: int, input_size: int, seed: int, options: Mapping[str, Any]
    ) -> Supernet:
        """The supernet for this data from the build options :func:`build_supernet` checked: a cell supernet takes
        ``channels``, its depth option, ``partial`` and ``edge_norm`` (the input size does not change it)."""
        depth = options.get(cls.depth_option, cls.default_cells)
        return cls(C=options["channels"], in_channels=in_channels, num_classes=num_classes, seed=seed,  # type: ignore[call-arg]
                   partial=options.get("partial", 1), edge_norm=options.get("edge_norm", False),
                   **{cls.cells_option: depth})  # fmt: skip

    def _init_arch(self, num_edges: int, edge_norm: bool, generator: torch.Generator) -> None:
        self.num_edges = num_edges
        self.alphas = nn.ParameterDict(
            {
                t: nn.Parameter(1e-3 * torch.randn(num_edges, len(self.op_names), generator=generator))
                for t in self.cell_types
            }
        )
        self.betas = (
            nn.ParameterDict(
                {t: nn.Parameter(1e-3 * torch.randn(num_edges, generator=generator)) for t in self.cell_types}
            )
            if edge_norm
            else None
        )

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alphas, and betas under edge normalisation)."""
        params = list(self.alphas.values())
        if self.betas is not None:
            params += list(self.betas.values())
        return params

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter that is not an architecture parameter."""
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def edge_list(self) -> list[tuple[int, int]]:
        raise NotImplementedError

    def arch_logits(self) -> dict[str, torch.Tensor]:
        """The logits every method samples or weighs ops by, per cell type: the alphas (a supernet whose edges do
        not all allow every op masks the others to ``-inf``)."""
        return dict(self.alphas.items())

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Softmaxed alphas per cell type, detached."""
        return {t: F.softmax(a.detach(), dim=-1) for t, a in self.arch_logits().items()}

    def edge_weights(self) -> dict[str, torch.Tensor] | None:
        """PC-DARTS's normalised edge weights per cell type (``None`` without edge normalisation)."""
        if self.betas is None:
            return None
        return {t: edge_normalised(b, self.edge_list()) for t, b in self.betas.items()}

    def mixed_archs(self) -> dict[str, CellArch]:
        """Every cell type mixed with the softmax of its alphas (DARTS, PC-DARTS)."""
        edges = self.edge_weights()
        return {
            t: CellArch(weights=F.softmax(a, dim=-1), edge_weights=None if edges is None else edges[t])
            for t, a in self.arch_logits().items()
        }

    def derive(self) -> DartsGenotype | NB201Genotype:
        """The genotype the architecture parameters point to."""
        raise NotImplementedError

    def single_path(self, genotype: DartsGenotype | NB201Genotype) -> dict[str, CellArch]:
        """The single-path archs that run exactly ``genotype``'s ops inside the supernet (inherited weights)."""
        raise NotImplementedError

    def _op_index(self, op: str) -> int:
        if op not in self.op_names:
            raise ValueError(f"op {op!r} is not in this supernet (its ops: {', '.join(self.op_names)})")
        return self.op_names.index(op)


class DartsSupernet(Supernet):
    """DARTS's search network: a 3C stem, ``layers`` cells (reductions at 1/3 and 2/3), 4 nodes per cell, all
    intermediate nodes concatenated; ``partial`` K and ``edge_norm`` make it PC-DARTS's."""

    cell_types = ("normal", "reduce")
    op_names = tuple(DARTS_SEARCH_OPS)
    cells_option, default_cells, cells_help = "layers", 5, "cells in all (two of them reductions)"
    tiny: ClassVar[dict[str, int]] = {"channels": 4, "cells": 3}

    def __init__(
        self,
        C: int = 16,
        layers: int = 8,
        num_classes: int = 10,
        in_channels: int = 3,
        op_names: Sequence[str] = DARTS_SEARCH_OPS,
        partial: int = 1,
        edge_norm: bool = False,
        steps: int = 4,
        stem_multiplier: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if layers < 3:
            raise BuildError(f"a DARTS supernet needs at least 3 cells (two of them reductions), got {layers}")
        self.op_names = tuple(op_names)
        self.steps = steps
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            C_curr = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False), nn.BatchNorm2d(C_curr))
            C_prev_prev, C_prev, C_curr = C_curr, C_curr, C
            self.reductions = (layers // 3, 2 * layers // 3)
            self.cells = nn.ModuleList()
            self.preprocess = nn.ModuleList()
            reduction_prev = False
            for i in range(layers):
                reduction = i in self.reductions
                if reduction:
                    C_curr *= 2
                pre0 = (
                    FactorizedReduce(C_prev_prev, C_curr, affine=False)
                    if reduction_prev
                    else ReLUConvBN(C_prev_prev, C_curr, 1, 1, 0, affine=False)
                )
                pre1 = ReLUConvBN(C_prev, C_curr, 1, 1, 0, affine=False)
                self.preprocess.append(nn.ModuleList([pre0, pre1]))
                self.cells.append(SearchCell(self.op_names, C_curr, 2, steps, 2 if reduction else 1, "concat", partial))
                reduction_prev = reduction
                C_prev_prev, C_prev = C_prev, steps * C_curr
            self.classifier = nn.Linear(C_prev, num_classes)
        self._init_arch(len(self.cells[0].edge_list), edge_norm, generator)

    def edge_list(self) -> list[tuple[int, int]]:
        return self.cells[0].edge_list  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, archs: Mapping[str, CellArch] | None = None) -> torch.Tensor:
        archs = self.mixed_archs() if archs is None else archs
        s0 = s1 = self.stem(x)
        for i, (cell, (pre0, pre1)) in enumerate(zip(self.cells, self.preprocess)):
            arch = archs["reduce" if i in self.reductions else "normal"]
            s0, s1 = s1, cell([pre0(s0), pre1(s1)], arch)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def edge_strengths(self, cell_type: str) -> torch.Tensor:
        """Per edge and op, the weight DARTS ranks by: softmaxed alpha, times the edge weight under PC-DARTS."""
        probs = self.probabilities()[cell_type]
        edges = self.edge_weights()
        return probs if edges is None else probs * edges[cell_type].detach()[:, None]

    def derive(self) -> DartsGenotype:
        """DARTS's rule: per node, the two inputs whose strongest non-``none`` op is strongest, with that op."""
        cells = {}
        none = self.op_names.index("none") if "none" in self.op_names else None
        for cell_type in self.cell_types:
            strengths = self.edge_strengths(cell_type)
            pairs: list[tuple[str, int]] = []
            for node in range(2, 2 + self.steps):
                candidates = []
                for e, (to, frm) in enumerate(self.edge_list()):
                    if to != node:
                        continue
                    row = strengths[e].clone()
                    if none is not None:
                        row[none] = -1.0
                    k = int(row.argmax())
                    candidates.append((float(row[k]), -frm, self.op_names[k], frm))
                best = sorted(candidates, reverse=True)[:2]
                pairs.extend((op, frm) for _, _, op, frm in sorted(best, key=lambda c: c[3]))
            cells[cell_type] = tuple(pairs)
        concat = tuple(range(2, 2 + self.steps))
        return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)

    def single_path(self, genotype: DartsGenotype | NB201Genotype) -> dict[str, CellArch]:
        """Each node's two chosen edges run their op; every other edge runs ``none``."""
        if not isinstance(genotype, DartsGenotype):
            raise TypeError(f"a DARTS supernet runs DARTS genotypes, got {type(genotype).__name__}")
        none = self._op_index("none")
        archs = {}
        for cell_type in self.cell_types:
            choice = [none] * self.num_edges
            for k, (op, frm) in enumerate(getattr(genotype, cell_type)):
                choice[self.edge_list().index((2 + k // 2, frm))] = self._op_index(op)
            archs[cell_type] = CellArch(choice=choice)
        return archs


class NB201Supernet(Supernet):
    """NAS-Bench-201's search network: 3x3 stem, three stages of ``cells`` cells at C/2C/4C joined by residual
    reduction blocks, BN-ReLU, global pool, linear; one alpha matrix shared by every cell."""

    cell_types = ("cell",)
    op_names = tuple(NB201_OPS)
    depth_option, cells_option, default_cells, cells_help = "cells_per_stage", "cells", 1, "cells in each stage"
    tiny: ClassVar[dict[str, int]] = {"channels": 4, "cells_per_stage": 1}

    def __init__(
        self,
        C: int = 16,
        cells: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        op_names: Sequence[str] = NB201_OPS,
        partial: int = 1,
        edge_norm: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.op_names = tuple(op_names)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
            blocks: list[nn.Module] = []
            C_prev = C
            for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
                if stage > 0:
                    blocks.append(ResNetBasicBlock(C_prev, C_curr, 2))
                blocks.extend(SearchCell(self.op_names, C_curr, 1, 3, 1, "last", partial) for _ in range(cells))
                C_prev = C_curr
            self.blocks = nn.ModuleList(blocks)
            self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev), nn.ReLU(inplace=True))
            self.classifier = nn.Linear(C_prev, num_classes)
        first = next(b for b in self.blocks if isinstance(b, SearchCell))
        self._edges = list(first.edge_list)
        self._init_arch(len(self._edges), edge_norm, generator)

    def edge_list(self) -> list[tuple[int, int]]:
        return self._edges

    def forward(self, x: torch.Tensor, archs: Mapping[str, CellArch] | None = None) -> torch.Tensor:
        arch = (self.mixed_archs() if archs is None else archs)["cell"]
        x = self.stem(x)
        for block in self.blocks:
            x = block([x], arch) if isinstance(block, SearchCell) else block(x)
        return self.classifier(F.adaptive_avg_pool2d(self.lastact(x), 1).flatten(1))

    def derive(self) -> NB201Genotype:
        """Argmax op per edge; if that cuts every path from the cell's input to its output (all four paths pass a
        ``none``), the path whose weakest edge is strongest (by the weight of each edge's strongest non-``none`` op)
        takes those ops, and :attr:`derive_note` says so."""
        probs = self.probabilities()["cell"]
        ops = [self.op_names[int(k)] for k in probs.argmax(-1)]
        self.derive_note = None
        if any(all(ops[e] != "none" for e in path) for path in NB201_PATHS):
            return NB201Genotype(tuple(ops))
        live = [k for k, op in enumerate(self.op_names) if op != "none"]
        best = [max(live, key=lambda k, e=e: float(probs[e, k])) for e in range(len(ops))]

        def strength(path: tuple[int, ...]) -> float:
            return min(float(probs[e, best[e]]) for e in path)

        path = max(NB201_PATHS, key=strength)
        for e in path:
            ops[e] = self.op_names[best[e]]
        edges = ", ".join(f"{frm}->{to}" for k, (to, frm) in enumerate(NB201_EDGES) if k in path)
        self.derive_note = (
            f"the argmax cell cut every path from input to output with 'none'; the path {edges} (whose weakest edge "
            "is strongest by its best non-none weight) took those ops so the network can learn"
        )
        return NB201Genotype(tuple(ops))

    def single_path(self, genotype: DartsGenotype | NB201Genotype) -> dict[str, CellArch]:
        """The genotype's op on every edge."""
        if not isinstance(genotype, NB201Genotype):
            raise TypeError(f"an NB201 supernet runs NB201 genotypes, got {type(genotype).__name__}")
        return {"cell": CellArch(choice=[self._op_index(op) for op in genotype.ops])}


#: a cell supernet's initial channels unless told otherwise
CELL_CHANNELS = 16

#: supernets by the name of the space they search; adding a space's supernet is one registration
SUPERNETS: Registry[type[Supernet]] = Registry("supernet")
SUPERNETS.add(DartsSpace.name, DartsSupernet)
SUPERNETS.add(NB201Space.name, NB201Supernet)


def build_supernet(
    space: str,
    in_channels: int,
    num_classes: int,
    channels: int | None = None,
    seed: int = 0,
    partial: int = 1,
    edge_norm: bool = False,
    few_shot_edge: int | None = None,
    input_size: int = 32,
    **build_options: Any,
) -> Supernet:
    """The supernet registered for ``space``. A cell supernet takes ``channels`` initial channels (default 16), its
    depth under its space's name for it (DARTS: ``cells``, all of them, default 5; NB201: ``cells_per_stage``,
    default 1; ``None``: the default), PC-DARTS's ``partial`` channels and ``edge_norm``; the ``mobile`` supernet
    ``width`` and ``head`` and the ``input_size``. With ``few_shot_edge``, a few-shot supernet split on that edge of
    the first cell type (:mod:`archsearch.oneshot.few_shot`)."""
    cls = SUPERNETS.get(space)
    given = {k: v for k, v in build_options.items() if v is not None}
    cell = not cls.options
    wrong = sorted(set(given) - ({cls.depth_option} if cell else set(cls.options)))
    if wrong:
        allowed = f"depth is {cls.depth_option} ({cls.cells_help})" if cell else "options are " + ", ".join(cls.options)
        raise BuildError(f"the {space} supernet's {allowed}; it does not take {', '.join(wrong)}")
    if cell:
        given.update(channels=CELL_CHANNELS if channels is None else channels, partial=partial, edge_norm=edge_norm)
    else:
        cell_only = (("channels", channels, None), ("partial", partial, 1), ("edge_norm", edge_norm, False))
        unused = [name for name, value, default in cell_only if value != default]
        if unused:
            raise BuildError(f"the {space} supernet does not take {', '.join(unused)} (its options: "
                             f"{', '.join(cls.options)})")  # fmt: skip

    def one() -> Supernet:
        return cls.create(in_channels, num_classes, input_size, seed, given)

    if few_shot_edge is None:
        return one()
    from archsearch.oneshot.few_shot import FewShotSupernet  # it builds on this module's Supernet

    return FewShotSupernet([one() for _ in cls.op_names], few_shot_edge)

"""Supernets: every candidate op on every edge, built from the op registry the final networks use.

A :class:`SearchCell` has ``inputs`` input states and ``nodes`` computed nodes; node ``j`` sums one edge from every
earlier state. Edges are ordered by (node, source), the order of both DARTS's alphas and the NB201 string. A cell
runs in one of two modes, chosen by what the network's forward is given:

- *mixed* (DARTS, PC-DARTS): each edge outputs ``sum_k w[e, k] * op_k(x)``, computed per source (see
  :mod:`archsearch.oneshot.mixed`); with ``partial = K`` only ``1/K`` of the channels go through the ops and the rest
  bypass them, then channels are shuffled (PC-DARTS); ``edge_weights`` scale each edge (PC-DARTS's edge normalisation);
- *single path* (GDAS, SPOS): each edge runs one op, ``choice[e]``; optional ``hard`` weights multiply it so the
  choice stays differentiable (GDAS's straight-through Gumbel sample).

Architecture parameters live in the network (``arch_parameters()``), apart from the weights
(``weight_parameters()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import BuildError
from archsearch.nn import native
from archsearch.nn.ops import make_op
from archsearch.oneshot import fused_sum
from archsearch.oneshot.mixed import SharedPrefix, batchable, is_zero


@dataclass
class CellArch:
    """What one cell type runs with: mixed weights ``(E, K)``, or a single-path ``choice`` per edge (with optional
    straight-through ``hard`` weights); ``edge_weights`` ``(E,)`` scale edges (PC-DARTS)."""

    weights: torch.Tensor | None = None
    choice: Sequence[int] | None = None
    hard: torch.Tensor | None = None
    edge_weights: torch.Tensor | None = None


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (PC-DARTS mixes its bypassed and processed channels with it)."""
    if groups == 1:
        return x
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _run_layers(x: torch.Tensor, layers: Sequence[nn.Module]) -> torch.Tensor:
    """Apply ``layers`` in order; a training-mode batch norm without affine weights runs through
    :func:`archsearch.nn.native.batch_norm`, with the ReLU that follows it fused in."""
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.BatchNorm2d) and layer.training and not layer.affine:
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            x = native.batch_norm(x, [layer], relu=relu)
            i += 2 if relu else 1
        else:
            x = layer(x)
            i += 1
    return x


def _weighted_sum(
    folded: list[tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]], plain: list[tuple[torch.Tensor, torch.Tensor]]
) -> torch.Tensor:
    """One edge's ``sum_k w_k * op_k(x)``: in one compiled pass when some ops' last batch norms were folded,
    else as fused multiply-adds."""
    if folded:
        return fused_sum.mixed_sum(folded, plain)
    if not plain:
        raise ValueError("a mixed edge needs at least one op besides 'none'")
    (w, y), rest = plain[0], plain[1:]
    out = w * y
    for w, y in rest:
        out = torch.addcmul(out, w, y)
    return out


def _search_op(name: str, C: int, stride: int) -> nn.Module:
    op = make_op(name, C, C, stride, affine=False)
    if "pool" in name:  # DARTS normalises pooled outputs inside the mixed op so they are on the others' scale
        op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
    return op


class SearchCell(nn.Module):
    """The cell of a supernet: ``inputs`` states in, ``nodes`` nodes, every op of ``op_names`` on every edge."""

    def __init__(
        self,
        op_names: Sequence[str],
        C: int,
        inputs: int,
        nodes: int,
        input_stride: int = 1,
        output: str = "concat",
        partial: int = 1,
    ) -> None:
        super().__init__()
        if C % partial:
            raise BuildError(f"partial channels: {C} channels do not split into {partial} parts")
        if output not in ("concat", "last"):
            raise ValueError(f"cell output must be 'concat' or 'last', got {output!r}")
        self.op_names = list(op_names)
        self.inputs, self.nodes, self.output, self.partial = inputs, nodes, output, partial
        self.input_stride = input_stride
        self.edge_list = [(to, frm) for to in range(inputs, inputs + nodes) for frm in range(to)]
        C_op = C // partial
        self.edges = nn.ModuleList(
            nn.ModuleList(_search_op(name, C_op, input_stride if frm < inputs else 1) for name in self.op_names)
            for _, frm in self.edge_list
        )
        self.bypass_pool = nn.MaxPool2d(2, 2) if partial > 1 and input_stride == 2 else None

    @property
    def num_edges(self) -> int:
        return len(self.edge_list)

    def forward(self, states: list[torch.Tensor], arch: CellArch) -> torch.Tensor:
        states = list(states)
        if arch.weights is not None:
            self._mixed(states, arch)
        else:
            self._single(states, arch)
        return torch.cat(states[self.inputs :], dim=1) if self.output == "concat" else states[-1]

    def _split(self, x: torch.Tensor, source: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """PC-DARTS: the channels that go through the ops and the ones that bypass them (pooled on strided edges);
        without partial channels, all of ``x`` and no bypass."""
        if self.partial == 1:
            return x, None
        C_op = x.shape[1] // self.partial
        bypass = x[:, C_op:]
        if self.bypass_pool is not None and source < self.inputs:
            bypass = self.bypass_pool(bypass)
        return x[:, :C_op], bypass

    # --- mixed mode ---------------------------------------------------------------------------------------------
    def _mixed(self, states: list[torch.Tensor], arch: CellArch) -> None:
        weights = arch.weights
        assert weights is not None
        sums: dict[int, torch.Tensor] = {}
        for source in range(self.inputs + self.nodes):
            if source >= self.inputs:
                total = sums.pop(source)
                states.append(channel_shuffle(total, self.partial))
            if source == self.inputs + self.nodes - 1:
                break
            self._emit(source, states[source], weights, arch.edge_weights, sums)

    def _emit(
        self,
        source: int,
        x: torch.Tensor,
        weights: torch.Tensor,
        edge_weights: torch.Tensor | None,
        sums: dict[int, torch.Tensor],
    ) -> None:
        """Add the outputs of every edge leaving ``source`` to the sums of their target nodes."""
        out_edges = [e for e, (_, frm) in enumerate(self.edge_list) if frm == source]
        x, bypass = self._split(x, source)
        shared = SharedPrefix(x)
        folded: list[list[tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]]] = [[] for _ in out_edges]
        plain: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in out_edges]
        for k in range(len(self.op_names)):
            ops = [self.edges[e][k] for e in out_edges]
            if is_zero(ops[0]):
                continue
            if not batchable(ops[0]):
                for idx, (e, op) in enumerate(zip(out_edges, ops)):
                    plain[idx].append((weights[e, k], op(x)))
                continue
            y, rests = shared.run(ops)
            for idx, (e, rest) in enumerate(zip(out_edges, rests)):
                if rest and isinstance(rest[-1], nn.BatchNorm2d):  # fold the op's last batch norm when it can
                    z = _run_layers(y, rest[:-1])
                    if fused_sum.can_fold(z, rest[-1]):
                        folded[idx].append((weights[e, k], z, rest[-1]))
                    else:
                        plain[idx].append((weights[e, k], _run_layers(z, rest[-1:])))
                else:
                    plain[idx].append((weights[e, k], _run_layers(y, rest)))
        for idx, e in enumerate(out_edges):
            term = _weighted_sum(folded[idx], plain[idx])
            if bypass is not None:
                term = torch.cat([term, bypass], dim=1)
            if edge_weights is not None:
                term = edge_weights[e] * term
            to = self.edge_list[e][0]
            sums[to] = term if to not in sums else sums[to] + term

    # --- single-path mode ---------------------------------------------------------------------------------------
    def _single(self, states: list[torch.Tensor], arch: CellArch) -> None:
        choice = arch.choice
        if choice is None or len(choice) != self.num_edges:
            raise ValueError(f"a single-path cell needs one op index per edge ({self.num_edges})")
        for to in range(self.inputs, self.inputs + self.nodes):
            total: torch.Tensor | None = None
            for e, (t, frm) in enumerate(self.edge_list):
                if t != to:
                    continue
                k = int(choice[e])
                op = self.edges[e][k]
                x, bypass = self._split(states[frm], frm)
                out = op(x)
                if arch.hard is not None:  # straight-through: value 1 * out, gradient to every entry of the row
                    hard = arch.hard[e]
                    out = hard[k] * out + (hard.sum() - hard[k])
                if bypass is not None:
                    out = channel_shuffle(torch.cat([out, bypass], dim=1), self.partial)
                if arch.edge_weights is not None:
                    out = arch.edge_weights[e] * out
                total = out if total is None else total + out
            assert total is not None
            states.append(total)


def edge_normalised(betas: torch.Tensor, edge_list: Sequence[tuple[int, int]]) -> torch.Tensor:
    """PC-DARTS's edge weights: a softmax over the edges entering each node."""
    out = torch.empty_like(betas)
    for to in sorted({t for t, _ in edge_list}):
        idx = [e for e, (t, _) in enumerate(edge_list) if t == to]
        out[idx] = F.softmax(betas[idx], dim=-1)
    return out

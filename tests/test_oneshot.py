"""One-shot search: the supernets' mixed ops against a plain per-edge reference, DARTS's second-order
hypergradient against finite differences, PC-DARTS, GDAS's single path, derivation, collapse control, resume."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archsearch.api.oneshot_search import oneshot
from archsearch.data import from_tensors
from archsearch.errors import ArchsearchError
from archsearch.oneshot import default_config
from archsearch.oneshot.base import OneShotConfig
from archsearch.oneshot.darts import Darts
from archsearch.oneshot.darts2 import DartsSecondOrder
from archsearch.oneshot.gdas import Gdas
from archsearch.oneshot.pcdarts import PCDarts
from archsearch.oneshot.search import _collapse, run_oneshot
from archsearch.oneshot.search_cell import CellArch, SearchCell, channel_shuffle
from archsearch.oneshot.supernets import DartsSupernet, NB201Supernet
from archsearch.spaces import get_space
from archsearch.spaces.darts import DartsGenotype


def reference_cell(cell: SearchCell, states: list[torch.Tensor], arch: CellArch) -> torch.Tensor:
    """DARTS's mixed op written plainly: per edge, a Python sum of weight x op output (PC-DARTS: partial channels,
    shuffle, edge weights)."""
    states = list(states)
    for to in range(cell.inputs, cell.inputs + cell.nodes):
        total = 0
        for e, (t, frm) in enumerate(cell.edge_list):
            if t != to:
                continue
            x = states[frm]
            bypass = None
            if cell.partial > 1:
                c = x.shape[1] // cell.partial
                x, bypass = x[:, :c], x[:, c:]
                if cell.bypass_pool is not None and frm < cell.inputs:
                    bypass = cell.bypass_pool(bypass)
            out = sum(arch.weights[e, k] * op(x) for k, op in enumerate(cell.edges[e]))
            if bypass is not None:
                out = channel_shuffle(torch.cat([out, bypass], 1), cell.partial)
            if arch.edge_weights is not None:
                out = arch.edge_weights[e] * out
            total = total + out
        states.append(total)
    return torch.cat(states[cell.inputs :], 1) if cell.output == "concat" else states[-1]


def _with_reference(net: torch.nn.Module, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setattr(SearchCell, "forward", reference_cell)
        return net(x)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DartsSupernet(C=4, layers=3, in_channels=1, seed=1),
        lambda: NB201Supernet(C=4, cells=1, in_channels=1, seed=1),
        lambda: DartsSupernet(C=4, layers=3, in_channels=1, partial=2, edge_norm=True, seed=1),
    ],
    ids=["darts", "nb201", "pcdarts-k2"],
)
def test_mixed_ops_equal_the_plain_reference(make, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    net = make().double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    ours = net(x)
    g_ours = torch.autograd.grad(ours.square().sum(), net.arch_parameters())
    ref = _with_reference(net, x, monkeypatch)
    g_ref = torch.autograd.grad(ref.square().sum(), net.arch_parameters())
    assert torch.allclose(ours, ref, atol=1e-10)
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-9)
    # running statistics of the shared (pool) batch norms match separate runs: run both again and compare buffers
    net2 = make().double()
    net2.load_state_dict(net.state_dict())
    net(x)
    _with_reference(net2, x, monkeypatch)
    for (name, b1), (_, b2) in zip(net.named_buffers(), net2.named_buffers()):
        assert torch.allclose(b1.double(), b2.double(), atol=1e-10), name


def _batches(seed: int, n: int = 6) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64),
        torch.randint(0, 10, (n,), generator=g),
        torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64),
        torch.randint(0, 10, (n,), generator=g),
    )


def test_second_order_hypergradient_matches_finite_differences() -> None:
    net = NB201Supernet(C=4, cells=1, in_channels=1, seed=0).double()
    config = OneShotConfig(w_lr=0.1, w_weight_decay=1e-3, fd_radius=1e-6)
    method = DartsSecondOrder(net, config, steps_per_epoch=10)
    x, y, xv, yv = _batches(0)
    weights = list(net.weight_parameters())
    alpha = net.alphas["cell"]
    # seeded: drawn from the global generator, the check failed for some draws (1 in 12 seeds by 1.5e-3; once in CI,
    # after whatever ran before it in that worker, by 0.31): there h = 1e-5 steps over a kink (at h = 1e-6 the
    # same draw agrees to 2e-9)
    with torch.no_grad():
        alpha.copy_(torch.randn(alpha.shape, generator=torch.Generator().manual_seed(0), dtype=alpha.dtype))
    method.unrolled_arch_grad(x, y, xv, yv)
    ours = alpha.grad.clone()

    def unrolled_val_loss() -> float:
        grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
        saved = [w.detach().clone() for w in weights]
        with torch.no_grad():
            for w, g in zip(weights, grads):
                w.sub_(0.1 * ((0 if g is None else g) + 1e-3 * w))
            value = float(F.cross_entropy(net(xv), yv))
            for w, s in zip(weights, saved):
                w.copy_(s)
        return value

    numeric = torch.zeros_like(alpha)
    h = 1e-5
    for idx in np.ndindex(*alpha.shape):
        with torch.no_grad():
            alpha[idx] += h
        up = unrolled_val_loss()
        with torch.no_grad():
            alpha[idx] -= 2 * h
        down = unrolled_val_loss()
        with torch.no_grad():
            alpha[idx] += h
        numeric[idx] = (up - down) / (2 * h)
    assert torch.allclose(ours, numeric, rtol=1e-3, atol=1e-6), (ours - numeric).abs().max()
    # and it differs from the first-order gradient (the Hessian term matters here)
    method.a_optimizer.zero_grad()
    Darts.arch_grad(method, xv, yv)
    assert not torch.allclose(alpha.grad, numeric, rtol=1e-3, atol=1e-6)


def test_pcdarts_with_k1_equals_darts() -> None:
    x, y, xv, yv = (t.float() if t.is_floating_point() else t for t in _batches(1, 8))
    alphas = []
    for cls, options in ((Darts, {}), (PCDarts, {"partial": 1})):
        net = DartsSupernet(C=4, layers=3, in_channels=1, seed=3, **options)
        method = cls(net, OneShotConfig(), steps_per_epoch=4)
        for _ in range(2):
            method.step(x, y, xv, yv)
        alphas.append([a.detach().clone() for a in net.arch_parameters()])
    for a, b in zip(*alphas):
        assert torch.equal(a, b)


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_gdas_runs_exactly_one_op_per_edge(space: str) -> None:
    net = (
        NB201Supernet(C=4, cells=1, in_channels=1) if space == "nb201" else DartsSupernet(C=4, layers=3, in_channels=1)
    )
    calls: dict[tuple[int, int], int] = {}
    cells = [m for m in net.modules() if isinstance(m, SearchCell)]
    for c, cell in enumerate(cells):
        for e, ops in enumerate(cell.edges):
            for op in ops:
                op.register_forward_hook(lambda *_, key=(c, e): calls.__setitem__(key, calls.get(key, 0) + 1))
    method = Gdas(net, OneShotConfig(epochs=4), steps_per_epoch=1)
    archs = method.sample()
    out = net(torch.randn(2, 1, 8, 8), archs)
    assert out.shape == (2, 10)
    assert calls == {(c, e): 1 for c, cell in enumerate(cells) for e in range(cell.num_edges)}
    # the straight-through weights carry gradient to every alpha of a sampled row
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())


def test_gdas_temperature_falls_linearly() -> None:
    method = Gdas(NB201Supernet(C=4, cells=1, in_channels=1), OneShotConfig(epochs=5), 1)
    taus = []
    for epoch in range(5):
        method.start_epoch(epoch)
        taus.append(method.tau)
    assert taus[0] == 10.0 and taus[-1] == pytest.approx(0.1) and all(a > b for a, b in itertools.pairwise(taus))


def test_derived_genotypes_are_valid_and_follow_the_rules() -> None:
    darts = DartsSupernet(C=4, layers=3, in_channels=1)
    target = DartsGenotype(
        (("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 1), ("sep_conv_5x5", 2))
        + (("max_pool_3x3", 0), ("sep_conv_3x3", 3), ("avg_pool_3x3", 2), ("dil_conv_3x3", 4)),
        (2, 3, 4, 5),
        (("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1))
        + (("skip_connect", 0), ("avg_pool_3x3", 3), ("skip_connect", 2), ("sep_conv_5x5", 4)),
        (2, 3, 4, 5),
    )
    with torch.no_grad():
        for cell_type in ("normal", "reduce"):
            a = darts.alphas[cell_type]
            a.zero_()
            a[:, darts.op_names.index("none")] = 5.0  # 'none' is never derived, however strong
            for k, (op, frm) in enumerate(getattr(target, cell_type)):
                a[darts.edge_list().index((2 + k // 2, frm)), darts.op_names.index(op)] = 3.0
    assert darts.derive().key == target.key
    get_space("darts").validate(darts.derive())
    nb201 = NB201Supernet(C=4, cells=1, in_channels=1)
    with torch.no_grad():  # seeded: a draw whose argmax cuts the cell is re-derived (tests/test_degenerate.py)
        nb201.alphas["cell"].normal_(generator=torch.Generator().manual_seed(0))
    genotype = nb201.derive()
    get_space("nb201").validate(genotype)
    expected = [nb201.op_names[int(k)] for k in nb201.alphas["cell"].argmax(-1)]
    assert nb201.derive_note is None and list(genotype.ops) == expected


def test_collapse_control_penalty_and_stop() -> None:
    net = DartsSupernet(C=4, layers=3, in_channels=1)
    method = Darts(net, OneShotConfig(skip_penalty=0.5), 1)
    penalty = method.skip_penalty()
    assert penalty is not None
    (grad,) = torch.autograd.grad(penalty, [net.alphas["normal"]])
    skip = net.op_names.index("skip_connect")
    assert (grad[:, skip] > 0).all() and (np.delete(grad.numpy(), skip, axis=1) < 0).all()
    config = default_config("darts")
    assert config.skip_penalty > 0 and config.max_skips == 2
    assert _collapse(method, {"epoch": 3, "skips": 3}, config).startswith("stopped after epoch 3")
    assert _collapse(method, {"epoch": 3, "skips": 2}, config) is None
    assert default_config("gdas").max_skips is None


def _tiny_data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(96) % 4
    x = torch.rand(96, 1, 8, 8, generator=g) * 0.3 + y.view(-1, 1, 1, 1) * 0.2
    return from_tensors(x, y, num_classes=4)


def test_resume_continues_from_the_last_epoch_with_identical_alphas(tmp_path) -> None:
    data = _tiny_data()
    config = OneShotConfig(epochs=3, batch_size=16, seed=2)
    options = {"channels": 4, "cells": 3}
    full = run_oneshot("darts", "darts", data, tmp_path / "full", config, options)

    class Killed(Exception):
        pass

    def kill_after_two(record):
        if record["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        run_oneshot("darts", "darts", data, tmp_path / "cut", config, options, on_epoch=kill_after_two)
    with pytest.raises(ArchsearchError, match="already holds a one-shot search"):
        run_oneshot("darts", "darts", data, tmp_path / "cut", config, options)
    resumed = run_oneshot("darts", "darts", data, tmp_path / "cut", config, options, resume=True)
    assert [r["probabilities"] for r in resumed.history] == [r["probabilities"] for r in full.history]
    assert resumed.genotype.key == full.genotype.key and len(resumed.history) == 3


def test_spos_trains_a_supernet_and_searches_it_with_inherited_weights(tmp_path) -> None:
    data = _tiny_data(1)
    with pytest.raises(ArchsearchError, match="search over sub-networks"):
        run_oneshot("spos", "nb201", data, tmp_path / "alone", OneShotConfig(epochs=1, batch_size=16))
    result = oneshot(
        "spos",
        "nb201",
        data,
        tmp_path,
        OneShotConfig(epochs=1, batch_size=16),
        {"channels": 4, "cells_per_stage": 1},
        subnetwork_trials=6,
    )
    get_space("nb201").validate(result.genotype)
    assert result.search_trials == 6 and "probabilities" not in result.history[0]

"""Zero-cost proxies on every space and on a user module; the zero-cost evaluator; the score CLI."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.cli import main
from archsearch.errors import ArchsearchError
from archsearch.evaluators import make_evaluator
from archsearch.evaluators.zero_cost import PROXIES, ZeroCostEvaluator, prefilter, rank_average, score_model, synflow
from archsearch.spaces import SPACES, get_space

SMALL = {"nb201": {"channels": 8, "cells_per_stage": 1}, "darts": {"channels": 8, "cells": 3}, "chain": {},
         "macro": {"width": 0.25}, "mobile": {"width": 0.25, "head": 32}}  # fmt: skip


def batch(channels: int = 1, size: int = 8, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, channels, size, size, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def test_small_build_options_cover_every_space() -> None:
    assert sorted(SMALL) == sorted(SPACES)


@pytest.mark.parametrize("space_name", sorted(SMALL))
def test_every_proxy_is_finite_on_every_space(space_name: str) -> None:
    space = get_space(space_name)
    genotype = space.sample(np.random.default_rng(1))
    net = space.build(genotype, 1, 10, 8, seed=0, **SMALL[space_name])
    for proxy in PROXIES:
        value = score_model(net, proxy, batch())
        assert math.isfinite(value), (space_name, proxy, value)


class UserNet(nn.Module):
    """A plain module with functional activations (no nn.ReLU to hook) and a tuple output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.bn(self.conv(x)))
        return self.fc(h.flatten(1)), h


def test_every_proxy_is_finite_on_a_user_module_and_leaves_it_untouched() -> None:
    torch.manual_seed(0)
    net = UserNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for proxy in PROXIES:
        assert math.isfinite(score_model(net, proxy, batch())), proxy
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    assert next(net.parameters()).dtype == torch.float32


def test_synflow_restores_signs_and_dtype_when_run_in_place() -> None:
    torch.manual_seed(0)
    net = UserNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    synflow(net, *batch())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_synflow_does_not_overflow_on_a_deep_network() -> None:
    # 40 layers whose weights are all 1: the score grows like 64^40 (about 1e72), past float32's 3e38
    layers: list[nn.Module] = []
    for _ in range(41):  # weights of ones, not drawn: the overflow below must not depend on the random state
        lin = nn.Linear(64, 64, bias=False)
        nn.init.ones_(lin.weight)
        layers += [lin, nn.ReLU()]
    head = nn.Linear(64, 10)
    nn.init.ones_(head.weight)
    net = nn.Sequential(nn.Flatten(), *layers, head)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.isfinite(net(torch.ones(1, 1, 8, 8)).sum())  # float32 overflows
    value = score_model(net, "synflow", (x, torch.zeros(2, dtype=torch.long)))
    assert math.isfinite(value) and value > 1e60


def test_scores_are_reproducible_under_a_seed_and_depend_on_it() -> None:
    space = get_space("nb201")
    g = space.sample(np.random.default_rng(0))

    def run(seed: int) -> dict[str, float]:
        ev = ZeroCostEvaluator(
            space, "synflow,snip,nwot", "digits", batch_size=16, build=SMALL["nb201"], reference=4, seed=seed
        )
        return ev.evaluate(g)

    first = run(0)
    assert first == run(0)
    assert first["zc_synflow"] != run(1)["zc_synflow"]
    assert 0.0 <= first["zc_score"] <= 1.0


def test_single_proxy_evaluator_reports_the_proxy_as_the_score() -> None:
    ev = make_evaluator("zero_cost", "nb201", {"proxy": "params", "dataset": "digits", "build": SMALL["nb201"]})
    out = ev.evaluate(get_space("nb201").sample(np.random.default_rng(0)))
    assert out["zc_score"] == out["zc_params"] > 0


def test_unknown_proxy_names_the_allowed_ones() -> None:
    with pytest.raises(ArchsearchError, match="allowed: synflow"):
        ZeroCostEvaluator("nb201", "synflw")


def test_rank_average_and_prefilter() -> None:
    assert list(rank_average([[1.0, 3.0, 2.0], [10.0, 30.0, 20.0]])) == [0.0, 1.0, 0.5]
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(6)]
    from archsearch.data import load_dataset

    top = prefilter(space, genotypes, "params", 2, load_dataset("digits"), build=SMALL["nb201"])
    sizes = {
        g.key: score_model(space.build(g, 1, 10, 8, seed=0, **SMALL["nb201"]), "params", batch()) for g in genotypes
    }
    assert [g.key for g, _ in top] == sorted(sizes, key=lambda k: -sizes[k])[:2]


def test_score_cli_json_prints_one_object_per_architecture(capsys: pytest.CaptureFixture[str]) -> None:
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    rc = main(
        ["score", arch, "--proxy", "synflow,snip", "--dataset", "digits", "--channels", "8", "--cells-per-stage", "1",
         "--json"]
    )
    assert rc == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["arch"] == arch and set(record) == {"arch", "synflow", "snip"}


def test_score_cli_sampled_with_ensemble_and_top(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "score",
            "--space",
            "nb201",
            "--n",
            "5",
            "--proxy",
            "synflow,params",
            "--ensemble",
            "--top",
            "2",
            "--channels",
            "8",
            "--cells-per-stage",
            "1",
            "--json",
        ]
    )
    assert rc == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 2 and records[0]["ensemble"] >= records[1]["ensemble"]


def test_score_cli_data_dependent_proxy_without_data_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--space", "nb201", "--n", "2", "--proxy", "nwot"]) == 2
    assert "give a dataset" in capsys.readouterr().err
    assert main(["score", "--space", "nb201", "--n", "2", "--dataset", "digits", "--input-shape", "3,32,32"]) == 2
    assert "only without a dataset" in capsys.readouterr().err


def test_search_with_the_zero_cost_evaluator_maximises_its_score(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "search",
        "--space",
        "nb201",
        "--strategy",
        "random",
        "--evaluator",
        "zero_cost",
        "--proxy",
        "synflow",
        "--trials",
        "4",
        "--channels",
        "8",
        "--cells-per-stage",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--json",
    ]
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ranked = [r for r in lines if "rank" in r]
    scores = [r["metrics"]["zc_score"] for r in ranked]
    assert len(ranked) == 4 and scores == sorted(scores, reverse=True)
    assert all(r["metrics"]["zc_score"] == r["metrics"]["zc_synflow"] for r in ranked)


# --- pinned values: each proxy against a computation by hand on a two-layer network --------------------------
def _two_layer() -> tuple[nn.Module, np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """Linear(3, 4) -> ReLU -> Linear(4, 2), no biases, fixed float64 weights with mixed signs; a batch of 5."""
    w1 = np.array([[0.5, -1.0, 0.25], [-0.75, 0.5, 1.0], [1.5, 0.25, -0.5], [-0.25, -1.25, 0.75]])
    w2 = np.array([[1.0, -0.5, 0.75, -1.5], [-0.25, 1.25, -1.0, 0.5]])
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2, bias=False)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1))
        net[2].weight.copy_(torch.from_numpy(w2))
    x = torch.tensor(
        [[1.0, 0.5, -0.5], [-1.0, 1.0, 0.25], [0.5, -0.75, 1.0], [0.25, 0.25, 0.25], [-0.5, -1.0, -0.25]],
        dtype=torch.float64,
    )
    y = torch.tensor([0, 1, 1, 0, 1])
    return net, w1, w2, x, y


def _hand_gradients(w1: np.ndarray, w2: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dL/dW1 and dL/dW2 of the mean cross-entropy, by the chain rule written out."""
    pre = x @ w1.T
    h = np.maximum(pre, 0)
    z = h @ w2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(2)[y]) / len(x)
    dw2 = dz.T @ h
    dpre = (dz @ w2) * (pre > 0)
    return dpre.T @ x, dw2


def test_synflow_equals_its_closed_form() -> None:
    # with |W| and an all-ones input the net is linear, R = 1'|W2||W1|1, and each layer contributes R: synflow = 2R
    net, w1, w2, x, y = _two_layer()
    expected = 2 * float(np.ones(2) @ np.abs(w2) @ np.abs(w1) @ np.ones(3))
    assert score_model(net, "synflow", (x, y)) == pytest.approx(expected, rel=1e-12)


def test_snip_and_grad_norm_equal_the_chain_rule() -> None:
    net, w1, w2, x, y = _two_layer()
    g1, g2 = _hand_gradients(w1, w2, x.numpy(), y.numpy())
    snip = np.abs(w1 * g1).sum() + np.abs(w2 * g2).sum()
    assert score_model(net, "snip", (x, y)) == pytest.approx(snip, rel=1e-10)
    norm = np.linalg.norm(g1) + np.linalg.norm(g2)
    assert score_model(net, "grad_norm", (x, y)) == pytest.approx(norm, rel=1e-10)


def test_nwot_is_the_log_determinant_of_the_agreement_kernel() -> None:
    net, w1, _, x, y = _two_layer()
    x, y = (
        x[[0, 1, 2, 4]],
        y[[0, 1, 2, 4]],
    )  # four inputs with distinct codes: K is non-singular (5 are not, on 4 units)
    codes = (x.numpy() @ w1.T > 0).astype(float)  # the ReLU's binary codes, one row per input
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    sign, logdet = np.linalg.slogdet(kernel)
    assert sign > 0
    assert score_model(net, "nwot", (x, y)) == pytest.approx(logdet, rel=1e-12)


def test_l2_norm_and_params_by_hand() -> None:
    net, w1, w2, x, y = _two_layer()
    assert score_model(net, "l2_norm", (x, y)) == pytest.approx(np.linalg.norm(w1) + np.linalg.norm(w2))
    assert score_model(net, "params", (x, y)) == 12 + 8


def test_a_scored_network_is_kept_as_it_was_unless_it_is_dropped_after() -> None:
    net, _, _, x, y = _two_layer()
    before = [p.detach().clone() for p in net.parameters()]
    kept = score_model(net, "synflow", (x, y))  # synflow's backward pass leaves gradients on what it scored
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.grad is None for p in net.parameters())
    assert score_model(net, "synflow", (x, y), keep=False) == kept
    assert any(p.grad is not None for p in net.parameters())

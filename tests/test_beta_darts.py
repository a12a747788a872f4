"""beta-DARTS: the Beta-Decay regulariser, its schedule, the method's defaults and the ``--beta-decay`` flag."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
import torch.nn.functional as F

from archsearch.cli import main
from archsearch.oneshot import default_config
from archsearch.oneshot.base import OneShotConfig
from archsearch.oneshot.darts import BetaDarts, Darts
from archsearch.oneshot.supernets import DartsSupernet, NB201Supernet
from archsearch.rundir import describe


def test_the_regulariser_is_the_mean_logsumexp_of_every_edge_ramped_over_the_epochs() -> None:
    net = DartsSupernet(C=4, layers=3, in_channels=1, seed=0)
    with torch.no_grad():
        for a in net.alphas.values():
            a.normal_()
    method = Darts(net, OneShotConfig(epochs=5, beta_decay=2.0), steps_per_epoch=1)
    rows = torch.cat(list(net.alphas.values()))
    seen = []
    for epoch in range(5):
        method.start_epoch(epoch)
        loss = method.beta_decay_loss()
        assert loss is not None
        seen.append(float(loss.detach()))
    expected = torch.logsumexp(rows, dim=-1).mean()
    assert seen == pytest.approx([2.0 * e / 4 * float(expected) for e in range(5)], rel=1e-6)
    # its gradient is the softmax of each edge over the number of edges: the strongest op shrinks most
    grads = torch.autograd.grad(method.beta_decay_loss(), list(net.alphas.values()))
    for grad, alpha in zip(grads, net.alphas.values()):
        assert torch.allclose(grad, 2.0 * F.softmax(alpha.detach(), dim=-1) / len(rows), atol=1e-7)
    assert Darts(net, OneShotConfig(), 1).beta_decay_loss() is None  # off by default


def test_the_regulariser_reaches_the_architecture_step() -> None:
    xv = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    yv = torch.arange(8) % 3
    found = []
    for beta_decay in (0.0, 50.0):
        net = NB201Supernet(C=4, cells=1, in_channels=1, seed=1)
        method = Darts(net, OneShotConfig(epochs=2, beta_decay=beta_decay), steps_per_epoch=1)
        method.start_epoch(1)  # the last epoch: the full weight
        method.a_optimizer.zero_grad()  # type: ignore[union-attr]
        method.arch_grad(xv, yv)
        found.append(net.alphas["cell"].grad.clone())  # type: ignore[union-attr]
    plain, regularised = found
    # the difference is exactly the regulariser's gradient: 50 * softmax / 6 edges
    alpha = NB201Supernet(C=4, cells=1, in_channels=1, seed=1).alphas["cell"].detach()
    assert torch.allclose(regularised - plain, 50.0 * F.softmax(alpha, dim=-1) / 6, atol=1e-5)


def test_betadarts_runs_with_its_weight_and_no_skip_penalty() -> None:
    config = default_config("betadarts")
    assert config.beta_decay == BetaDarts.config_defaults["beta_decay"] > 0
    assert config.skip_penalty == 0.0 and config.max_skips is None
    assert default_config("darts").beta_decay == 0.0
    assert default_config("betadarts", beta_decay=3.0).beta_decay == 3.0


def _oneshot(out, *extra: str) -> list[str]:
    return ["oneshot", "--space", "nb201", "--dataset", "digits", "--subset", "64", "--channels", "4",
            "--cells-per-stage", "1", "--batch-size", "32", "--epochs", "1", "--out", str(out), "--json",
            *extra]  # fmt: skip


def test_the_flag_reaches_the_config_and_is_refused_where_it_cannot_act(tmp_path, capsys) -> None:
    assert main(_oneshot(tmp_path / "pc", "--method", "pcdarts", "--beta-decay", "7.5")) == 0
    assert describe(tmp_path / "pc")[1]["oneshot"]["config"]["beta_decay"] == 7.5
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["genotype"]
    assert main(_oneshot(tmp_path / "gdas", "--method", "gdas", "--beta-decay", "1")) == 2
    assert "--beta-decay: no effect with --method gdas" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_oneshot(tmp_path / "neg", "--method", "betadarts", "--beta-decay", "-1"))
    assert "expected a number >= 0" in capsys.readouterr().err


def test_a_run_recorded_before_the_option_existed_resumes(tmp_path) -> None:
    from archsearch.api.oneshot_search import oneshot
    from archsearch.rundir import DB_NAME
    from archsearch.testing.oneshot_suite import tiny_data

    out = tmp_path / "run"
    settings = {"batch_size": 16, "seed": 0, "plots": False, "supernet_options": {"channels": 4, "cells_per_stage": 1}}
    oneshot("darts", "nb201", tiny_data(), out, epochs=1, **settings)
    with sqlite3.connect(out / DB_NAME) as db:  # as a run from before beta_decay was a field records it
        (text,) = db.execute("SELECT value FROM meta WHERE name = 'oneshot'").fetchone()
        meta = json.loads(text)
        del meta["config"]["beta_decay"]
        db.execute("UPDATE meta SET value = ? WHERE name = 'oneshot'", (json.dumps(meta),))
    resumed = oneshot("darts", "nb201", tiny_data(), out, epochs=2, resume=True, **settings)
    assert len(resumed.history) == 2

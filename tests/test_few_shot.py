"""Few-shot supernets: one sub-supernet per op of the split edge, trained apart after the split, each sub-network
scored inside its own; the options that build and split it, refused where they cannot act."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsearch.api.oneshot_search import oneshot
from archsearch.cli import main
from archsearch.errors import ArchsearchError, BuildError
from archsearch.evaluators.supernet import SupernetEvaluator
from archsearch.oneshot.base import OneShotConfig
from archsearch.oneshot.few_shot import FewShotSupernet
from archsearch.oneshot.spos import Spos
from archsearch.oneshot.supernets import build_supernet
from archsearch.rundir import describe
from archsearch.spaces import NB201Genotype, get_space
from archsearch.spaces.nb201 import NB201_OPS
from archsearch.testing.oneshot_suite import tiny_data

EDGE = 2


def _net() -> FewShotSupernet:
    net = build_supernet("nb201", 1, 4, channels=4, cells_per_stage=1, few_shot_edge=EDGE)
    assert isinstance(net, FewShotSupernet)
    return net


def _calls(net: FewShotSupernet) -> list[int]:
    calls = [0] * len(net.parts)
    for k, part in enumerate(net.parts):
        part.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    return calls


def _weights(part: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in part.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _with_op(k: int) -> NB201Genotype:
    """A random cell with the supernet's op ``k`` on the split edge."""
    ops = list(get_space("nb201").sample(np.random.default_rng(k)).ops)
    ops[EDGE] = NB201_OPS[k]
    return NB201Genotype(tuple(ops))


def test_paths_run_in_the_first_part_until_the_split_then_in_their_ops_part() -> None:
    net = _net()
    calls = _calls(net)
    x = torch.rand(2, 1, 8, 8)
    for k in range(len(net.parts)):
        net(x, net.single_path(_with_op(k)))
    assert calls == [len(net.parts)] + [0] * (len(net.parts) - 1)
    net.split()
    assert all(_same(_weights(net.parts[0]), _weights(p)) for p in net.parts[1:])
    calls[:] = [0] * len(net.parts)
    for k in range(len(net.parts)):
        net(x, net.single_path(_with_op(k)))
    assert calls == [1] * len(net.parts)
    with pytest.raises(ValueError, match="single paths only"):
        net(x)


def test_an_edge_outside_the_cell_is_refused() -> None:
    with pytest.raises(BuildError, match=r"edge 6 is not an edge of the cell cell \(0 to 5\)"):
        build_supernet("nb201", 1, 4, channels=4, few_shot_edge=6)


def test_spos_trains_the_first_part_then_every_part_apart() -> None:
    net = _net()
    space = get_space("nb201")
    method = Spos(net, OneShotConfig(epochs=2, few_shot_epoch=1, seed=0), steps_per_epoch=1, space=space)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.arange(16) % 4
    start = [_weights(p) for p in net.parts]
    method.start_epoch(0)
    method.step(x, y, x, y)
    assert not _same(_weights(net.parts[0]), start[0])
    assert all(_same(_weights(p), s) for p, s in zip(net.parts[1:], start[1:]))  # untouched before the split
    method.start_epoch(1)
    assert bool(net.is_split)
    split = _weights(net.parts[0])
    method.step(x, y, x, y)  # fair sampling: one path per op of the split edge, so one per part
    after = [_weights(p) for p in net.parts]
    assert all(not _same(a, split) for a in after)
    assert all(not _same(a, b) for i, a in enumerate(after) for b in after[i + 1 :])


def test_the_supernet_evaluator_scores_a_cell_inside_its_own_part() -> None:
    net = _net()
    net.split()
    with torch.no_grad():  # part 3 alone gets its own weights: only a cell with op 3 on the split edge sees them
        for p in net.parts[3].parameters():
            p.add_(torch.randn_like(p))
    calls = _calls(net)
    evaluator = SupernetEvaluator(net, tiny_data(), batch_size=32, calibration_batches=1)
    evaluator.evaluate(_with_op(3))
    assert calls[3] > 0 and sum(calls) == calls[3]


def _run(out: Path, cut_after: int | None = None, resume: bool = False) -> Any:
    class Cut(Exception):
        pass

    def on_epoch(record: dict[str, Any]) -> None:
        if record["epoch"] == cut_after:
            raise Cut

    try:
        return oneshot("spos", "nb201", tiny_data(), out, epochs=2, batch_size=16, seed=1, few_shot_epoch=1,
                       supernet_options={"channels": 4, "cells_per_stage": 1, "few_shot_edge": EDGE},
                       subnetwork_trials=4, plots=False, resume=resume, on_epoch=on_epoch)  # fmt: skip
    except Cut:
        return None


def test_a_search_cut_before_the_split_and_resumed_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    full = _run(tmp_path / "full")
    assert _run(tmp_path / "cut", cut_after=1) is None
    resumed = _run(tmp_path / "cut", resume=True)
    keep = ("train_loss", "train_acc")
    assert [{k: r[k] for k in keep} for r in resumed.history] == [{k: r[k] for k in keep} for r in full.history]
    assert resumed.genotype == full.genotype
    assert describe(tmp_path / "full")[1]["oneshot"]["supernet"]["few_shot_edge"] == EDGE


def test_the_api_refuses_few_shot_options_that_cannot_act(tmp_path: Path) -> None:
    with pytest.raises(ArchsearchError, match="not darts"):
        oneshot("darts", "nb201", tiny_data(), tmp_path / "a", epochs=1, plots=False,
                supernet_options={"channels": 4, "few_shot_edge": 0})  # fmt: skip
    with pytest.raises(ArchsearchError, match="give few_shot_edge too"):
        oneshot("spos", "nb201", tiny_data(), tmp_path / "b", epochs=2, few_shot_epoch=1, plots=False)
    with pytest.raises(ArchsearchError, match=r"must be an epoch of the search \(0 to 1\)"):
        oneshot("spos", "nb201", tiny_data(), tmp_path / "c", epochs=2, few_shot_epoch=2, plots=False,
                supernet_options={"channels": 4, "few_shot_edge": 0})  # fmt: skip


def test_the_flags_reach_the_supernet_and_the_config(tmp_path: Path, capsys) -> None:
    base = ["oneshot", "--space", "nb201", "--dataset", "digits", "--subset", "64", "--channels", "4",
            "--batch-size", "32", "--epochs", "2", "--json"]  # fmt: skip
    assert main([*base, "--method", "spos", "--spos-trials", "2", "--few-shot-edge", "4", "--few-shot-epoch", "1",
                 "--out", str(tmp_path / "a")]) == 0  # fmt: skip
    recorded = describe(tmp_path / "a")[1]["oneshot"]
    assert recorded["supernet"]["few_shot_edge"] == 4 and recorded["config"]["few_shot_epoch"] == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["genotype"]
    assert main([*base, "--method", "gdas", "--few-shot-edge", "1", "--out", str(tmp_path / "b")]) == 2
    assert "--few-shot-edge: no effect with --method gdas" in capsys.readouterr().err
    assert main([*base, "--method", "spos", "--few-shot-epoch", "1", "--out", str(tmp_path / "c")]) == 2
    assert "give few_shot_edge too" in capsys.readouterr().err

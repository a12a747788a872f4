"""Degenerate architectures (whose output cannot depend on their input) are named by their space, recorded
infeasible before training, and never returned silently by a one-shot derivation; how far a one-shot search's alphas
moved is said in words."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.oneshot.supernets import NB201Supernet
from archsearch.reporting.plots import alpha_separation
from archsearch.spaces import get_space
from archsearch.spaces.nb201 import NB201_EDGES, NB201_OPS, NB201Genotype
from archsearch.store import Store
from archsearch.strategies.random import RandomSearch

NB201 = get_space("nb201")
CUT = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"  # the derived cell a user met: every path cut


def _reaches_output(ops: tuple[str, ...]) -> bool:
    """Graph search over the non-none edges, written independently of the space's path list."""
    reached = {0}
    for to in (1, 2, 3):
        if any(frm in reached and op != "none" for (t, frm), op in zip(NB201_EDGES, ops) if t == to):
            reached.add(to)
    return 3 in reached


def test_nb201_names_exactly_the_cells_whose_input_cannot_reach_their_output() -> None:
    degenerate = 0
    for ops in itertools.product(NB201_OPS, repeat=6):
        reason = NB201.degenerate(NB201Genotype(ops))
        assert (reason is not None) == (not _reaches_output(ops))
        degenerate += reason is not None
    assert 0 < degenerate < 5**6
    assert NB201.degenerate(NB201.parse(CUT)) is not None
    assert NB201.degenerate(NB201.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")) is None


@pytest.mark.parametrize("name", ["darts", "chain"])
def test_darts_and_chain_networks_are_never_degenerate(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    assert all(space.degenerate(space.sample(rng)) is None for _ in range(200))


class CountingEvaluator:
    """Builds small NB201 networks (so degenerate cells are checked) and counts evaluations."""

    name = "counting"
    max_fidelity = None

    def __init__(self) -> None:
        self.evaluated: list[str] = []

    def network(self, genotype, seed=None):
        return NB201.build(genotype, 3, 10, 8, seed=seed, channels=4, cells_per_stage=1), (3, 8, 8)

    def evaluate(self, genotype, fidelity=None, seed=None):
        self.evaluated.append(str(genotype))
        return {"val_acc": 50.0}


def test_a_search_records_degenerate_cells_infeasible_without_training_them(tmp_path: Path) -> None:
    evaluator = CountingEvaluator()
    result = Experiment(NB201, RandomSearch(NB201, seed=0), evaluator, Objective(), Budget(400), Store(tmp_path)).run()
    assert result.infeasible > 0 and result.trials == 400
    assert all(NB201.degenerate(NB201.parse(a)) is None for a in evaluator.evaluated)
    assert len(evaluator.evaluated) == 400 - result.infeasible


def _supernet_pointing_at(ops: list[str], margin: float = 2.0) -> NB201Supernet:
    net = NB201Supernet(C=4, cells=1, num_classes=10, in_channels=1)
    with torch.no_grad():
        alphas = net.alphas["cell"]
        alphas.zero_()
        for e, op in enumerate(ops):
            alphas[e, NB201_OPS.index(op)] = margin
    return net


def test_one_shot_derivation_keeps_a_path_and_says_so() -> None:
    net = _supernet_pointing_at(["none"] * 6)
    with torch.no_grad():  # the strongest non-none weights: conv3x3 on 0->1 and 1->3 (a path), weaker elsewhere
        net.alphas["cell"][0, NB201_OPS.index("nor_conv_3x3")] = 1.5
        net.alphas["cell"][4, NB201_OPS.index("nor_conv_3x3")] = 1.5
        net.alphas["cell"][3, NB201_OPS.index("skip_connect")] = 0.5
    genotype = net.derive()
    assert NB201.degenerate(genotype) is None and net.derive_note is not None
    assert genotype.ops[0] == genotype.ops[4] == "nor_conv_3x3" and genotype.ops[3] == "none"
    assert "0->1, 1->3" in net.derive_note
    fine = _supernet_pointing_at(["nor_conv_3x3", "none", "none", "none", "skip_connect", "none"])
    assert fine.derive().ops[0] == "nor_conv_3x3" and fine.derive_note is None


def test_alpha_separation_in_words() -> None:
    flat = [{"epoch": 6, "probabilities": {"cell": [[0.2, 0.2, 0.2, 0.2, 0.2]] * 6}}]
    (line,) = alpha_separation(flat)
    assert "close to random" in line and "0.200 uniform" in line and "--alpha-lr" in line
    moved = [
        {"epoch": 1, "probabilities": {"normal": [[0.5, 0.2, 0.1, 0.1, 0.1]] * 3}},
        {"epoch": 2, "probabilities": {"normal": [[0.7, 0.1, 0.1, 0.05, 0.05]] * 2 + [[0.3, 0.3, 0.2, 0.1, 0.1]]}},
    ]
    (line,) = alpha_separation(moved)
    assert line.startswith("normal cell:") and "2 of 3 edges passed 0.6, the first after epoch 2" in line


def test_alpha_separation_of_a_block_supernet_speaks_of_layers_and_slots() -> None:
    flat = [{"epoch": 1, "probabilities": {"layer": [[1 / 13] * 13] * 4}}]
    (line,) = alpha_separation(flat)
    assert line.startswith("the layers:") and "derived network is close to random" in line
    moved = [{"epoch": 1, "probabilities": {"layer": [[0.7, 0.3], [0.5, 0.5]]}}]
    (line,) = alpha_separation(moved)
    assert "1 of 2 slots passed 0.6, the first after epoch 1" in line

"""NSGA-II: crowding distance, elitist selection front by front, and a better front than random search on a toy
two-objective problem (the strategy suite's checks run for it with every registered strategy)."""

from __future__ import annotations

import numpy as np
import pytest

from archsearch.errors import ArchsearchError
from archsearch.objectives import hypervolume
from archsearch.spaces import get_space
from archsearch.strategies import get_strategy
from archsearch.strategies.nsga2 import crowding_distance, rank_and_crowd
from archsearch.testing.strategy_suite import toy_score
from archsearch.trial import COMPLETE, INFEASIBLE, Trial


def test_crowding_distance_by_hand() -> None:
    points = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(points)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx((3 - 0) / 4 + (4 - 1) / 4) and d[2] == pytest.approx((4 - 1) / 4 + (2 - 0) / 4)


def test_ranks_follow_domination_with_each_objectives_direction() -> None:
    # maximise the first, minimise the second
    points = np.array([[90.0, 5.0], [80.0, 1.0], [85.0, 6.0], [70.0, 2.0]])
    rank, _ = rank_and_crowd(points, [True, False])
    assert list(rank) == [0, 0, 1, 1]


def _trial(space, g, acc: float, latency: float, status: str = COMPLETE) -> Trial:
    return Trial(0, g, g.key, status, {"val_acc": acc, "latency_ms": latency}, acc if status == COMPLETE else None)


def test_the_next_parents_are_the_best_fronts_and_infeasible_trials_never_parent() -> None:
    space = get_space("macro")
    s = get_strategy("nsga2", space, seed=0, population_size=2, objectives=["val_acc", "latency_ms"])
    gs = s.ask(2)
    s.tell([_trial(space, gs[0], 50.0, 9.0), _trial(space, gs[1], 60.0, 1.0)])
    children = s.ask(2)  # breeding selects the parents first
    assert str(s.parents[0][0]) == str(gs[1])  # dominates the other
    s.tell([_trial(space, children[0], 99.0, 0.5, INFEASIBLE), _trial(space, children[1], 70.0, 5.0)])
    s.ask(1)
    assert {str(g) for g, _ in s.parents} == {str(gs[1]), str(children[1])}


def test_a_trial_without_an_objective_is_an_error() -> None:
    space = get_space("macro")
    s = get_strategy("nsga2", space, seed=0, objectives=["val_acc", "latency_ms"])
    (g,) = s.ask(1)
    with pytest.raises(ArchsearchError, match=r"without its objective\(s\) \['latency_ms'\]"):
        s.tell([Trial(0, g, g.key, COMPLETE, {"val_acc": 1.0}, 1.0)])
    with pytest.raises(ArchsearchError, match="two or more known objectives"):
        get_strategy("nsga2", space, objectives=["val_acc"])


def _front_hypervolume(name: str, seed: int, budget: int = 120) -> float:
    """Maximise the toy score, minimise the cell's complexity on NB201."""
    space = get_space("nb201")
    options = {"objectives": ["val_acc", "params"]} if name == "nsga2" else {}
    s = get_strategy(name, space, seed=seed, **options)
    points, seen = [], set()
    while len(points) < budget:
        (g,) = s.ask(1)
        value, size = toy_score(g), space.complexity(g)
        trial = Trial(len(points), g, g.key, COMPLETE, {"val_acc": value, "params": size}, value)
        if g.key not in seen:
            seen.add(g.key)
            points.append((value, size))
        s.tell([trial])
    return hypervolume(np.array(points), [True, False], [0.0, max(p[1] for p in points) + 1])


def test_nsga2_finds_a_larger_front_than_random_search() -> None:
    nsga = np.mean([_front_hypervolume("nsga2", s) for s in range(3)])
    rand = np.mean([_front_hypervolume("random", s) for s in range(3)])
    assert nsga > rand


def test_the_single_objective_benchmark_leaves_nsga2_out_and_says_why(made_table) -> None:
    import archsearch
    from archsearch.comparison.strategies import tabular_strategies

    assert "nsga2" not in tabular_strategies() and "evolution" in tabular_strategies()
    with pytest.raises(ArchsearchError, match="nsga2 is multi-objective"):
        archsearch.benchmark(table=str(made_table), strategies="nsga2", queries=5, seeds=1)

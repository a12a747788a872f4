"""The strategy benchmark's protocol: a run picks the evaluated architecture with the best search signal, reports
that architecture's reported column, spends its budget on distinct architectures only, and seeds differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.comparison.strategies import benchmark_run, run_benchmark
from archsearch.evaluators import Table

STRATEGIES = ["random", "evolution", "local", "reinforce"]


@pytest.fixture(scope="module")
def table(made_table: Path) -> Table:
    return Table(made_table)


@pytest.mark.parametrize("name", STRATEGIES)
def test_the_pick_is_the_argmax_of_the_signal_and_its_reported_figure_is_reported(name: str, table: Table) -> None:
    run = benchmark_run(name, seed=3, queries=40, table=table)
    best = max(run.evaluated, key=lambda arch: table.lookup(arch)["valid_acc_12ep"])
    assert run.pick == best
    assert run.reported == table.lookup(best)["test_acc_200ep"]
    assert run.reported != table.lookup(best)["valid_acc_12ep"]  # the reported column, not the signal


@pytest.mark.parametrize("name", STRATEGIES)
def test_queries_count_distinct_architectures_only(name: str, table: Table) -> None:
    run = benchmark_run(name, seed=1, queries=40, table=table)
    assert len(run.evaluated) == len(set(run.evaluated)) == 40
    assert run.queries == 40  # repeats were answered from the store, not looked up again


def test_a_strategy_that_repeats_itself_still_gets_its_full_budget_of_distinct_queries(table: Table) -> None:
    runs = [benchmark_run("genetic", seed=s, queries=150, table=table) for s in range(3)]
    assert any(r.repeats > 0 for r in runs)  # crossover of a converging population re-proposes what it has seen
    assert all(len(set(r.evaluated)) == r.queries == 150 for r in runs)


@pytest.mark.parametrize("name", STRATEGIES)
def test_different_seeds_give_different_runs_and_the_same_seed_the_same(name: str, table: Table) -> None:
    a, b = (benchmark_run(name, seed=s, queries=20, table=table) for s in (0, 1))
    assert a.evaluated != b.evaluated
    assert benchmark_run(name, seed=0, queries=20, table=table).evaluated == a.evaluated


def test_the_score_is_the_mean_of_the_reported_figures_of_the_picks(table: Table) -> None:
    (score,) = run_benchmark(table, ["random"], queries=15, seeds=4)
    picks = [benchmark_run("random", seed=s, queries=15, table=table).reported for s in range(4)]
    assert score.picks == picks and score.mean == pytest.approx(sum(picks) / 4)

import pytest

from archsearch.errors import ArchsearchError
from archsearch.experiment import Budget, Experiment
from archsearch.multifidelity import MultiFidelity
from archsearch.objectives import Objective
from archsearch.spaces import get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy
from archsearch.testing.strategy_suite import toy_score

SPACE = get_space("nb201")


def test_rungs_and_promotion_rule() -> None:
    mf = MultiFidelity("sh", 1, 9, eta=3)
    assert mf.rungs == [1.0, 3.0, 9.0]
    assert mf.record(1.0, 50) is None and mf.record(1.0, 40) is None  # fewer than eta results: nothing promoted
    assert mf.record(1.0, 60) == 3.0  # best of three
    assert mf.record(1.0, 10) is None  # 4 results, keep 1: 60 is the bar
    assert mf.record(9.0, 99) is None  # the top rung ends every trial
    hb = MultiFidelity("hyperband", 1, 9, eta=3)
    assert [hb.start(n) for n in range(4)] == [1.0, 3.0, 9.0, 1.0]
    with pytest.raises(ArchsearchError, match="eta >= 2"):
        MultiFidelity("sh", 1, 9, eta=1)
    with pytest.raises(ArchsearchError, match="one of sh, hyperband"):
        MultiFidelity("bohb", 1, 9)


class EpochToy:
    """Scores grow with epochs (capped by the toy score) so promotions matter; records what it ran."""

    name = "epoch-toy"

    def __init__(self) -> None:
        self.runs: list[tuple[str, float]] = []

    def evaluate(self, genotype, fidelity=None, seed=None):
        self.runs.append((genotype.key, fidelity))
        return {"val_acc": 100 * toy_score(genotype) * fidelity / 9}


@pytest.mark.parametrize(
    ("kind", "strategy", "max_epochs"), [("sh", "random", 135), ("sh", "evolution", 270), ("hyperband", "random", 200)]
)
def test_any_strategy_with_successive_halving(tmp_path, kind: str, strategy: str, max_epochs: int) -> None:
    evaluator = EpochToy()
    exp = Experiment(
        SPACE,
        get_strategy(strategy, SPACE, seed=0),
        evaluator,
        Objective(),
        Budget(trials=30),
        Store(tmp_path),
        fidelity=MultiFidelity(kind, 1, 9, eta=3),
    )
    result = exp.run()
    trials = exp.store.trials(SPACE.from_json)
    assert result.trials == 30 and all(t.status == "complete" for t in trials)
    by_rung = {r: sum(1 for _, f in evaluator.runs if f == r) for r in (1.0, 3.0, 9.0)}
    assert by_rung[9.0] < by_rung[3.0] + by_rung[1.0]  # few reach the top
    assert by_rung[9.0] >= 1
    for t in trials:  # every rung a trial passed through is in its metrics, the last one is its fidelity
        rungs = sorted(float(k.split("@")[1]) for k in t.metrics if "@" in k)
        assert rungs[-1] == t.fidelity and t.metrics["val_acc"] == t.metrics[f"val_acc@{t.fidelity:g}"]
    # Training all 30 fully takes 270 epochs. With random proposals about a third survive each rung (SH: 108
    # epochs measured); evolution keeps improving, so more of its later trials earn promotion.
    assert sum(f for _, f in evaluator.runs) < max_epochs


def test_resume_rebuilds_the_rungs(tmp_path) -> None:
    class Crash(EpochToy):
        def evaluate(self, genotype, fidelity=None, seed=None):
            if len(self.runs) == 20:
                raise KeyboardInterrupt
            return super().evaluate(genotype, fidelity, seed)

    def experiment(path, evaluator):
        return Experiment(
            SPACE,
            get_strategy("evolution", SPACE, seed=0),
            evaluator,
            Objective(),
            Budget(trials=25),
            Store(path),
            fidelity=MultiFidelity("sh", 1, 9, eta=3),
        )

    full = experiment(tmp_path / "full", EpochToy())
    full.run()
    with pytest.raises(KeyboardInterrupt):
        experiment(tmp_path / "cut", Crash()).run()
    resumed = experiment(tmp_path / "cut", EpochToy())
    resumed.run(resume=True)
    rows = lambda e: [(t.number, t.key, t.fidelity, t.score) for t in e.store.trials(SPACE.from_json)]  # noqa: E731
    assert rows(resumed) == rows(full)


def test_table_searches_refuse_multifidelity() -> None:
    from archsearch.api import make_config

    with pytest.raises(ArchsearchError, match="needs an evaluator that trains"):
        make_config(table="x.csv", multifidelity={"kind": "sh"})

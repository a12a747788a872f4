"""Learned predictors: they recover a known function's ranking, fit from a store, and guide BANANAS."""

import numpy as np
import pytest
from scipy.stats import kendalltau

from archsearch.errors import ArchsearchError
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.spaces import get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy
from archsearch.strategies.predictors import PREDICTORS, features, fit_from_store, make_predictor
from archsearch.testing.strategy_suite import drive, toy_score


def linear_truth(space_name: str = "nb201", n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    space = get_space(space_name)
    rng = np.random.default_rng(0)
    genotypes = {g.key: g for g in (space.sample(rng) for _ in range(n))}
    x = features(space, list(genotypes.values()), encoding="onehot")
    w = np.random.default_rng(1).normal(size=x.shape[1])
    return x, x @ w


@pytest.mark.parametrize("name", PREDICTORS.names())
def test_predictor_recovers_the_ranking_of_a_linear_function(name: str) -> None:
    x, y = linear_truth()
    model = make_predictor(name, seed=0).fit(x[:200], y[:200])
    mean, std = model.predict(x[200:])
    assert kendalltau(mean, y[200:])[0] > 0.8
    assert mean.shape == std.shape == (len(x) - 200,) and np.all(std >= 0)


def test_mlp_ensemble_is_seeded() -> None:
    x, y = linear_truth(n=60)
    a = make_predictor("mlp", seed=3).fit(x, y).predict(x)[0]
    b = make_predictor("mlp", seed=3).fit(x, y).predict(x)[0]
    c = make_predictor("mlp", seed=4).fit(x, y).predict(x)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_training_data_is_named() -> None:
    with pytest.raises(ArchsearchError, match="at least 2"):
        make_predictor("mlp").fit(np.zeros((1, 3)), np.zeros(1))
    with pytest.raises(ArchsearchError, match="finite"):
        make_predictor("gbt").fit(np.zeros((3, 3)), np.array([1.0, np.nan, 2.0]))
    with pytest.raises(ArchsearchError, match="unknown predictor"):
        make_predictor("svm")


class ToyEvaluator:
    """Scores NB201 cells by their match with the suite's target cell (no training)."""

    name = "toy"
    max_fidelity = None

    def evaluate(self, genotype, fidelity=None, seed=None):
        return {"val_acc": 100 * toy_score(genotype)}


def test_fit_from_store_uses_every_recorded_trial(tmp_path) -> None:
    space = get_space("nb201")
    store = Store(tmp_path)
    Experiment(space, get_strategy("random", space), ToyEvaluator(), Objective(), Budget(trials=40), store).run()
    model = fit_from_store(store, space, "gbt")
    x = features(space, [space.sample(np.random.default_rng(s)) for s in range(10)])
    assert model.predict(x)[0].shape == (len(x),)
    assert len(store.trials(space.from_json)) == 40
    with pytest.raises(ArchsearchError, match="completed trial"):
        fit_from_store(store, space, metric="test_acc")


@pytest.mark.parametrize("name", ["bananas", "guided_evolution"])
def test_predictor_guided_search_beats_random_on_the_toy_objective(name: str) -> None:
    def best(strategy: str, seed: int) -> float:
        return max(v for _, v in drive(get_strategy(strategy, "nb201", seed=seed), 40))

    guided = np.mean([best(name, s) for s in range(3)])
    plain = np.mean([best("random", s) for s in range(3)])
    assert guided > plain, (guided, plain)


def test_bananas_options_are_checked() -> None:
    with pytest.raises(ValueError, match="acquisition"):
        get_strategy("bananas", "nb201", acquisition="ei")
    with pytest.raises(ValueError, match="initial"):
        get_strategy("bananas", "nb201", initial=1)


def test_zero_cost_scores_as_extra_features() -> None:
    from archsearch.evaluators.zero_cost import ZeroCostEvaluator

    space = get_space("nb201")
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(4)]
    zc = ZeroCostEvaluator(space, "params,synflow", "digits", build={"channels": 8, "cells_per_stage": 1}, reference=2)
    x = features(space, genotypes, zc)
    assert x.shape == (4, 84 + 2) and np.all(np.isfinite(x))
    assert np.array_equal(x[:, :84], features(space, genotypes))


def test_nb201_path_encoding_counts_live_paths() -> None:
    from archsearch.spaces import NB201Genotype

    space = get_space("nb201")
    dead = NB201Genotype.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert space.encode_paths(dead).sum() == 0
    # four input-to-output paths: the direct edge, two of length 2, one of length 3; one of them runs through none
    cell = NB201Genotype.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    vec = space.encode_paths(cell)
    assert vec.shape == (84,) and vec.sum() == 3
    assert features(space, [cell], encoding="onehot").shape == (1, 30)
    with pytest.raises(ArchsearchError, match="allowed: path, onehot"):
        features(space, [cell], encoding="adjacency")

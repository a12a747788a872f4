"""Every registered strategy through the reusable suite in archsearch.testing.strategy_suite."""

import json

import numpy as np
import pytest

from archsearch.spaces import get_space
from archsearch.strategies import get_strategy
from archsearch.testing.strategy_suite import (
    check_fresh_process,
    check_resume,
    check_valid_and_seeded,
    drive,
    evaluations_to_best,
    registered,
    toy_score,
)
from archsearch.trial import COMPLETE, Trial

# (evaluations, seeds, seeds that must succeed): each strategy reaches the toy optimum (1 of 15,625 cells) within
# that many evaluations. Random search needs about 7,800 on average. Measured on seeds 0-4: evolution 26-542,
# genetic 78-117, local 52-74, progressive 82-125, bayes 47-106, reinforce 63-97 evaluations.
REACH = {
    "evolution": (600, 5, 4),
    "genetic": (200, 5, 5),
    "local": (120, 5, 5),
    "progressive": (200, 5, 5),
    "bayes": (150, 3, 3),
    "reinforce": (120, 2, 2),
}


@pytest.mark.parametrize("name", registered())
def test_valid_and_seeded(name: str) -> None:
    check_valid_and_seeded(name)


def test_every_strategy_gives_the_same_sequence_in_a_fresh_process() -> None:
    check_fresh_process(registered())


@pytest.mark.parametrize("name", registered())
def test_state_dict_resume_continues_identically(name: str) -> None:
    check_resume(name)


@pytest.mark.parametrize("name", sorted(REACH))
def test_reaches_the_toy_optimum(name: str) -> None:
    budget, seeds, needed = REACH[name]
    hits = [evaluations_to_best(name, seed, budget) for seed in range(seeds)]
    assert sum(h is not None for h in hits) >= needed, f"{name}: evaluations to the optimum per seed: {hits}"


def test_random_search_does_not_reach_it_at_those_budgets() -> None:
    hits = [evaluations_to_best("random", seed, 300) for seed in range(5)]
    assert sum(h is not None for h in hits) <= 1


def test_every_strategy_is_registered_once_and_named() -> None:
    assert registered() == [
        "random",
        "evolution",
        "genetic",
        "reinforce",
        "bayes",
        "local",
        "progressive",
        "bananas",
        "guided_evolution",
        "nsga2",
        "motpe",
    ]
    assert np.all([isinstance(n, str) for n in registered()])


def test_reinforce_resumes_from_a_checkpoint_plus_replayed_updates() -> None:
    """The saved controller is a checkpoint plus the updates since; a resume replays them to the same weights."""
    space = get_space("nb201")
    original = get_strategy("reinforce", space, seed=2, batch=3)
    original.checkpoint_every = 2
    for _ in range(10):  # saved after every trial, as the experiment does; updates after trials 3, 6 and 9
        (g,) = original.ask(1)
        original.tell([Trial(0, g, g.key, COMPLETE, {"val_acc": toy_score(g)}, toy_score(g))])
        state = json.loads(json.dumps(original.state_dict()))
    # the checkpoint was rewritten once two updates were logged; the third update is in the log
    assert state["controller"]["steps"] == 2 and len(state["replay"]) == 1 and original.controller.steps == 3
    restored = get_strategy("reinforce", space, seed=999, batch=3)  # options come from the run config
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.controller.flat, original.controller.flat)
    np.testing.assert_array_equal(restored.controller.adam_v, original.controller.adam_v)
    assert drive(original, 20) == drive(restored, 20)

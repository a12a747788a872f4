"""Property checks every multi-trial strategy must pass, on toy objectives with a known best.

``drive`` plays the experiment's part without a store: it asks, answers repeated architectures from memory and
tells results. The toy objective on the NB201 space scores the fraction of edges that match a hidden target cell,
so the best value is exactly 1.0 and every strategy's progress is measurable. On any other space (your own, see
``examples/own_space.py``) the toy objective is the fraction of decisions equal to a seeded random genotype.

Every check takes ``space`` (a registered name); ``setup`` names a Python file that the fresh-process check runs
first (the file that registers your space or strategy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from archsearch.errors import GenotypeError
from archsearch.spaces import DEFAULT_SPACE, NB201Genotype, get_space
from archsearch.strategies import STRATEGIES, Strategy, get_strategy
from archsearch.trial import COMPLETE, Trial

TARGET = NB201Genotype.from_string(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
)


def toy_score(genotype: Any) -> float:
    """Fraction of edges equal to :data:`TARGET` (1.0 only for the target itself)."""
    return sum(a == b for a, b in zip(genotype.ops, TARGET.ops)) / len(TARGET.ops)


def toy_objective(space: str = DEFAULT_SPACE) -> Callable[[Any], float]:
    """The toy score on ``space``: :func:`toy_score` on NB201, else the fraction of decisions equal to a genotype
    drawn with seed 12345."""
    sp = get_space(space)
    if sp.name == TARGET.space:
        return toy_score
    target = {d.name: d.value for d in sp.decisions(sp.sample(np.random.default_rng(12345)))}

    def score(genotype: Any) -> float:
        decisions = sp.decisions(genotype)
        return sum(target.get(d.name) == d.value for d in decisions) / max(len(target), len(decisions))

    return score


def drive(
    strategy: Strategy, evaluations: int, score: Callable[[Any], float] = toy_score, max_asks: int | None = None
) -> list[tuple[str, float]]:
    """Run ``strategy`` for ``evaluations`` distinct evaluations (at most ``max_asks`` asks, by default five per
    evaluation); returns (key, score) in evaluation order."""
    max_asks = 5 * evaluations if max_asks is None else max_asks
    seen: dict[str, Trial] = {}
    order: list[tuple[str, float]] = []
    asks = 0
    while len(order) < evaluations and asks < max_asks:
        asks += 1
        (g,) = strategy.ask(1)
        if g.key in seen:
            strategy.tell([seen[g.key].answer(g)])
            continue
        value = score(g)
        # params: a second objective for multi-objective strategies (the space's cheap size measure)
        metrics = {"val_acc": value, "params": strategy.space.complexity(g)}
        trial = Trial(len(order), g, g.key, COMPLETE, metrics, value)
        seen[g.key] = trial
        order.append((g.key, value))
        strategy.tell([trial])
    return order


def evaluations_to_best(name: str, seed: int, budget: int, **options: Any) -> int | None:
    """How many evaluations ``name`` needs to reach the toy optimum (None if not within ``budget``)."""
    order = drive(get_strategy(name, DEFAULT_SPACE, seed=seed, **options), budget)
    return next((i + 1 for i, (_, v) in enumerate(order) if v == 1.0), None)


def check_valid_and_seeded(name: str, n: int = 30, space: str = DEFAULT_SPACE) -> None:
    """Asked genotypes are valid and distinct by key where the space allows; the same seed gives the same sequence,
    another seed another one."""
    sp = get_space(space)
    score = toy_objective(space)
    asked: list[Any] = []

    def recording(g: Any) -> float:
        try:
            sp.validate(g)
        except GenotypeError as exc:
            raise AssertionError(f"{name} asked for a genotype not in space {sp.name!r}: {exc}") from None
        asked.append(g)
        return score(g)

    first = drive(get_strategy(name, sp, seed=0), n, recording)
    assert len(first) == min(n, sp.size() or n), f"{name}: {len(first)} distinct evaluations of {n} asked for"
    assert [g.key for g in asked] == [k for k, _ in first]
    assert drive(get_strategy(name, sp, seed=0), n, score) == first, f"{name}: the same seed gave another sequence"
    assert drive(get_strategy(name, sp, seed=1), n, score) != first, f"{name}: another seed gave the same sequence"


def check_fresh_process(
    names: str | Sequence[str], n: int = 20, space: str = DEFAULT_SPACE, setup: str | None = None
) -> None:
    """The same seed gives the same sequence in a fresh interpreter (no hidden global state). Several strategies
    share one fresh interpreter, so its start-up is paid once."""
    names = [names] if isinstance(names, str) else list(names)
    code = (
        "import json, runpy\nfrom archsearch.strategies import get_strategy\n"
        "from archsearch.testing.strategy_suite import drive, toy_objective\n"
        + (f"runpy.run_path({setup!r}, run_name='archsearch_setup')\n" if setup else "")
        + f"for name in {names!r}:\n"
        + f"    print(json.dumps(drive(get_strategy(name, {space!r}, seed=3), {n}, toy_objective({space!r}))))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, f"{', '.join(names)} in a fresh process failed: {run.stderr[-2000:]}"
    sequences = run.stdout.splitlines()
    assert len(sequences) == len(names), f"a fresh process printed {len(sequences)} sequences for {names}"
    for name, fresh in zip(names, sequences):
        here = drive(get_strategy(name, space, seed=3), n, toy_objective(space))
        assert [tuple(x) for x in json.loads(fresh)] == here, f"{name}: a fresh process gave another sequence"


def check_resume(name: str, before: int = 25, after: int = 25, space: str = DEFAULT_SPACE) -> None:
    """A strategy restored from a JSON round trip of ``state_dict`` continues exactly like the original."""
    sp = get_space(space)
    score = toy_objective(space)
    original = get_strategy(name, sp, seed=5)
    drive(original, before, score)
    state = json.loads(json.dumps(original.state_dict()))
    restored = get_strategy(name, sp, seed=999)
    restored.load_state_dict(state)
    # Both continue with the same memory of what was evaluated so repeats are answered alike.
    seen_scores: dict[str, float] = {}

    def remembered(g: Any) -> float:
        seen_scores.setdefault(g.key, score(g))
        return seen_scores[g.key]

    assert drive(original, after, remembered) == drive(restored, after, remembered), f"{name}: resumed differently"


def registered() -> list[str]:
    """Every registered strategy."""
    return STRATEGIES.names()

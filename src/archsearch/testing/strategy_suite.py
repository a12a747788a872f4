"""Property checks every multi-trial strategy must pass, on toy objectives with a known best.

``drive`` plays the experiment's part without a store: it asks, answers repeated architectures from memory and
tells results. The toy objective on the NB201 space scores the fraction of edges that match a hidden target cell,
so the best value is exactly 1.0 and every strategy's progress is measurable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from archsearch.spaces import NB201Genotype, get_space
from archsearch.strategies import STRATEGIES, Strategy, get_strategy
from archsearch.trial import COMPLETE, Trial

TARGET = NB201Genotype.from_string(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
)


def toy_score(genotype: Any) -> float:
    """Fraction of edges equal to :data:`TARGET` (1.0 only for the target itself)."""
    return sum(a == b for a, b in zip(genotype.ops, TARGET.ops)) / len(TARGET.ops)


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
        trial = Trial(len(order), g, g.key, COMPLETE, {"val_acc": value}, value)
        seen[g.key] = trial
        order.append((g.key, value))
        strategy.tell([trial])
    return order


def evaluations_to_best(name: str, seed: int, budget: int, **options: Any) -> int | None:
    """How many evaluations ``name`` needs to reach the toy optimum (None if not within ``budget``)."""
    order = drive(get_strategy(name, "nb201", seed=seed, **options), budget)
    return next((i + 1 for i, (_, v) in enumerate(order) if v == 1.0), None)


def check_valid_and_seeded(name: str, n: int = 30) -> None:
    """Asked genotypes are valid; the same seed gives the same sequence, another seed another one."""
    space = get_space("nb201")
    first = drive(get_strategy(name, space, seed=0), n)
    assert len(first) == n
    for key, _ in first:
        space.validate(NB201Genotype.from_string(key))
    assert drive(get_strategy(name, space, seed=0), n) == first
    assert drive(get_strategy(name, space, seed=1), n) != first


def check_fresh_process(name: str, n: int = 20) -> None:
    """The same seed gives the same sequence in a fresh interpreter (no hidden global state)."""
    code = (
        "import json\nfrom archsearch.strategies import get_strategy\n"
        "from archsearch.testing.strategy_suite import drive\n"
        f"print(json.dumps(drive(get_strategy({name!r}, 'nb201', seed=3), {n})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    here = drive(get_strategy(name, "nb201", seed=3), n)
    assert [tuple(x) for x in json.loads(out)] == here


def check_resume(name: str, before: int = 25, after: int = 25) -> None:
    """A strategy restored from a JSON round trip of ``state_dict`` continues exactly like the original."""
    space = get_space("nb201")
    original = get_strategy(name, space, seed=5)
    drive(original, before)
    state = json.loads(json.dumps(original.state_dict()))
    restored = get_strategy(name, space, seed=999)
    restored.load_state_dict(state)
    # Both continue with the same memory of what was evaluated so repeats are answered alike.
    seen_scores: dict[str, float] = {}

    def remembered(g: Any) -> float:
        seen_scores.setdefault(g.key, toy_score(g))
        return seen_scores[g.key]

    assert drive(original, after, remembered) == drive(restored, after, remembered)


def registered() -> list[str]:
    """Every registered strategy."""
    return STRATEGIES.names()

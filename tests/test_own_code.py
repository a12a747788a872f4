"""A user's own space, evaluator and strategy (the files in examples/), registered at run time, through the same
reusable suites as the built-in ones; and what happens when one of them breaks its contract."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import archsearch
from archsearch import ArchsearchError, ChoiceSpace, register_space
from archsearch.spaces import SPACES
from archsearch.strategies import STRATEGIES
from archsearch.testing.space_suite import SpaceContractError, check_space
from archsearch.testing.strategy_suite import check_fresh_process, check_resume, check_valid_and_seeded

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str) -> dict[str, Any]:
    """Run ``examples/<name>.py`` as a module (its registrations happen, undone after the test by the conftest's
    registry fixture; its ``__main__`` part does not) and return its namespace."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"archsearch_example_{name}")


BUILT_IN_STRATEGIES = [s for s in STRATEGIES.names() if s != "one_plus_one"]


def test_the_example_space_passes_the_space_suite() -> None:
    example("own_space")
    check_space("conv_blocks", n=30)
    space = archsearch.get_space("conv_blocks")
    assert space.size() == 2**3 * 3**3 * 2**3 and len(list(space.enumerate())) == space.size()


@pytest.mark.parametrize("strategy", BUILT_IN_STRATEGIES)
def test_every_registered_strategy_searches_the_example_space(strategy: str) -> None:
    example("own_space")
    check_valid_and_seeded(strategy, n=12, space="conv_blocks")
    check_resume(strategy, before=8, after=8, space="conv_blocks")


def test_a_fresh_process_that_registers_the_space_gives_the_same_sequences() -> None:
    example("own_space")
    strategies = ["evolution", "bayes", "reinforce"]
    check_fresh_process(strategies, n=10, space="conv_blocks", setup=str(EXAMPLES / "own_space.py"))


def test_the_example_space_is_searched_stored_and_resumed_like_a_built_in_one(tmp_path: Path) -> None:
    example("own_space")
    options = {"evaluator_options": {"epochs": 1, "subset": 200}, "seed": 3}
    first = archsearch.search(space="conv_blocks", strategy="evolution", budget=2, out=tmp_path, **options)
    resumed = archsearch.search(budget=4, out=tmp_path, resume=True)
    assert first.trials == 2 and resumed.trials == 4
    assert resumed.winner is not None and resumed.winner.genotype.space == "conv_blocks"
    view = archsearch.api.show(tmp_path)
    assert {t.key for t in view.result.best} == {t.key for t in resumed.best}
    # the command line reads the space's own text once it is registered
    g = resumed.winner.genotype
    (record,) = archsearch.api.cost([str(g)], space="conv_blocks", input_shape=(1, 8, 8), latency=False)
    assert record.arch == str(g) and record.params > 0
    # the report draws the space's networks as it lays them out (its decisions, one box each), as for a built-in one
    page = Path(archsearch.report(tmp_path).path).read_text()
    assert all(f"{d.name}: {d.value}" in page for d in archsearch.get_space("conv_blocks").decisions(g))


def test_a_space_that_recognises_its_text_is_found_without_being_named() -> None:
    @register_space
    class Widths(ChoiceSpace):
        name = "widths_only"
        choices = {"width": (8, 16)}  # noqa: RUF012 - a space's table, as in the examples
        text_example = "a widths_only 'w=8'"

        @classmethod
        def recognizes(cls, text: str) -> bool:
            return text.strip().startswith("w=")

        def parse(self, text: str) -> Any:
            return self.make(width=int(text.strip()[2:]))

        def build_network(self, genotype: Any, in_channels: int, num_classes: int, input_size: int,
                          **options: Any) -> torch.nn.Module:  # fmt: skip
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))

    space, genotype = archsearch.parse_arch("w=16")
    assert space.name == "widths_only" and genotype["width"] == 16
    with pytest.raises(ArchsearchError, match="a widths_only 'w=8'"):
        archsearch.parse_arch("nothing any space reads")


def test_the_example_strategy_passes_the_strategy_suite_on_two_spaces() -> None:
    example("own_space")
    example("own_strategy")
    for space in ("nb201", "conv_blocks"):
        check_valid_and_seeded("one_plus_one", n=15, space=space)
        check_resume("one_plus_one", before=10, after=10, space=space)
    check_fresh_process("one_plus_one", n=10, setup=str(EXAMPLES / "own_strategy.py"))


def test_the_example_evaluator_is_named_like_a_built_in_one_and_gets_its_options(tmp_path: Path) -> None:
    example("own_evaluator")
    result = archsearch.search(space="nb201", strategy="random", budget=2, evaluator="quick_digits",
                               evaluator_options={"steps": 3}, out=tmp_path, seed=2)  # fmt: skip
    assert result.trials == 2 and result.config["evaluator"] == "quick_digits"
    assert result.config["evaluator_options"] == {"steps": 3, "seed": 2}  # it takes seed, so the search's is passed
    assert all(0 <= t.metrics["val_acc"] <= 100 and t.metrics["params"] > 0 for t in result.best)


def test_an_evaluator_function_that_returns_no_metrics_fails_its_trials_with_a_clear_error(tmp_path: Path) -> None:
    @archsearch.register_evaluator(name="broken_metrics")
    def broken(genotype: Any, space: Any) -> Any:
        return "fast"

    result = archsearch.search(space="nb201", strategy="random", budget=2, evaluator="broken_metrics", out=tmp_path)
    assert result.winner is None and "must return a dict of metric name -> number" in result.failures[0][0]


def test_a_space_that_breaks_the_contract_is_named_with_the_rule() -> None:
    @register_space
    class NoRoundTrip(ChoiceSpace):
        name = "no_round_trip"
        choices = {"a": (1, 2), "b": (3, 4)}  # noqa: RUF012

        def build_network(self, genotype: Any, in_channels: int, num_classes: int, input_size: int, **o: Any) -> Any:
            return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))

        def mutate(self, genotype: Any, rng: np.random.Generator) -> Any:
            return genotype  # breaks "mutate never returns the parent"

    with pytest.raises(SpaceContractError, match=r"breaks the rule .operators.*mutate returned the parent"):
        check_space(NoRoundTrip(), n=5)

    @register_space
    class WrongOutput(ChoiceSpace):
        name = "wrong_output"
        choices = {"a": (1, 2)}  # noqa: RUF012

        def build_network(self, genotype: Any, in_channels: int, num_classes: int, input_size: int, **o: Any) -> Any:
            return torch.nn.Flatten()

    with pytest.raises(SpaceContractError, match=r"breaks the rule .networks.*output shape"):
        check_space(WrongOutput(), n=2)


def test_registering_something_that_is_not_a_space_or_strategy_is_refused() -> None:
    with pytest.raises(ArchsearchError, match=r"subclass of archsearch\.Space"):
        register_space(dict)  # type: ignore[arg-type]
    with pytest.raises(ArchsearchError, match="already registered"):
        register_space(type(archsearch.get_space("darts")), name="nb201")
    with pytest.raises(ArchsearchError, match=r"subclass of archsearch\.Strategy"):
        archsearch.register_strategy(object)  # type: ignore[arg-type]
    with pytest.raises(ArchsearchError, match="an Evaluator subclass or a function"):
        archsearch.register_evaluator(3)
    assert "dict" not in SPACES


def test_a_strategy_that_asks_for_an_invalid_genotype_stops_the_search_with_one_error(tmp_path: Path) -> None:
    class Liar(archsearch.Strategy):
        name = "liar_test"

        def ask(self, n: int = 1) -> list[Any]:
            return [archsearch.get_space("darts").sample(self.rng)]  # a DARTS genotype for an NB201 search

        def tell(self, trials: Any) -> None:
            pass

    archsearch.register_strategy(Liar)
    with pytest.raises(ArchsearchError, match="strategy 'liar_test' asked for a genotype that is not in space 'nb201'"):
        archsearch.search(space="nb201", strategy="liar_test", budget=2, out=tmp_path)
    with pytest.raises(AssertionError, match="liar_test asked for a genotype not in space 'nb201'"):
        check_valid_and_seeded("liar_test", n=2)

"""Every registered one-shot method on every space with a supernet, through the reusable method suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.oneshot import METHODS, SUPERNETS, OneShotMethod, supports
from archsearch.oneshot.block_supernets import BlockSupernet
from archsearch.testing.oneshot_suite import check_defaults, check_derives_a_valid_genotype, check_resume_is_identical

CASES = [(m, s) for m in METHODS.names() for s in SUPERNETS.names() if supports(m, s)]


def _variant_on_blocks(method: str, space: str) -> bool:
    """A method variant (a subclass of another method: darts2 and betadarts of darts) on a block supernet. A variant
    keeps its parent's state and runs the supernet as its parent does (all blocks mixed); only its architecture step
    differs, and that step's resume is checked on the cell supernets. So on a block supernet, where one DARTS step
    runs all 252 of the mobile supernet's blocks, it derives (one epoch) beside its parent's resume check."""
    parent = METHODS.get(method).__mro__[1]
    return parent is not OneShotMethod and issubclass(SUPERNETS.get(space), BlockSupernet)


@pytest.mark.parametrize(("method", "space"), CASES)
def test_derives_a_valid_genotype_and_resumes_identically(method: str, space: str, tmp_path: Path) -> None:
    if _variant_on_blocks(method, space):
        check_derives_a_valid_genotype(method, space, tmp_path)
        return
    # one uninterrupted run serves both checks (check_derives_a_valid_genotype's on its genotype): the suite's time
    # is its runs
    check_resume_is_identical(method, space, tmp_path)


def test_every_parent_of_a_variant_resumes_on_the_block_supernets() -> None:
    checked = {(m, s) for m, s in CASES if not _variant_on_blocks(m, s)}
    for method, space in CASES:
        if _variant_on_blocks(method, space):
            assert (METHODS.get(method).__mro__[1].name, space) in checked, (method, space)
    assert any(_variant_on_blocks(m, s) for m, s in CASES) and ("darts2", "darts") in checked


def test_one_epoch_derives_a_valid_genotype(tmp_path: Path) -> None:
    check_derives_a_valid_genotype("darts", "nb201", tmp_path)


@pytest.mark.parametrize("method", METHODS.names())
def test_runs_with_its_declared_defaults(method: str, tmp_path: Path) -> None:
    check_defaults(method, "nb201", tmp_path)

"""Every registered one-shot method on every space with a supernet, through the reusable method suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.oneshot import METHODS, SUPERNETS, supports
from archsearch.testing.oneshot_suite import check_defaults, check_derives_a_valid_genotype, check_resume_is_identical

CASES = [(m, s) for m in METHODS.names() for s in SUPERNETS.names() if supports(m, s)]


@pytest.mark.parametrize(("method", "space"), CASES)
def test_derives_a_valid_genotype_and_resumes_identically(method: str, space: str, tmp_path: Path) -> None:
    # one uninterrupted run serves both checks (check_derives_a_valid_genotype's on its genotype): the suite's time
    # is its runs, and the mobile supernet's DARTS step runs all 252 of its blocks
    check_resume_is_identical(method, space, tmp_path)


def test_one_epoch_derives_a_valid_genotype(tmp_path: Path) -> None:
    check_derives_a_valid_genotype("darts", "nb201", tmp_path)


@pytest.mark.parametrize("method", METHODS.names())
def test_runs_with_its_declared_defaults(method: str, tmp_path: Path) -> None:
    check_defaults(method, "nb201", tmp_path)

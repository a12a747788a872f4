"""Every registered one-shot method on every space with a supernet, through the reusable method suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from archsearch.oneshot import METHODS, SUPERNETS, supports
from archsearch.testing.oneshot_suite import check_defaults, check_derives_a_valid_genotype, check_resume_is_identical

CASES = [(m, s) for m in METHODS.names() for s in SUPERNETS.names() if supports(m, s)]


@pytest.mark.parametrize(("method", "space"), CASES)
def test_derives_a_valid_genotype(method: str, space: str, tmp_path: Path) -> None:
    check_derives_a_valid_genotype(method, space, tmp_path)


@pytest.mark.parametrize(("method", "space"), CASES)
def test_resume_is_identical(method: str, space: str, tmp_path: Path) -> None:
    check_resume_is_identical(method, space, tmp_path)


@pytest.mark.parametrize("method", METHODS.names())
def test_runs_with_its_declared_defaults(method: str, tmp_path: Path) -> None:
    check_defaults(method, "nb201", tmp_path)

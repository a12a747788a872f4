"""Reusable checks for contributors: every space (and later strategy) gets the same property tests."""

from archsearch.testing.space_suite import check_builds, check_operators, check_roundtrip

__all__ = ["check_builds", "check_operators", "check_roundtrip"]

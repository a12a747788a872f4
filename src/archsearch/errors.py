"""Errors archsearch raises: each names what is wrong and what is allowed."""

from __future__ import annotations


class ArchsearchError(Exception):
    """Base class of every error archsearch raises on purpose (bad input, bad config)."""


class GenotypeError(ArchsearchError, ValueError):
    """A genotype (or its text / JSON form) is malformed; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class RegistryError(ArchsearchError, KeyError):
    """A name is not registered, or is registered twice."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class BuildError(ArchsearchError, ValueError):
    """A network or supernet cannot be built with the options given (too few cells, channels that do not split)."""


class OptionError(ArchsearchError, ValueError):
    """An option's value is outside what it allows (the message names the option and the allowed values)."""

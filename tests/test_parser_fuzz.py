"""Fuzzing every space's architecture parser with Hypothesis: random text and near-valid mutations of valid
genotypes' text and JSON forms. Every input either parses to a genotype that validates and round-trips through its
text and JSON forms, or is refused with the spaces' own error type (GenotypeError); never another exception."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsearch.errors import GenotypeError
from archsearch.spaces import SPACES, genotype_from_json, get_space, parse_arch

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = SPACES.names()


def _check(space: Any, parse: Any, text: Any) -> None:
    """``parse(text)`` gives a genotype that round-trips, or raises GenotypeError."""
    try:
        genotype = parse(text)
    except GenotypeError:
        return
    if isinstance(genotype, tuple):  # parse_arch returns (space, genotype)
        space, genotype = genotype
    assert space.validate(genotype) == genotype
    assert space.parse(str(genotype)) == genotype
    again = space.from_json(json.loads(json.dumps(genotype.to_json())))
    assert again == genotype and again.key == genotype.key


def _valid_text(name: str, seed: int) -> str:
    space = get_space(name)
    return str(space.sample(np.random.default_rng(seed)))


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (kind, position, piece) edits: delete, insert, replace or duplicate a slice."""
    for kind, pos, piece in edits:
        i = pos % (len(text) + 1)
        if kind == 0:
            text = text[:i] + text[i + 1 :]
        elif kind == 1:
            text = text[:i] + piece + text[i:]
        elif kind == 2:
            text = text[:i] + piece + text[i + len(piece) :]
        else:
            text = text[:i] + text[i : i + 5] + text[i:]
    return text


ALPHABET = st.sampled_from(list("|~+0123456789-_,:()[]{}'\" \n") + ["none", "skip_connect", "sep_conv_3x3", "add"])
EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400), ALPHABET), min_size=1, max_size=4)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text(name: str, text: str) -> None:
    space = get_space(name)
    _check(space, space.parse, text)


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_through_the_command_lines_reader(text: str) -> None:
    _check(None, parse_arch, text)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(seed=st.integers(0, 10_000), edits=EDITS)
def test_near_valid_text(name: str, seed: int, edits: list[tuple[int, int, str]]) -> None:
    space = get_space(name)
    text = _valid_text(name, seed)
    _check(space, space.parse, text)  # the unmutated text itself parses
    _check(space, space.parse, _mutate(text, edits))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 30) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(seed=st.integers(0, 10_000), pick=st.integers(0, 10_000), value=JSON_VALUES, drop=st.booleans())
def test_near_valid_json(name: str, seed: int, pick: int, value: Any, drop: bool) -> None:
    space = get_space(name)
    obj = space.sample(np.random.default_rng(seed)).to_json()
    paths = [p for p in _paths(obj) if p]
    path = paths[pick % len(paths)]
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    _check(space, lambda o: genotype_from_json(o, space), obj)
    _check(space, space.parse, json.dumps(obj))

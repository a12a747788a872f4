"""Tests generated from the space registry: every registered space passes the same property checks."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from archsearch.spaces import SPACES, get_space
from archsearch.testing import check_builds, check_operators, check_roundtrip

NAMES = SPACES.names()


@pytest.mark.parametrize("name", NAMES)
def test_roundtrip(name: str) -> None:
    check_roundtrip(get_space(name), n=200, seed=1)


@pytest.mark.parametrize("name", NAMES)
def test_mutate_crossover_neighbors_stay_valid(name: str) -> None:
    check_operators(get_space(name), n=200, seed=2)


@pytest.mark.parametrize("name", NAMES)
def test_sampled_genotypes_build_forward_backward(name: str) -> None:
    """60 networks per space on two input shapes: every choice of every space is drawn many times over (mobile, the
    richest, has 12 block kinds per layer and a searched depth per stage), where 200 took three times as long."""
    check_builds(get_space(name), n=60, seed=3)


@pytest.mark.parametrize("name", NAMES)
def test_sampling_is_seeded(name: str) -> None:
    space = get_space(name)

    def keys(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [space.sample(rng).key for _ in range(20)]

    assert keys(7) == keys(7)
    assert keys(7) != keys(8)


def test_keys_are_stable_across_processes() -> None:
    script = (
        "import json, numpy as np\n"
        "from archsearch.spaces import SPACES, get_space\n"
        "out = {}\n"
        "for n in SPACES.names():\n"
        "    rng = np.random.default_rng(11); sp = get_space(n)\n"
        "    out[n] = [sp.sample(rng).key for _ in range(30)]\n"
        "print(json.dumps(out))\n"
    )
    runs = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(res.stdout))
    assert runs[0] == runs[1]
    here = {
        n: [get_space(n).sample(r).key for _ in range(30)] for n, r in ((n, np.random.default_rng(11)) for n in NAMES)
    }
    assert here == runs[0]


def test_registry_rejects_duplicates_and_names_choices() -> None:
    from archsearch.errors import RegistryError
    from archsearch.spaces import DartsSpace, NB201Space

    with pytest.raises(RegistryError, match="already registered"):
        SPACES.add("nb201", DartsSpace)
    SPACES.add("nb201", NB201Space)  # the same class again is no conflict (a module imported twice)
    with pytest.raises(RegistryError, match="allowed: nb201, darts, chain"):
        get_space("resnet")

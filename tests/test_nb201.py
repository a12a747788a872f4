import csv

import numpy as np
import pytest

from archsearch.costs import count_params
from archsearch.errors import GenotypeError
from archsearch.spaces import NB201Genotype, NB201Space

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SPARSE = "|none~0|+|none~0|skip_connect~1|+|skip_connect~0|skip_connect~1|none~2|"


def test_string_parses_and_prints_exactly() -> None:
    g = NB201Genotype.from_string(EXAMPLE)
    assert str(g) == EXAMPLE and g.key == EXAMPLE
    assert g.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert g.to_json() == {"space": "nb201", "arch": EXAMPLE}


def test_enumerates_all_15625_distinct_cells() -> None:
    space = NB201Space()
    keys = {g.key for g in space.enumerate()}
    assert len(keys) == space.size() == 15625


@pytest.mark.parametrize(
    ("arch", "params"), [(ALL_CONV, 1_531_546), (SPARSE, 73_306)], ids=["all_conv3x3", "none_skip"]
)
def test_published_parameter_counts(arch: str, params: int) -> None:
    model = NB201Space().build(NB201Genotype.from_string(arch), in_channels=3, num_classes=10, input_size=32)
    assert count_params(model) == params


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|conv_7x7~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "node 2 edge 1|edge 1->2",
        ),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "arch"),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "node 2 edge 1",
        ),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~3|",
            "node 3 edge 2",
        ),
        (
            "|nor_conv_3x3 0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "node 1 edge 0",
        ),
        ("nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 1"),
    ],
    ids=[
        "unknown_op",
        "wrong_edge_count",
        "missing_node",
        "input_out_of_order",
        "input_from_later_node",
        "missing_tilde",
        "missing_bar",
    ],
)
def test_malformed_strings_name_the_field(text: str, field: str) -> None:
    with pytest.raises(GenotypeError) as info:
        NB201Genotype.from_string(text)
    assert info.value.field in field.split("|")


def test_malformed_genotypes() -> None:
    with pytest.raises(GenotypeError, match="exactly 6 edges"):
        NB201Genotype(("none",) * 5)
    with pytest.raises(GenotypeError, match=r"edge 0->1: unknown op 'relu'"):
        NB201Genotype(("relu",) + ("none",) * 5)
    with pytest.raises(GenotypeError, match="missing field"):
        NB201Space().from_json({"space": "nb201"})
    with pytest.raises(GenotypeError, match="unknown field"):
        NB201Space().from_json({"space": "nb201", "arch": EXAMPLE, "extra": 1})


def test_encoding_is_one_hot_per_edge() -> None:
    enc = NB201Space().encode(NB201Genotype.from_string(EXAMPLE))
    assert enc.shape == (30,) and enc.sum() == 6 and np.all(enc.reshape(6, 5).sum(1) == 1)


def test_every_row_of_the_benchmark_table_round_trips(nb201_table) -> None:
    path = nb201_table
    with path.open() as f:
        archs = [row["arch"] for row in csv.DictReader(f)]
    assert len(archs) == 15625
    assert all(str(NB201Genotype.from_string(a)) == a for a in archs)
    assert set(archs) == {g.key for g in NB201Space().enumerate()}

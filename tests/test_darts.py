import numpy as np
import pytest

from archsearch.costs import count_params
from archsearch.errors import GenotypeError
from archsearch.spaces import DartsGenotype, DartsSpace, published
from archsearch.spaces.darts_genotypes import PUBLISHED

# Parameters at 36 channels, 20 cells, CIFAR-10, auxiliary head built but not counted (DARTS's convention).
# DARTS_V2's figure is the one DARTS's train.py logs; PC-DARTS and P-DARTS report 3.6M and 3.4M.
PARAMS = {"DARTS_V1": 3_169_414, "DARTS_V2": 3_349_342, "PC_DARTS": 3_634_678, "PDARTS": 3_433_798}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_genotypes_parameter_counts(name: str) -> None:
    model = DartsSpace().build(published(name), in_channels=3, num_classes=10, input_size=32, auxiliary=True)
    assert model.auxiliary_head is not None
    assert count_params(model) == PARAMS[name]


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_darts_form_round_trips(name: str) -> None:
    g = published(name)
    assert DartsGenotype.from_string(str(g)) == g
    assert str(g).startswith("Genotype(normal=[(")


def test_reads_range_concat_and_positional_form() -> None:
    g = DartsGenotype.from_string(
        "Genotype([('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], range(2, 3), "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"
    )
    assert g.normal_concat == (2,)


def _relabel(g: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
    """A random isomorphic copy: intermediate nodes renumbered in another topological order, pairs swapped."""
    cells = {}
    for cell in ("normal", "reduce"):
        pairs = getattr(g, cell)
        nodes = [pairs[2 * s : 2 * s + 2] for s in range(4)]
        deps = {s: {i - 2 for _, i in nodes[s] if i >= 2} for s in range(4)}
        order: list[int] = []
        while len(order) < 4:
            ready = [s for s in range(4) if s not in order and deps[s] <= set(order)]
            order.append(ready[int(rng.integers(len(ready)))])
        new = {0: 0, 1: 1, **{2 + old: 2 + pos for pos, old in enumerate(order)}}
        out = []
        for old in order:
            pair = [(op, new[i]) for op, i in nodes[old]]
            if rng.random() < 0.5:
                pair.reverse()
            out += pair
        cells[cell] = tuple(out)
    return DartsGenotype(cells["normal"], (2, 3, 4, 5), cells["reduce"], (2, 3, 4, 5))


def test_isomorphic_cells_have_equal_keys_on_300_random_relabelings() -> None:
    space, rng = DartsSpace(), np.random.default_rng(0)
    changed = 0
    for _ in range(300):
        g = space.sample(rng)
        h = _relabel(g, rng)
        changed += h != g
        assert h.key == g.key
        assert space.mutate(g, rng).key != g.key
    assert changed > 150  # the relabelings really did change the field order most of the time


def test_decisions_have_fixed_choices_per_name() -> None:
    space, rng = DartsSpace(), np.random.default_rng(0)
    seen: dict[str, tuple] = {}
    for _ in range(50):
        for d in space.decisions(space.sample(rng)):
            assert seen.setdefault(d.name, d.choices) == d.choices


V2 = published("DARTS_V2")


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"normal": (("conv_9x9", 0),) + V2.normal[1:]}, "normal[0] (node 2)", "unknown op"),
        ({"normal": (("none", 0),) + V2.normal[1:]}, "normal[0] (node 2)", "never part of a final"),
        ({"normal": V2.normal[:7]}, "normal", "even"),
        ({"normal": V2.normal[:6] + (("sep_conv_3x3", 6), ("sep_conv_3x3", 0))}, "normal[6] (node 5)", "earlier node"),
        (
            {"normal": V2.normal[:2] + (("sep_conv_3x3", 3), ("sep_conv_3x3", 0)) + V2.normal[4:]},
            "normal[2] (node 3)",
            "earlier node",
        ),
        (
            {"normal": V2.normal[:2] + (("sep_conv_3x3", 1), ("skip_connect", 1)) + V2.normal[4:]},
            "normal node 3",
            "must differ",
        ),
        (
            {"normal": V2.normal[:2] + (("sep_conv_3x3", -1), ("skip_connect", 1)) + V2.normal[4:]},
            "normal[2] (node 3)",
            "earlier node",
        ),
        ({"normal_concat": (2, 3, 4, 9)}, "normal_concat", "out of range"),
        ({"reduce_concat": (2, 2, 3, 4, 5)}, "reduce_concat", "twice"),
        ({"reduce_concat": (2, 3, 4)}, "reduce_concat", "neither concatenated nor used"),
    ],
    ids=[
        "unknown_op",
        "none_op",
        "odd_count",
        "later_node",
        "cycle_self",
        "same_input",
        "negative",
        "concat_range",
        "concat_twice",
        "dead_node",
    ],
)
def test_malformed_genotypes_name_the_field(kwargs: dict, field: str, message: str) -> None:
    fields = {
        "normal": V2.normal,
        "normal_concat": V2.normal_concat,
        "reduce": V2.reduce,
        "reduce_concat": V2.reduce_concat,
        **kwargs,
    }
    with pytest.raises(GenotypeError, match=message) as info:
        DartsGenotype(**fields)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Genotype(normal=[('sep_conv_3x3', 0)", "not a Genotype"),
        ("Genome(normal=[])", "must be of the form"),
        ("Genotype(normal=__import__('os').getcwd(), normal_concat=[2], reduce=[], reduce_concat=[2])", "literal"),
        ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], reduce=[])", "missing"),
        ("Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2], extra=1)", "unknown field"),
    ],
)
def test_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message):
        DartsGenotype.from_string(text)


def test_space_validate_requires_four_nodes_and_full_concat() -> None:
    small = DartsGenotype(
        (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)), (2,), (("max_pool_3x3", 0), ("max_pool_3x3", 1)), (2,)
    )
    with pytest.raises(GenotypeError, match="4 nodes"):
        DartsSpace().validate(small)
    with pytest.raises(GenotypeError, match="unknown 'DARTS_V9'"):
        published("DARTS_V9")


def test_auxiliary_head_and_drop_path_in_training() -> None:
    import torch

    model = DartsSpace().build(V2, in_channels=1, input_size=28, channels=8, cells=5, auxiliary=True, drop_path=0.3)
    model.train()
    logits, aux = model(torch.randn(2, 1, 28, 28))
    assert logits.shape == aux.shape == (2, 10)
    model.eval()
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)

import numpy as np
import pytest
import torch

from archsearch.errors import GenotypeError
from archsearch.spaces import ChainGenotype, ChainLayer, ChainSpace

TEXT = "concat: conv3x3/32/s1 | maxpool/s2 | conv5x5/64/s1 +0 | avgpool/s2 | conv1x1/16/s1 +0,2"


def test_text_form_round_trips_and_builds_with_dense_concat() -> None:
    space = ChainSpace()
    g = space.parse(TEXT)
    assert str(g) == TEXT and g.layers[4].inputs == (0, 2)
    model = space.build(g, in_channels=1, num_classes=7, input_size=28, seed=0)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 7)
    # concat: layer 4 reads 64 (main) + 32 (layer 0) + 64 (layer 2) channels
    assert model.layers[4].op[0].in_channels == 64 + 32 + 64


def test_add_merge_projects_and_resamples_skips() -> None:
    g = ChainSpace().parse("add: conv3x3/16/s2 | conv3x3/32/s2 | conv3x3/64/s1 +0")
    model = ChainSpace().build(g, in_channels=3, input_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.resamplers[2][0].project.in_channels == 16
    assert model.resamplers[2][0].project.out_channels == 32


def test_many_downsamplings_still_build_on_tiny_inputs() -> None:
    g = ChainSpace().parse("add: " + " | ".join(["conv3x3/16/s2"] * 8))
    assert ChainSpace().build(g, in_channels=1, input_size=8)(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def _layer(**kw) -> ChainLayer:
    base = {"op": "conv", "kernel": 3, "channels": 16, "stride": 1, "inputs": ()}
    return ChainLayer(**{**base, **kw})


@pytest.mark.parametrize(
    ("layer", "field", "message"),
    [
        (_layer(op="lstm"), "layers[2].op", "unknown op"),
        (_layer(kernel=4), "layers[2].kernel", "odd"),
        (_layer(op="max_pool", kernel=3, channels=16), "layers[2].channels", "keeps its channels"),
        (_layer(op="avg_pool", kernel=5, channels=0), "layers[2].kernel", "pool's kernel"),
        (_layer(stride=3), "layers[2].stride", "1 or 2"),
        (_layer(inputs=(1,)), "layers[2].inputs", "already the main input"),
        (_layer(inputs=(2,)), "layers[2].inputs", "not an earlier layer"),
        (_layer(inputs=(5,)), "layers[2].inputs", "not an earlier layer"),
        (_layer(inputs=(-1,)), "layers[2].inputs", "not an earlier layer"),
        (_layer(channels=-8), "layers[2].channels", "positive"),
    ],
    ids=[
        "op",
        "kernel",
        "pool_channels",
        "pool_kernel",
        "stride",
        "main_input",
        "self_cycle",
        "later_layer",
        "negative_index",
        "channels",
    ],
)
def test_malformed_layers_name_the_field(layer: ChainLayer, field: str, message: str) -> None:
    with pytest.raises(GenotypeError, match=message) as info:
        ChainGenotype((_layer(), _layer(), layer), "add")
    assert info.value.field == field


def test_space_validate_rejects_out_of_range_values() -> None:
    space = ChainSpace()
    with pytest.raises(GenotypeError, match=r"2 layers out of range \(allowed: 3..20\)"):
        space.validate(ChainGenotype((_layer(), _layer()), "add"))
    with pytest.raises(GenotypeError, match="21 layers"):
        space.validate(ChainGenotype(tuple(_layer() for _ in range(21)), "add"))
    with pytest.raises(GenotypeError, match=r"layers\[1\].channels: 1000 not allowed"):
        space.validate(ChainGenotype((_layer(), _layer(channels=1000), _layer()), "add"))
    with pytest.raises(GenotypeError, match="merge"):
        ChainGenotype((_layer(),) * 3, "multiply")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("conv3x3/16/s1 | conv3x3/16/s1", "chain string"),
        ("add: conv3x3/16/s1 | dense/s1 | conv3x3/16/s1", "layers[1]"),
        ("add: conv3x5/16/s1 | conv3x3/16/s1 | conv3x3/16/s1", "layers[0].kernel"),
    ],
)
def test_malformed_strings(text: str, field: str) -> None:
    with pytest.raises(GenotypeError) as info:
        ChainGenotype.from_string(text)
    assert info.value.field == field


def test_json_errors_name_the_field() -> None:
    space = ChainSpace()
    good = space.parse(TEXT).to_json()
    bad = {**good, "layers": [{**good["layers"][0], "kernel": "three"}, *good["layers"][1:]]}
    with pytest.raises(GenotypeError, match=r"layers\[0\].kernel"):
        space.from_json(bad)
    with pytest.raises(GenotypeError, match=r"layers\[0\]: must be an object"):
        space.from_json({**good, "layers": [{"op": "conv"}]})


def test_remove_and_insert_renumber_skips() -> None:
    space = ChainSpace()
    g = space.parse("add: conv3x3/16/s1 | conv3x3/16/s1 | conv3x3/16/s1 +0 | conv3x3/16/s1 +0,1")
    removed = space._remove(g, 0)
    assert [la.inputs for la in removed.layers] == [(), (), (0,)]  # old 3 (+0,1) -> new 2 (+0): 0 dropped, 1 -> 0
    inserted = space._insert(g, 1)
    assert [la.inputs for la in inserted.layers] == [(), (), (), (0,), (0, 2)]


def test_depth_decision_controls_the_number_of_layer_decisions() -> None:
    space = ChainSpace()
    g = space.from_decisions(
        {
            "depth": 3,
            "merge": "add",
            **{f"layer{i}.op": "conv" for i in range(3)},
            **{f"layer{i}.kernel": 3 for i in range(3)},
            **{f"layer{i}.channels": 16 for i in range(3)},
            **{f"layer{i}.stride": 1 for i in range(3)},
            "layer2.skip0": 1,
        }
    )
    assert len(g.layers) == 3 and g.layers[2].inputs == (0,)
    with pytest.raises(GenotypeError, match=r"layer1\.kernel: decision missing"):
        space.from_decisions(
            {
                "depth": 3,
                "merge": "add",
                "layer0.op": "pool",
                "layer0.pool": "max",
                "layer0.stride": 1,
                "layer1.op": "conv",
            }
        )
    lengths = {len(space.sample(np.random.default_rng(s)).layers) for s in range(200)}
    assert min(lengths) == 3 and max(lengths) == 20

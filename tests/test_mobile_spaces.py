"""The macro (NAS-Bench-Macro) and mobile spaces: the benchmark's parameter and FLOP counts, canonical keys, the
text forms, input sizes, and the errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.costs import count_flops, count_params
from archsearch.errors import GenotypeError
from archsearch.spaces import get_space, guess_space, parse_arch


def benchmark_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """NAS-Bench-Macro's ``count_FLOPs`` rule, written out independently: every conv in module order (its spatial
    size carried from the previous conv), in*out*h*w/groups*k*k, plus in*out for every linear layer."""
    _, w, h = input_shape
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = (w + 2 * m.padding[0] - m.kernel_size[0]) // m.stride[0] + 1
            h = (h + 2 * m.padding[1] - m.kernel_size[1]) // m.stride[1] + 1
            total += m.in_channels * m.out_channels * w * h // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
    return total


def mb_params(inp: int, oup: int, t: int, k: int) -> int:
    """An inverted residual's parameters: expand conv+BN, depthwise conv+BN, project conv+BN."""
    hidden = inp * t
    return inp * hidden + 2 * hidden + hidden * k * k + 2 * hidden + hidden * oup + 2 * oup


def test_the_stated_macro_networks_have_the_benchmarks_counts() -> None:
    space = get_space("macro")
    stem, head = 3 * 32 * 9 + 64, 256 * 1280 + 2 * 1280 + 1280 * 10 + 10
    downsample = sum(c * 2 * c + 4 * c for c in (32, 64, 128))
    identity = space.build(space.parse("00000000"), 3, 10, 32)
    assert count_params(identity) == stem + downsample + head == 387_882
    assert count_flops(identity, (3, 32, 32)) == 7_713_280
    all_mb6 = space.build(space.parse("22222222"), 3, 10, 32)
    firsts = sum(mb_params(c, 2 * c, 6, 5) for c in (32, 64, 128))
    rests = mb_params(64, 64, 6, 5) + 2 * mb_params(128, 128, 6, 5) + 2 * mb_params(256, 256, 6, 5)
    assert count_params(all_mb6) == stem + firsts + rests + head == 2_932_586
    assert count_flops(all_mb6, (3, 32, 32)) == 105_660_928
    assert count_params(space.build(space.parse("11111111"), 3, 10, 32)) == 1_588_874


def test_every_counted_macro_network_matches_the_benchmarks_counting_rule() -> None:
    space, rng = get_space("macro"), np.random.default_rng(0)
    for _ in range(25):
        g = space.sample(rng)
        model = space.build(g, 3, 10, 32)
        assert count_flops(model, (3, 32, 32)) == benchmark_flops(model, (3, 32, 32)), str(g)


def test_macro_keys_are_the_benchmarks_stored_form() -> None:
    space = get_space("macro")
    assert space.size() == 6561 and len(list(space.enumerate())) == 6561
    assert len({g.key for g in space.enumerate()}) == 9 * 21 * 21  # identities moved to the end of each stage
    a, b = space.parse("00001000"), space.parse("00010000")
    assert a.key == b.key == "00010000" and str(a) == "00001000"
    assert count_params(space.build(a)) == count_params(space.build(b))
    assert space.parse(json.dumps(a.to_json())) == a
    assert guess_space("02012100") == "macro" and parse_arch("02012100")[1] == space.parse("02012100")


@pytest.mark.parametrize("text", ["0201210", "020121003", "0201210x", "02012102 1", ""])
def test_a_malformed_macro_string_is_refused_with_the_rule(text: str) -> None:
    with pytest.raises(GenotypeError, match=r"expected 8 digits of 0 .identity., 1 .MB3-K3. or 2 .MB6-K5."):
        get_space("macro").parse(text)


def test_cost_reads_macro_strings_from_stdin(monkeypatch, capsys) -> None:
    from archsearch.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("00000000\n22222222\n"))
    assert main(["cost", "-", "--space", "macro", "--input-shape", "3,32,32", "--json", "--no-latency"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["arch"], r["params"], r["flops"]) for r in rows] == [
        ("00000000", 387_882, 7_713_280), ("22222222", 2_932_586, 105_660_928)]  # fmt: skip
    monkeypatch.setattr("sys.stdin", io.StringIO("0220\n"))
    assert main(["cost", "-", "--space", "macro"]) == 2
    assert "stdin:1: macro: expected 8 digits" in capsys.readouterr().err


@pytest.mark.parametrize(("shape", "final"), [((1, 28, 28), 4), ((3, 32, 32), 4), ((3, 224, 224), 7)])
def test_mobile_networks_fit_small_and_imagenet_inputs(shape: tuple[int, int, int], final: int) -> None:
    space = get_space("mobile")
    g = space.sample(np.random.default_rng(1))
    model = space.build(g, shape[0], 10, shape[1], width=0.25, head=64)
    seen: list[tuple[int, ...]] = []
    model.head.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    assert model(torch.randn(2, *shape)).shape == (2, 10)
    assert seen[0][-2:] == (final, final)


def test_the_width_multiplier_scales_mobile_channels_to_multiples_of_eight() -> None:
    space = get_space("mobile")
    g = space.sample(np.random.default_rng(2))
    _, full = space.network_call(g, 3, 10, 224)
    _, small = space.network_call(g, 3, 10, 32, width=0.35)
    assert [b.out_channels for b in full["blocks"]][-1] == 320 and full["stem_stride"] == 2
    assert all(b.out_channels % 8 == 0 for b in small["blocks"]) and small["stem_stride"] == 1
    assert count_params(space.build(g, 3, 10, 32, width=0.35)) < count_params(space.build(g, 3, 10, 224))


def test_mobile_text_and_decisions() -> None:
    space = get_space("mobile")
    g = space.parse("k3e3-k5e6se|k7e3-k3e6|k3e3-k3e3-k5e6|k3e6-k3e6|k5e3se-k5e3-k7e6-k7e6|k3e6")
    assert str(g) == g.key and space.parse(str(g)) == g and guess_space(str(g)) == "mobile"
    assert [len(s) for s in g.stages] == [2, 2, 3, 2, 4, 1]
    assert space.from_decisions(space.decisions(g)) == g
    with pytest.raises(GenotypeError, match=r"stage 0 layer 1.*cannot read 'k3x6'.*expected k<3\|5\|7>e<3\|6>"):
        space.parse("k3e3-k3x6|k7e3-k3e6|k3e3-k3e3|k3e6-k3e6|k5e3-k5e3|k3e6")
    with pytest.raises(GenotypeError, match=r"stages\[0\]\[1\].kernel: 4 is not allowed"):
        space.parse("k3e3-k4e6|k7e3-k3e6|k3e3-k3e3|k3e6-k3e6|k5e3-k5e3|k3e6")
    with pytest.raises(GenotypeError, match=r"depth 1 is not allowed .allowed: .2, 3, 4.."):
        space.parse("k3e3|k7e3-k3e6|k3e3-k3e3|k3e6-k3e6|k5e3-k5e3|k3e6")
    with pytest.raises(GenotypeError, match="the space has 6 stages, got 2"):
        space.parse("k3e3-k3e3|k3e6")


def test_a_stage_table_of_your_own() -> None:
    space = get_space("mobile", stages=[(16, 1, (1, 2)), (32, 2, (1,))])
    assert space.size() == (12 + 144) * 12
    g = space.sample(np.random.default_rng(0))
    assert space.build(g, 1, 10, 28, head=32)(torch.randn(1, 1, 28, 28)).shape == (1, 10)
    with pytest.raises(GenotypeError, match="stride 1/2"):
        get_space("mobile", stages=[(16, 3, (1,))])

"""Squeeze-and-excitation as one autograd node: the plain block's output and gradients, only where it applies."""

from __future__ import annotations

import pytest
import torch

from archsearch.nn import fused, native
from archsearch.nn.mobile import SqueezeExcite
from archsearch.nn.native import squeeze_excite as node
from archsearch.nn.native.squeeze_excite import squeeze_excite

CL = torch.channels_last
native.install()


@pytest.fixture(autouse=True)
def _small_batches_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node, "MIN_ELEMENTS", 1)  # test-sized batches; the threshold has its own test


def _block(C: int = 24) -> SqueezeExcite:
    torch.manual_seed(C)
    return SqueezeExcite(C, max(1, C // 4)).train()


def _batch(C: int, H: int, layout: torch.memory_format = CL) -> torch.Tensor:
    x = torch.randn(6, C, H, H, generator=torch.Generator().manual_seed(H)).contiguous(memory_format=layout)
    return x.requires_grad_()


def _plain(se: SqueezeExcite, x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(se.expand(se.act(se.reduce(se.pool(x)))))


@pytest.mark.parametrize("layout", [CL, torch.contiguous_format])
@pytest.mark.parametrize(("C", "H"), [(24, 7), (16, 4), (72, 3)])
def test_it_matches_the_plain_block(C: int, H: int, layout: torch.memory_format) -> None:
    se, x = _block(C), _batch(C, H, layout)
    out = squeeze_excite(se, x)
    assert out is not None and type(out.grad_fn).__name__ == "_SqueezeExciteBackward"
    ref = _plain(se, x)
    assert torch.allclose(out, ref, atol=1e-6)
    g = torch.randn_like(ref)
    inputs = (x, *se.parameters())
    ours, theirs = torch.autograd.grad(out, inputs, g), torch.autograd.grad(ref, inputs, g)
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), float((a - b).abs().max())
    assert ours[0].is_contiguous(memory_format=layout)  # the input's layout, so the layer before needs no copy


def test_frozen_weights_and_an_input_without_gradient() -> None:
    se = _block()
    se.reduce.weight.requires_grad_(False)
    x = _batch(24, 5).detach()
    out = squeeze_excite(se, x)
    assert out is not None
    grads = torch.autograd.grad(out.sum(), [p for p in se.parameters() if p.requires_grad])
    refs = torch.autograd.grad(_plain(se, x).sum(), [p for p in se.parameters() if p.requires_grad])
    for a, b in zip(grads, refs):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_it_runs_only_where_it_applies() -> None:
    se, x = _block(), _batch(24, 5)
    assert squeeze_excite(se, x) is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(node, "MIN_ELEMENTS", x.numel() + 1)
        assert squeeze_excite(se, x) is None  # a batch that stays in cache: the plain block is faster
    with torch.no_grad():
        assert squeeze_excite(se, x) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert squeeze_excite(se, x) is None
    assert squeeze_excite(se.eval(), x) is None
    se.train()
    with native.turned_off():
        assert squeeze_excite(se, x) is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHSEARCH_NATIVE", "0")
        assert squeeze_excite(se, x) is None  # the user's switch for PyTorch's own layers
    handle = se.act.register_forward_hook(lambda *_: None)
    assert squeeze_excite(se, x) is None  # a hook watches a layer: the block runs as itself
    handle.remove()
    assert type(se(x).grad_fn).__name__ == "_SqueezeExciteBackward"  # the module's own forward takes it
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fused, "training_squeeze", None)
        assert type(se(x).grad_fn).__name__ == "MulBackward0"


def test_a_double_backward_gives_the_plain_blocks_second_derivatives() -> None:
    se, x = _block(), _batch(24, 5)
    inputs = (x, *se.parameters())
    results = []
    for fn in (squeeze_excite, _plain):
        out = fn(se, x)
        first = torch.autograd.grad((out * out).sum(), inputs, create_graph=True)
        results.append(torch.autograd.grad(sum(g.sum() for g in first), inputs))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)

"""Tests generated from the op registry: every op builds and runs on 1x28x28 and 3x32x32 inputs."""

import pytest
import torch

from archsearch.errors import RegistryError
from archsearch.nn.ops import OPS, make_op


@pytest.mark.parametrize("name", OPS.names())
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("same_channels", [True, False])
def test_op_forward_backward(name: str, shape: tuple[int, int, int], stride: int, same_channels: bool) -> None:
    c, h, w = shape
    c_out = c if same_channels else 6
    if stride == 2 and name == "skip_connect" and c_out % 2:
        pytest.skip("a strided skip (FactorizedReduce) needs an even channel count")
    torch.manual_seed(0)
    op = make_op(name, c, c_out, stride)
    x = torch.randn(2, c, h, w, requires_grad=True)
    y = op(x)
    assert y.shape == (2, c_out, -(-h // stride), -(-w // stride))
    assert torch.isfinite(y).all()
    if name == "none":
        assert (y == 0).all()
    if y.requires_grad:
        y.square().mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
    else:
        assert name == "none", f"{name} output is cut off from the graph"


def test_op_registry_is_the_single_list_and_rejects_duplicates() -> None:
    assert set(OPS.names()) >= {
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
        "max_pool_3x3",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    }
    with pytest.raises(RegistryError, match="already registered"):
        OPS.add("sep_conv_3x3", lambda C_in, C_out, stride, affine=True: torch.nn.Identity())
    with pytest.raises(RegistryError, match="unknown op 'conv_9x9'"):
        make_op("conv_9x9", 4, 4, 1)


def test_factorized_reduce_matches_darts_on_even_sizes_and_works_on_odd() -> None:
    from archsearch.nn.ops import FactorizedReduce

    torch.manual_seed(0)
    fr = FactorizedReduce(4, 8).eval()
    x = torch.randn(2, 4, 8, 8)
    relu = torch.relu(x)
    darts = fr.bn(torch.cat([fr.conv_1(relu), fr.conv_2(relu[:, :, 1:, 1:])], dim=1))
    assert torch.allclose(fr(x), darts)
    assert fr(torch.randn(2, 4, 7, 7)).shape == (2, 8, 4, 4)

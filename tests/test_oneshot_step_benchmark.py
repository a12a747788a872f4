"""The step benchmark's ablation rows compute the same step: skipping ``none`` and differentiating only each step's
own parameters change the cost, not the result (so each row's gain is a saving, not a different computation)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "oneshot_step.py"


def _bench():
    spec = importlib.util.spec_from_file_location("oneshot_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ablation_rows_take_the_same_step() -> None:
    bench = _bench()
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g),
             torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g))  # fmt: skip
    states = []
    for skip_none, own in ((False, False), (False, True), (True, True)):
        torch.manual_seed(1)
        net = bench.NaiveNetwork(C=4, layers=3, skip_none=skip_none).double()
        step, _ = bench.naive_step_fn(net, own_grads_only=own)
        step(*(t.double() if t.is_floating_point() else t for t in batch))
        states.append({k: v.clone() for k, v in net.state_dict().items()})
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        for k in states[0]:
            torch.testing.assert_close(other[k], states[0][k], rtol=1e-9, atol=1e-12)

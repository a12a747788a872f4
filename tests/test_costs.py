import pytest
import torch
from torch import nn

from archsearch.costs import count_flops, count_params, measure, measure_latency, peak_memory_mb
from archsearch.errors import ArchsearchError
from archsearch.spaces import get_space
from archsearch.spaces.darts import published


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def test_flops_are_multiply_adds_of_convs_and_linears() -> None:
    # conv: 8 out x 3 in x 3 x 3 kernel x 32 x 32 positions; linear: 8 x 10
    assert count_flops(_net(), (3, 32, 32)) == 8 * 3 * 9 * 32 * 32 + 8 * 10


def test_params_exclude_auxiliary_by_name() -> None:
    class WithAux(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(4, 4)
            self.auxiliary_head = nn.Linear(4, 100)

    assert count_params(WithAux()) == 20
    assert count_params(WithAux(), exclude=()) == 20 + 500


def test_latency_restores_threads_and_training_mode() -> None:
    net = _net().train()
    before = torch.get_num_threads()
    ms = measure_latency(net, (3, 16, 16), batch_size=2, threads=1, warmup=1, runs=3)
    assert ms > 0 and torch.get_num_threads() == before and net.training
    with pytest.raises(ArchsearchError, match="runs >= 1"):
        measure_latency(net, (3, 16, 16), runs=0)


def test_peak_memory_grows_with_batch_and_training_and_leaves_the_model_alone() -> None:
    net = _net()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    fwd = peak_memory_mb(net, (3, 32, 32), batch_size=16, mode="forward")
    train = peak_memory_mb(net, (3, 32, 32), batch_size=16, mode="train")
    big = peak_memory_mb(net, (3, 32, 32), batch_size=64, mode="train")
    activation_mb = 16 * 8 * 32 * 32 * 4 / 2**20
    assert 0 < fwd < train < big
    assert train >= activation_mb
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ArchsearchError, match="'forward' or 'train'"):
        peak_memory_mb(net, (3, 8, 8), mode="eval")


def test_measure_reports_everything() -> None:
    cost = measure(_net(), (3, 16, 16), latency=True, memory=True, runs=2, memory_batch_size=4)
    record = cost.to_json()
    assert record["params"] == 8 * 27 + 16 + 90 and record["flops"] > 0
    assert record["latency_ms"] > 0 and record["train_peak_mb"] > record["forward_peak_mb"] > 0


def test_the_peak_only_tracker_reports_the_peak_pytorchs_memtracker_reports() -> None:
    from torch.distributed._tools.mem_tracker import MemTracker

    import archsearch.costs.metrics as metrics

    net = get_space("darts").build(published("DARTS_V2"), 1, 10, 16, channels=4, cells=3, seed=0)
    for mode in ("forward", "train"):
        ours = peak_memory_mb(net, (1, 16, 16), batch_size=8, mode=mode)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(metrics, "_peak_tracker", MemTracker)
            assert peak_memory_mb(net, (1, 16, 16), batch_size=8, mode=mode) == ours
    assert type(metrics._peak_tracker()).__name__ == "PeakTracker"  # this torch has the method it replaces

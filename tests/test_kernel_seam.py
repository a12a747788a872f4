"""Where the compiled kernels come in: never at import, never built by a plain training run (which uses them only
when they are built already), built in the background of a supernet search with a message."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.utils.cpp_extension as cpp
from torch import nn

from archsearch.data import from_tensors
from archsearch.nn import native
from archsearch.trainer import TrainConfig, train


def test_importing_archsearch_patches_nothing() -> None:
    code = ("import archsearch, archsearch.nn, archsearch.oneshot; from archsearch.nn.conv import DepthwiseConv2d; "
            "print(DepthwiseConv2d.training_conv is None)")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "True", run.stderr[-300:]


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[str]:
    """An empty kernel cache and a compiler that records being called and fails."""
    calls: list[str] = []

    def compiler(name: str, *args: object, **kwargs: object) -> None:
        calls.append(name)
        raise RuntimeError("c++: error: the test's compiler")

    monkeypatch.setattr(cpp, "load", compiler)
    monkeypatch.setattr(native, "_KERNELS", native._Kernels())
    monkeypatch.setenv("ARCHSEARCH_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHSEARCH_NATIVE", raising=False)
    return calls


def test_a_plain_training_run_never_builds_the_kernels(nothing_built: list[str]) -> None:
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = from_tensors(x, torch.arange(32) % 2, name="tiny")
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 64, 2))
    train(model, data, TrainConfig(epochs=1, batch_size=16))
    assert nothing_built == [] and native.kernels() is None
    assert "not built yet" in (native.unavailable_reason() or "")


def test_a_supernet_search_builds_them_in_the_background_and_says_so(nothing_built: list[str], capsys) -> None:
    with pytest.warns(RuntimeWarning, match="the test's compiler"):
        assert native.ensure_built(background=True) is None  # returns at once
        assert native.wait_for_build() is None
    assert len(nothing_built) == 1 and "building the compiled CPU kernels in the background" in capsys.readouterr().err
    assert native.ensure_built(background=True) is None and len(nothing_built) == 1  # one try per process

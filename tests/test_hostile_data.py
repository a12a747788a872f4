"""Hostile input against what archsearch reads and runs: PyTorch's heap-corrupting strided 1x1 convolution, the
compiled kernels' build cache, latency tables, data and evaluator results given through the Python API, sizes that
cannot fit, and user code that raises. Each case fails without its fix."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import archsearch as A
from archsearch.cli import main
from archsearch.costs.lookup import LatencyTable, network_blocks
from archsearch.errors import ArchsearchError

NB201 = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- 0. PyTorch's CPU backward of a strided 1x1 convolution on few channels-last channels corrupts the heap -------
NARROW_STRIDED = """
import torch
from archsearch.nn.mobile import SkipBlock
from archsearch.nn.ops import FactorizedReduce, make_op
torch.manual_seed(0)
layers = [FactorizedReduce(8, 4), FactorizedReduce(4, 2), SkipBlock(4, 2, 2), SkipBlock(1, 3, 2),
          make_op("nor_conv_1x1", 2, 4, 2)]
for layer in layers:
    for _ in range(30):
        c = next(m for m in layer.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        x = torch.randn(16, c, 16, 16).to(memory_format=torch.channels_last).requires_grad_()
        layer(x).square().sum().backward()
print("ok")
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_narrow_strided_pointwise_layers_train_without_corrupting_memory(threads: int) -> None:
    """With oneDNN's AVX2 kernels (the machines where it showed) and glibc's heap checks, 1 thread crashed and 2
    hung before PointwiseConv2d; ``tests/scripts/conv_sweep.py`` finds every shape."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "ONEDNN_MAX_CPU_ISA": "AVX2", "ARCHSEARCH_NATIVE": "0",
           "GLIBC_TUNABLES": "glibc.malloc.check=3"}  # fmt: skip
    debug = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
    if os.path.exists(debug):
        env["LD_PRELOAD"] = debug
    try:
        run = subprocess.run([sys.executable, "-c", NARROW_STRIDED], env=env, capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"training narrow strided 1x1 layers hung with {threads} thread(s)")
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-500:]


def test_pointwise_conv_equals_a_strided_conv2d_with_the_same_state_dict() -> None:
    from archsearch.nn.conv import PointwiseConv2d

    for c_in, c_out, stride, padding in ((4, 2, 2, 0), (3, 5, 2, 1), (6, 6, 3, 0), (4, 4, 1, 0)):
        mine = PointwiseConv2d(c_in, c_out, stride, padding)
        plain = torch.nn.Conv2d(c_in, c_out, 1, stride, padding, bias=False)
        plain.load_state_dict(mine.state_dict())
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(3, c_in, 9, 9).to(memory_format=layout)
            a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
            torch.testing.assert_close(mine(a), plain(b))
            mine(a).sum().backward()
            plain(b).sum().backward()
            torch.testing.assert_close(a.grad, b.grad)


# --- 2, 8. the kernel cache: private, verified, never blocking ----------------------------------------------------
def test_a_kernel_cache_that_others_can_write_or_that_is_a_link_is_refused(tmp_path: Path) -> None:
    from archsearch.nn.native.build import private_folder

    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    with pytest.raises(ArchsearchError, match="writable by others"):
        private_folder(open_dir)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real").mkdir(mode=0o700)
    with pytest.raises(ArchsearchError, match="not a plain folder"):
        private_folder(tmp_path / "link")
    if os.getuid() == 0:  # root can give a folder away, which shows the owner check
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 4242, 4242)
        with pytest.raises(ArchsearchError, match="belongs to user id 4242"):
            private_folder(theirs)
    made = private_folder(tmp_path / "new" / "cache")
    assert made.stat().st_mode & 0o777 == 0o700


PLANTED_LIBRARY = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) { FILE *f = fopen("%s", "w"); if (f) fclose(f); }
"""


def test_a_replaced_library_in_the_cache_is_never_loaded(tmp_path: Path) -> None:
    """The planted library's constructor would write a marker when loaded; its hash differs from the record, so
    it is rebuilt instead (the rebuild is made to fail here: a C++ compiler that is `false`)."""
    from archsearch.nn import native
    from archsearch.nn.native import build

    if native.kernels() is None:
        pytest.skip(f"the kernels are not built on this machine ({native.unavailable_reason()})")
    cache = tmp_path / "cache"
    source = Path(native.kernels().__file__).parent  # the build of this source (older ones may be cached beside it)
    assert (source / build.RECORD).exists()
    cache.mkdir(mode=0o700)
    shutil.copytree(source, cache / source.name)
    name = source.name.rsplit("-", 1)[0]
    marker = tmp_path / "PLANTED_RAN"
    (tmp_path / "planted.c").write_text(PLANTED_LIBRARY % marker)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(cache / source.name / f"{name}.so"),
                    str(tmp_path / "planted.c")], check=True)  # fmt: skip
    code = "from archsearch.nn import native; print(native.kernels() is None, native.unavailable_reason())"
    env = {**os.environ, "ARCHSEARCH_KERNEL_CACHE": str(cache), "CXX": "false", "MAX_JOBS": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "the planted library was loaded"
    assert run.stdout.startswith("True"), run.stdout + run.stderr[-300:]


def test_a_lock_file_left_by_a_killed_build_blocks_nothing(tmp_path: Path) -> None:
    from archsearch.nn import native
    from archsearch.nn.native import build

    if native.kernels() is None:
        pytest.skip(f"the kernels are not built on this machine ({native.unavailable_reason()})")
    source = Path(native.kernels().__file__).parent  # the build of this source (older ones may be cached beside it)
    assert (source / build.RECORD).exists()
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    shutil.copytree(source, cache / source.name)
    name = source.name.rsplit("-", 1)[0]
    (cache / f"{name}.lock").write_text("12345")  # what `touch .../lock` did to the old builder: a stale lock
    (cache / source.name / "lock").write_text("")
    code = "from archsearch.nn import native; print(native.kernels() is not None)"
    env = {**os.environ, "ARCHSEARCH_KERNEL_CACHE": str(cache)}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "True", run.stderr[-300:]


def test_a_build_lock_held_too_long_gives_up_with_a_message(tmp_path: Path, capsys) -> None:
    import fcntl

    from archsearch.nn.native import build

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    source = tmp_path / "k.cpp"
    source.write_text("// nothing to build: the lock is never free\n")
    holder = (cache / "k.lock").open("a+")
    fcntl.flock(holder, fcntl.LOCK_EX)
    os.environ["ARCHSEARCH_KERNEL_CACHE"] = str(cache)
    try:
        start = time.monotonic()
        with pytest.raises(ArchsearchError, match="held the kernel build lock"):
            build.build_and_load("k", source, [], [], wait=1.0)
        assert time.monotonic() - start < 30
    finally:
        del os.environ["ARCHSEARCH_KERNEL_CACHE"]
        holder.close()
    assert "another process is building the CPU kernels" in capsys.readouterr().err


# --- 9, 12. latency tables: every number checked, bounded reads ----------------------------------------------------
def small_table() -> LatencyTable:
    """A valid (made-up) macro latency table."""
    return LatencyTable("macro", "eager", 1, 1, (3, 32, 32), 10, {}, 0.05, {"stem a": 0.3, "head b": 0.2})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"overhead_ms": 1e6}, "overhead_ms"),
        ({"scale": float("nan")}, "scale"),
        ({"scale": -1}, "scale"),
        ({"entries": {"stem a": float("inf")}}, "entry"),
        ({"entries": {"stem a": "0.3"}}, "entry"),
        ({"threads": True}, "threads"),
        ({"space_options": "wide"}, "space_options must be a JSON object"),
        ({"space_options": {"bogus": 1}}, "refuses its stored space_options"),
    ],
)
def test_a_latency_table_with_a_bad_number_is_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    obj = {**small_table().to_json(), **change}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ArchsearchError, match=message):
        LatencyTable.load(path)


def test_latency_table_files_that_are_not_tables_are_one_line(tmp_path: Path) -> None:
    huge = tmp_path / "digits.json"
    huge.write_text(json.dumps(small_table().to_json()).replace('"threads": 1', '"threads": ' + "9" * 5000))
    for path, message in ((huge, "not a latency table"), (Path("/dev/zero"), "not a regular file")):
        with pytest.raises(ArchsearchError, match=message):
            LatencyTable.load(path)


def test_a_prediction_that_is_not_a_latency_is_an_error() -> None:
    table = small_table()
    table.scale = -1.0  # set after reading: the reader refuses it, predict refuses it too
    genotype = A.get_space("macro").parse("00000000")
    blocks = network_blocks(A.get_space("macro"), genotype, table.input_shape, table.num_classes, table.build)
    table.entries = {key: 1.0 for key, _, _ in blocks}
    with pytest.raises(ArchsearchError, match="not a latency"):
        table.predict(genotype)


# --- 10, 12. data and results given through the Python API: one set of checks -----------------------------------
class _Images(torch.utils.data.Dataset):
    def __init__(self, n: int = 40, bad: Any = None, length: int | None = None, fail_at: int | None = None) -> None:
        self.n, self.bad, self.length, self.fail_at = n, bad, length, fail_at

    def __len__(self) -> int:
        return self.length if self.length is not None else self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if i == self.fail_at:
            raise KeyError("missing file 7.png")
        image = torch.full((1, 8, 8), float(i % 2))
        if self.bad is not None and i == 3:
            image = image * self.bad
        return image, i % 2


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (_Images(bad=float("nan")), "NaN or infinite"),
        (_Images(bad=float("inf")), "NaN or infinite"),
        (_Images(n=2), "every split needs at least one example"),
        (_Images(length=10**12), "GiB in memory"),
        (_Images(fail_at=7), "raised reading item 7: KeyError"),
        ((torch.zeros(20, 1, 8, 8, dtype=torch.complex64), torch.arange(20) % 2), "complex"),
        ((torch.zeros(20, 1, 8, 8), torch.tensor([0] * 19 + [10**9])), "over 1,000,000 classes"),
    ],
)
def test_bad_data_is_refused_however_it_arrives(dataset: Any, message: str) -> None:
    from archsearch.data import as_data

    with pytest.raises(ArchsearchError, match=message):
        as_data(dataset)


def test_evaluators_may_return_numpy_numbers_but_not_booleans(tmp_path: Path) -> None:
    @A.register_evaluator
    def numpy_metrics(genotype: Any, space: Any) -> dict[str, Any]:
        return {"val_acc": np.float32(50.0), "extra": np.int64(3)}

    @A.register_evaluator
    def boolean_metrics(genotype: Any, space: Any) -> dict[str, Any]:
        return {"val_acc": True}

    good = A.search(space="nb201", strategy="random", evaluator="numpy_metrics", budget=2, out=str(tmp_path / "a"))
    assert good.winner is not None and good.winner.metrics["val_acc"] == 50.0
    bad = A.search(space="nb201", strategy="random", evaluator="boolean_metrics", budget=2, out=str(tmp_path / "b"))
    assert bad.winner is None and "not a boolean" in bad.failures[0][0]


def test_a_strategy_that_raises_is_named(tmp_path: Path) -> None:
    from archsearch.strategies import Strategy

    @A.register_strategy
    class Broken(Strategy):
        name = "broken"

        def ask(self, n: int = 1) -> list[Any]:
            raise IndexError("my bug")

        def tell(self, trials: Any) -> None:
            pass

    with pytest.raises(ArchsearchError, match=r"strategy 'broken' \(Broken\) raised in ask\(\): IndexError: my bug"):
        A.search(space="nb201", strategy="broken", evaluator="archsearch.testing.evaluators:FaultEvaluator", budget=2,
                 out=str(tmp_path / "r"))  # fmt: skip


# --- 12, 13. numbers and sizes on the command line ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cost", "MOBILE_KERNEL_3.0"], "kernel"),
        (["cost", NB201, "--input-shape", "3,100000,100000"], "GiB; this machine has"),
        (["cost", "concat: conv3x3/16/s1 | conv3x3/32/s2 | conv3x3/32/s1", "--space", "chain", "--width", "1e6"],
         "GiB to train; this machine has"),
    ],
)
def test_numbers_and_sizes_that_cannot_work_are_refused_first(argv: list[str], message: str, capsys) -> None:
    if "MOBILE_KERNEL_3.0" in argv:  # a mobile genotype whose first kernel is the float 3.0
        obj = A.get_space("mobile").sample(np.random.default_rng(0)).to_json()
        obj["stages"][0][0]["kernel"] = 3.0
        argv = [json.dumps(obj) if a == "MOBILE_KERNEL_3.0" else a for a in argv]
    assert main(argv) == 2
    assert message in _err(capsys)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_option_refuses_nan_and_infinity(value: str, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["cost", NB201, f"--width={value}"])
    assert stop.value.code == 2 and "expected a finite number" in capsys.readouterr().err


def test_ctrl_c_while_starting_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "from _archsearch_launcher import main; raise SystemExit(main())",
                             "spaces"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.4)  # importing torch takes longer
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and (proc.returncode == 130 or proc.returncode == 0), err


def test_finite_checks_do_not_refuse_ordinary_numbers() -> None:
    from archsearch.evaluators.base import clean_metrics

    assert clean_metrics({"a": 1, "b": np.float64(2.5), "c": np.int32(3)}, "x") == {"a": 1.0, "b": 2.5, "c": 3.0}
    for bad in (True, np.bool_(True), "1.0", math.inf, [1.0]):
        with pytest.raises(ArchsearchError):
            clean_metrics({"a": bad}, "x")


def test_search_names_the_options_it_does_not_take(tmp_path: Path) -> None:
    with pytest.raises(ArchsearchError, match="budget=N, not trials="):
        A.search(space="nb201", strategy="random", trials=3, out=str(tmp_path / "a"))
    with pytest.raises(ArchsearchError, match=r"unknown option.*epoch"):
        A.search(space="nb201", strategy="random", epoch=3, out=str(tmp_path / "b"))

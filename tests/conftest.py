import csv
import functools
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

if "PYTEST_XDIST_WORKER" in os.environ:  # one test process per core: each (and what it starts) on one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under pytest-xdist, tests go one by one to the free worker, except the groups that must share a process, in
    order: the README's blocks that read what an earlier block wrote, the Ray cluster tests, and the modules whose
    costly module fixtures one worker should build once (:data:`SHARED_FIXTURE_MODULES`). (xdist's own
    ``--dist loadgroup`` does not group under pytest 9.2, which no longer reads the node id it rewrites.)"""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid) or nodeid

    return GroupScheduling(config, log)


#: modules whose module-scoped fixtures are costly (the report tests' four runs and browser, 8 s; a measured latency
#: table, 2 s): their tests share one worker, which builds them once, rather than each worker building its own
SHARED_FIXTURE_MODULES = {"tests/test_report.py", "tests/test_latency.py"}


@functools.cache
def xdist_group_of(nodeid: str) -> str | None:
    """The group a test runs in under pytest-xdist (``None``: on its own)."""
    import re
    import sys

    if nodeid.startswith("tests/test_ray.py::"):
        return "ray"
    module = nodeid.split("::", 1)[0]
    if module in SHARED_FIXTURE_MODULES:
        return module
    documented = re.fullmatch(r"tests/test_docs\.py::test_documented_example_runs\[(.+)\]", nodeid)
    if documented is None:
        return None
    sys.path.insert(0, str(Path(__file__).parent))
    from test_docs import doc_groups

    return doc_groups().get(documented.group(1))


@pytest.fixture(autouse=True)
def _registries_restored():
    """Spaces, strategies and evaluators a test registers (its own, or the examples') are gone after it."""
    from archsearch.evaluators import EVALUATORS
    from archsearch.spaces import SPACES
    from archsearch.strategies import STRATEGIES

    saved = [(r, r.snapshot()) for r in (SPACES, STRATEGIES, EVALUATORS)]
    yield
    for registry, snapshot in saved:
        registry.restore(snapshot)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder from ARCHSEARCH_DATA. Unset: the test skips with the reason. Set (as `.ci/run` sets
    it) but not a folder: the test fails, since CI must not pass by skipping."""
    root = os.environ.get("ARCHSEARCH_DATA")
    if not root:
        pytest.skip("ARCHSEARCH_DATA is not set to the shared data folder (.ci/run sets it to ../shared/data)")
    if not Path(root).is_dir():
        pytest.fail(f"ARCHSEARCH_DATA={root} is not a folder")
    return Path(root)


def shared_file(data_dir: Path, relative: str) -> Path:
    """A file of the shared data folder; missing, the test fails (ARCHSEARCH_DATA is set, so the data must be
    there)."""
    path = data_dir / relative
    if not path.is_file():
        pytest.fail(f"ARCHSEARCH_DATA is set but {path} is missing")
    return path


@pytest.fixture(scope="session")
def nb201_table(data_dir: Path) -> Path:
    """The shared NB201 table (all 15,625 cells)."""
    return shared_file(data_dir, "nb201/nb201_cifar10.csv")


@pytest.fixture(scope="session")
def made_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A made-up table in the NB201 format over every one of the 15,625 cells (seeded), for tests that need a table
    but not the real figures: convolutions score higher, and the signal and the reported figure are correlated."""
    from archsearch.spaces.nb201 import NB201_OPS, NB201Genotype

    rng = np.random.default_rng(0)
    worth = {"none": 0.0, "skip_connect": 4.0, "avg_pool_3x3": 2.0, "nor_conv_1x1": 8.0, "nor_conv_3x3": 12.0}
    path = tmp_path_factory.mktemp("table") / "made_nb201.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "valid_acc_12ep", "valid_acc_200ep", "test_acc_200ep"])
        for ops in itertools.product(NB201_OPS, repeat=6):
            base = 10.0 + sum(worth[o] for o in ops)
            noise = rng.normal(0, 2, size=3)
            row = [min(99.0, max(1.0, base + d)) for d in (noise[0], 8 + noise[1], 8 + noise[2])]
            writer.writerow([str(NB201Genotype(ops)), *(f"{v:.3f}" for v in row)])
    return path


@pytest.fixture(scope="session")
def tiny_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real latency table of the tiny ``mobile`` networks (width 0.125, head 16) on digits' 8x8 images (eager,
    few repeats: behaviour, not speed)."""
    from archsearch.costs.lookup import build_table

    path = tmp_path_factory.mktemp("lut") / "lut.json"
    build = {"width": 0.125, "head": 16}
    build_table("mobile", "eager", (1, 8, 8), 10, build, calibrate=0, profile=0, warmup=1, repeats=3).save(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _image_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded image folders are cached in the session's temporary folder, never in the user's cache."""
    os.environ["ARCHSEARCH_CACHE"] = str(tmp_path_factory.mktemp("archsearch-cache"))

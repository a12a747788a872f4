"""Loading CIFAR-10 from its JPEG folders: decoded in one process, decoded by worker processes, and from the cache.

    python benchmarks/image_folder_load.py --data-dir ../shared/data       # ~40 s on 2 cores

Each row loads ``<data-dir>/cifar10-jpeg`` (50,000 + 10,000 JPEG files) with ``archsearch.data.load_dataset`` into a
fresh, empty cache folder (the first two rows) or the one the row before filled (the last). Printed: seconds and the
ratio against decoding in one process, measured in the same run. The files are read once before timing, so every row
reads them from the OS's page cache; a cold first read from disk adds to the first load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from archsearch.data import folders, load_dataset


def _load(data_dir: str, cache: str) -> float:
    os.environ["ARCHSEARCH_CACHE"] = cache
    start = time.perf_counter()
    data = load_dataset("cifar10", data_dir)
    seconds = time.perf_counter() - start
    assert len(data.train) + len(data.val) == 50_000 and len(data.test) == 10_000
    return seconds


def main() -> None:
    """Print the load time of CIFAR-10's JPEG folders: one process, worker processes, cached."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    for path in (Path(args.data_dir) / "cifar10-jpeg").rglob("*.jpg"):  # into the page cache
        path.read_bytes()
    workers = min(os.cpu_count() or 1, 8)
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        parallel_from = folders.PARALLEL_FROM
        folders.PARALLEL_FROM = 10**9  # every image in this process
        single = _load(args.data_dir, one)
        folders.PARALLEL_FROM = parallel_from
        parallel = _load(args.data_dir, many)
        cached = _load(args.data_dir, many)
    print(f"CIFAR-10 from JPEG folders, {os.cpu_count()} cores\n")
    print("| load | seconds | vs one process |")
    print("| --- | --- | --- |")
    for name, seconds in (("decoded in one process", single), (f"decoded by {workers} worker processes", parallel),
                          ("from the cache", cached)):  # fmt: skip
        print(f"| {name} | {seconds:.1f} | {single / seconds:.1f}x |")


if __name__ == "__main__":
    main()

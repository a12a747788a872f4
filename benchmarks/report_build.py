"""Size and build time of `archsearch report` for a 1,000-trial table search and a 50-epoch one-shot search.

    python benchmarks/report_build.py --table ../shared/data/nb201/nb201_cifar10.csv

The runs themselves are made first (an evolution search on the table; DARTS on the DARTS space over digits, small
supernet, 50 epochs), then each report is built three times and the median build time printed with its size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from archsearch.cli import main as cli


def build_times(run: Path, repeats: int) -> tuple[float, int]:
    from archsearch.reporting.run_report import build_run_report

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        path = build_run_report(run)
        times.append(time.perf_counter() - start)
    return statistics.median(times), path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archsearch-report-") as tmp:
        root = Path(tmp)
        runs = {
            "table search, 1,000 trials": (root / "table", ["search", "--table", args.table, "--trials", "1000"]),
            "one-shot DARTS, 50 epochs": (
                root / "oneshot",
                ["oneshot", "--method", "darts", "--space", "darts", "--dataset", "digits", "--subset", "256",
                 "--epochs", "50", "--channels", "4", "--cells", "5", "--batch-size", "32"],
            ),
        }  # fmt: skip
        print(f"{'run':<28} {'report':>9} {'build s':>8}")
        for name, (out, argv) in runs.items():
            with contextlib.redirect_stdout(io.StringIO()):
                code = cli([*argv, "--out", str(out), "--json"])
            if code != 0:
                raise SystemExit(f"the run for {name} failed")
            seconds, size = build_times(out, args.repeats)
            print(f"{name:<28} {size / 1024:>6.0f} KiB {seconds:>8.2f}")


if __name__ == "__main__":
    main()

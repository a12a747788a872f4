"""What the store's durability costs per trial: a search against a table (the cheapest trials there are, so the
store's share is as large as it gets) with ``synchronous=FULL`` (durable across a power loss, the default) against
``synchronous=NORMAL`` (durable across a killed process only), same strategy, seed and budget, in one run.

    python benchmarks/store_durability.py --table ../shared/data/nb201/nb201_cifar10.csv --trials 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from archsearch.evaluators import Table, TableEvaluator
from archsearch.experiment import Budget, Experiment
from archsearch.objectives import Objective
from archsearch.spaces import get_space
from archsearch.store import Store
from archsearch.strategies import get_strategy


def one_search(table: Table, trials: int, durable: bool, seed: int) -> float:
    """Seconds per trial of one evolution search on the table."""
    space = get_space("nb201")
    with tempfile.TemporaryDirectory(prefix="archsearch-durability-", dir=".") as tmp:
        store = Store(tmp, durable=durable)
        start = time.perf_counter()
        Experiment(
            space, get_strategy("evolution", space, seed=seed), TableEvaluator(table), Objective(), Budget(trials),
            store, seed=seed,
        ).run()  # fmt: skip
        seconds = time.perf_counter() - start
        store.close()
    return seconds / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    table = Table(args.table)
    rows = {}
    for durable in (False, True):
        runs = [one_search(table, args.trials, durable, seed) for seed in range(args.repeats)]
        rows["FULL (default)" if durable else "NORMAL"] = statistics.median(runs) * 1000
    base = rows["NORMAL"]
    print(f"{'synchronous':<16} {'ms/trial':>9} {'ratio':>6}")
    for name, ms in rows.items():
        print(f"{name:<16} {ms:>9.3f} {ms / base:>6.2f}")


if __name__ == "__main__":
    main()

"""Evaluators for testing executors and fault handling: deterministic scores, a set run time, a hang or a crash on
chosen architectures, and a log of every run. Use them by path, as worker processes and Ray tasks do:
``--evaluator archsearch.testing.evaluators:FaultEvaluator``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from archsearch.evaluators.base import Evaluator


def stable_score(key: str) -> float:
    """A score in [0, 100) that depends on the architecture only (the same in every process)."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 2**32 * 100


class FaultEvaluator(Evaluator):
    """``seconds`` of work per trial (``busy``: spinning the CPU, else sleeping); ``hang`` (substrings of
    architecture keys): those never finish; ``crash_first`` (substrings): their first run kills its own process with
    SIGKILL; ``fail`` (substrings): those raise ``RuntimeError``;
    ``log_dir``: one line per run started (``key pid``) in ``runs.log``, which tells how often each ran."""

    name = "fault"

    def __init__(
        self,
        space: Any = None,
        seconds: float = 0.0,
        busy: bool = False,
        hang: list[str] | None = None,
        crash_first: list[str] | None = None,
        log_dir: str | None = None,
        fail: list[str] | None = None,
    ) -> None:
        self.fail = list(fail or [])
        self.seconds, self.busy = seconds, busy
        self.hang, self.crash_first = list(hang or []), list(crash_first or [])
        self.log = Path(log_dir) / "runs.log" if log_dir else None

    def runs_of(self, key: str) -> int:
        """How many runs of ``key`` were started, in any process."""
        if self.log is None or not self.log.exists():
            return 0
        return sum(line.rsplit(" ", 1)[0] == key for line in self.log.read_text().splitlines())

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        key = genotype.key
        earlier = self.runs_of(key)
        if self.log is not None:
            with self.log.open("a") as handle:
                handle.write(f"{key} {os.getpid()}\n")
        if any(s in key for s in self.hang):
            while True:
                time.sleep(1)
        if any(s in key for s in self.fail):
            raise RuntimeError("planned failure")
        if earlier == 0 and any(s in key for s in self.crash_first):
            os.kill(os.getpid(), signal.SIGKILL)
        end = time.perf_counter() + self.seconds
        if self.busy:
            x = 0
            while time.perf_counter() < end:
                x += 1
        else:
            time.sleep(self.seconds)
        return {"val_acc": stable_score(key)}

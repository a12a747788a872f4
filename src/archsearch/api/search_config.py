"""The option groups of a multi-trial search (:mod:`archsearch.options`): how it runs and judges trials
(:class:`SearchOptions`) and where its ``latency_ms`` comes from (:class:`LatencyOptions`). Each field is a flag of
``archsearch search``, a key of its TOML config and a keyword argument of :func:`archsearch.search`; what is searched
(space, strategy, data, evaluator, table) and the budget are arguments of their own."""

from __future__ import annotations

from dataclasses import dataclass

from archsearch.errors import ArchsearchError
from archsearch.options import option, positive_int, register

EXECUTORS = ("process", "ray")
LATENCY_TARGETS = ("eager", "torchscript", "onnxruntime")


@register("search")
@dataclass(frozen=True)
class SearchOptions:
    """How a search judges trials and where they run."""

    metric: str = option("val_acc", "the metric a single-objective search maximises (zero_cost: zc_score)")
    objectives: str = option("", "several objectives for a Pareto front, e.g. val_acc,params; a table's column with "
                             "its direction, e.g. val_acc,pixel3_ms:min")  # fmt: skip
    table_signal: str = option("valid_acc_12ep", "the table's column the search maximises (NB201's valid_acc_12ep)")
    table_report: str = option("test_acc_200ep", "the table's column reported for the winner, never searched")
    seed: int = option(0, "random seed of the strategy and the trials")
    workers: int = option(1, "trials in flight (worker processes or Ray tasks)", parse=positive_int)
    executor: str = option("process", "where trials run: local worker processes or Ray tasks on a local or running "
                           "cluster", choices=EXECUTORS)  # fmt: skip
    trial_timeout: float | None = option(None, "seconds after which a trial is stopped and recorded failed")
    retries: int = option(2, "re-runs of a trial whose worker process died")
    ray_address: str | None = option(None, "join a running Ray cluster (auto or HOST:PORT); default: start a "
                                     "local one")  # fmt: skip
    cpus_per_trial: float = option(1.0, "Ray CPUs of one trial")
    gpus_per_trial: float = option(0.0, "Ray GPUs of one trial")

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ArchsearchError(f"workers must be >= 1, got {self.workers}")
        if self.executor not in EXECUTORS:
            raise ArchsearchError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.trial_timeout is not None and self.trial_timeout <= 0:
            raise ArchsearchError(f"the trial timeout must be > 0 seconds, got {self.trial_timeout}")
        if self.retries < 0 or self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ArchsearchError(
                f"retries >= 0, cpus per trial > 0 and gpus per trial >= 0 are needed, got {self.retries}, "
                f"{self.cpus_per_trial}, {self.gpus_per_trial}"
            )
        if self.ray_address is not None and self.executor != "ray":
            raise ArchsearchError("--ray-address needs --executor ray")

    def executor_settings(self) -> dict[str, object]:
        """Where trials run and their fault rules, as a run's config records them."""
        return {"kind": self.executor, "trial_timeout": self.trial_timeout, "retries": self.retries,
                "ray_address": self.ray_address, "cpus_per_trial": self.cpus_per_trial,
                "gpus_per_trial": self.gpus_per_trial}  # fmt: skip


@register("latency")
@dataclass(frozen=True)
class LatencyOptions:
    """Where a search's ``latency_ms`` comes from: measured here, predicted by a lookup table or by a device model."""

    latency_table: str | None = option(None, "predict latency_ms with this table (archsearch latency-table) "
                                       "instead of measuring it", metavar="FILE.json")  # fmt: skip
    latency_target: str | None = option(None, "where latency_ms is measured (default eager; a table's own target)",
                                        choices=LATENCY_TARGETS)  # fmt: skip
    latency_threads: int = option(1, "threads when measuring latency_ms", parse=positive_int)
    latency_model: str | None = option(None, "predict latency_ms with a device model (archsearch latency-model "
                                       "fit) instead of measuring", metavar="FILE.json")  # fmt: skip

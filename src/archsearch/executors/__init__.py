"""Where trials run: inline, in local worker processes, or as Ray tasks on a cluster; one interface
(``submit`` -> ``Future``, ``workers``, ``shutdown``) and one set of fault rules (see ``executors.base``)."""

from archsearch.executors.base import (
    EvaluatorSpec,
    InlineExecutor,
    RemoteTrialError,
    TrialTimeout,
    WorkerDied,
    run_evaluation,
)
from archsearch.executors.process import ProcessExecutor

__all__ = [
    "EvaluatorSpec",
    "InlineExecutor",
    "ProcessExecutor",
    "RemoteTrialError",
    "TrialTimeout",
    "WorkerDied",
    "run_evaluation",
]

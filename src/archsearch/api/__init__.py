"""archsearch's Python API: one function per command, each returning a typed result whose ``to_json()`` is what the
command prints with ``--json``. The command line parses its options and calls these, nothing more.

=================  =======================================================================================
function           command
=================  =======================================================================================
``search``         ``archsearch search``: a multi-trial search (``--retrain`` then calls ``retrain``)
``oneshot``        ``archsearch oneshot``: a one-shot search on a supernet (DARTS, PC-DARTS, GDAS, SPOS)
``retrain``        ``--retrain``: a found architecture beside the hand-designed baseline CNN, same budget
``train``          ``archsearch train``: one architecture (or the baseline) from scratch
``score``          ``archsearch score``: zero-cost proxy scores of untrained networks
``benchmark``      ``archsearch benchmark``: strategies compared on a tabular benchmark over many seeds
``cost``           ``archsearch cost``: parameters, MACs, latency and peak memory
``spaces``         ``archsearch spaces``; ``sample``: ``archsearch sample``
``show``           ``archsearch show``: what a run directory holds, read without writing
``report``         ``archsearch report``: the run's self-contained HTML page; ``draw``: ``archsearch draw``
``export``         ``archsearch export``: a found network as ONNX, ``torch.export``, TorchScript or model.py
``latency``        ``archsearch latency``: measured on PyTorch eager, TorchScript, ONNX Runtime
``latency_table``  ``archsearch latency-table``: a per-block lookup table that predicts latency
``fit_latency_model`` ``archsearch latency-model fit``: a device's latency predicted from a few timed networks
=================  =======================================================================================
"""

from archsearch.api.benchmarking import benchmark
from archsearch.api.exports import export
from archsearch.api.latency import LatencyRecord, TableWritten, latency, latency_table
from archsearch.api.latency_models import LatencyModelWritten, fit_latency_model
from archsearch.api.multitrial import (
    RESUME_CHANGES,
    build_experiment,
    check_stored_evaluator,
    make_config,
    make_executor,
    resume_config,
    search,
    with_resumable_changes,
)
from archsearch.api.oneshot_search import oneshot
from archsearch.api.results import (
    BenchmarkResult,
    CostRecord,
    Drawing,
    OneShotRun,
    ReportFile,
    RunView,
    ScoreResult,
    SpaceInfo,
    TrainRecord,
)
from archsearch.api.retraining import Retrained, RetrainResult, retrain
from archsearch.api.scoring import score
from archsearch.api.search_config import EXECUTORS, LatencyOptions, SearchOptions
from archsearch.api.tools import cost, draw, report, sample, show, spaces, watch_report
from archsearch.api.training import train
from archsearch.run_summary import summarize_run

__all__ = [
    "EXECUTORS",
    "RESUME_CHANGES",
    "BenchmarkResult",
    "CostRecord",
    "Drawing",
    "LatencyModelWritten",
    "LatencyOptions",
    "LatencyRecord",
    "OneShotRun",
    "ReportFile",
    "RetrainResult",
    "Retrained",
    "RunView",
    "ScoreResult",
    "SearchOptions",
    "SpaceInfo",
    "TableWritten",
    "TrainRecord",
    "benchmark",
    "build_experiment",
    "check_stored_evaluator",
    "cost",
    "draw",
    "export",
    "fit_latency_model",
    "latency",
    "latency_table",
    "make_config",
    "make_executor",
    "oneshot",
    "report",
    "resume_config",
    "retrain",
    "sample",
    "score",
    "search",
    "show",
    "spaces",
    "summarize_run",
    "train",
    "watch_report",
    "with_resumable_changes",
]

"""archsearch: neural architecture search for PyTorch.

The public API: one function per command (``search``, ``oneshot``, ``retrain``, ``train``, ``score``,
``benchmark``, ``cost``, ``show``, ``report``, ``draw``, ``export``, ``latency``, ``latency_table``,
``fit_latency_model``, ``sample``,
``spaces``; see
:mod:`archsearch.api`), search spaces and their genotypes, the registries for your own space, strategy and
evaluator, the op registry and cost metrics.
"""

from archsearch import api
from archsearch.api import (
    benchmark,
    cost,
    draw,
    export,
    fit_latency_model,
    latency,
    latency_table,
    oneshot,
    report,
    retrain,
    sample,
    score,
    search,
    show,
    spaces,
    train,
)
from archsearch.costs import Cost, count_flops, count_params, measure, measure_latency, peak_memory_mb
from archsearch.errors import ArchsearchError, GenotypeError, RegistryError
from archsearch.evaluators import Evaluator, register_evaluator
from archsearch.nn.ops import OPS
from archsearch.spaces import (
    SPACES,
    ChainGenotype,
    ChainSpace,
    Choices,
    ChoiceSpace,
    DartsGenotype,
    DartsSpace,
    Decision,
    NB201Genotype,
    NB201Space,
    Space,
    genotype_from_json,
    get_space,
    parse_arch,
    published,
    register_space,
)
from archsearch.strategies import Strategy, register_strategy
from archsearch.trial import Trial

__version__ = "0.1.0"

__all__ = [
    "OPS",
    "SPACES",
    "ArchsearchError",
    "ChainGenotype",
    "ChainSpace",
    "ChoiceSpace",
    "Choices",
    "Cost",
    "DartsGenotype",
    "DartsSpace",
    "Decision",
    "Evaluator",
    "GenotypeError",
    "NB201Genotype",
    "NB201Space",
    "RegistryError",
    "Space",
    "Strategy",
    "Trial",
    "api",
    "benchmark",
    "cost",
    "count_flops",
    "count_params",
    "draw",
    "export",
    "fit_latency_model",
    "genotype_from_json",
    "get_space",
    "latency",
    "latency_table",
    "measure",
    "measure_latency",
    "oneshot",
    "parse_arch",
    "peak_memory_mb",
    "published",
    "register_evaluator",
    "register_space",
    "register_strategy",
    "report",
    "retrain",
    "sample",
    "score",
    "search",
    "show",
    "spaces",
    "train",
]

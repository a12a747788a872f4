"""archsearch: neural architecture search for PyTorch.

The public API: ``search``, search spaces and their genotypes, the op registry and cost metrics.
"""

from archsearch.api import search
from archsearch.costs import Cost, count_flops, count_params, measure, measure_latency, peak_memory_mb
from archsearch.errors import ArchsearchError, GenotypeError, RegistryError
from archsearch.nn.ops import OPS
from archsearch.spaces import (
    SPACES,
    ChainGenotype,
    ChainSpace,
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
)

__version__ = "0.1.0"

__all__ = [
    "OPS",
    "SPACES",
    "ArchsearchError",
    "ChainGenotype",
    "ChainSpace",
    "Cost",
    "DartsGenotype",
    "DartsSpace",
    "Decision",
    "GenotypeError",
    "NB201Genotype",
    "NB201Space",
    "RegistryError",
    "Space",
    "count_flops",
    "count_params",
    "genotype_from_json",
    "get_space",
    "measure",
    "measure_latency",
    "parse_arch",
    "peak_memory_mb",
    "published",
    "search",
]

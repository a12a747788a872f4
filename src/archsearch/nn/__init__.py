"""Shared building blocks: the op registry, cells, heads and whole networks."""

from archsearch.nn import native  # installs the compiled training kernels (see archsearch.nn.native)
from archsearch.nn.ops import OPS, make_op

__all__ = ["OPS", "make_op", "native"]

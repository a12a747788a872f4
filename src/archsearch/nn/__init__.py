"""Shared building blocks: the op registry, cells, heads and whole networks."""

from archsearch.nn.ops import OPS, make_op

__all__ = ["OPS", "make_op"]

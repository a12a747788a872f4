"""Shared building blocks: the op registry, cells, heads and whole networks; counting what a network holds
(:mod:`~archsearch.nn.counting`); the compiled CPU training kernels (:mod:`~archsearch.nn.native`, installed by the
training loop and the supernet search, never at import)."""

from archsearch.nn.ops import OPS, make_op

__all__ = ["OPS", "make_op"]

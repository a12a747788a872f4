"""Second-order DARTS (Liu et al. 2019): the alphas' gradient through one unrolled weight step, its Hessian-vector
product by finite differences (the step itself is :meth:`archsearch.oneshot.darts.Darts.unrolled_arch_grad`)."""

from __future__ import annotations

from archsearch.oneshot.darts import Darts


class DartsSecondOrder(Darts):
    """Second-order DARTS (unrolled step, finite-difference Hessian-vector product)."""

    name = "darts2"
    second_order = True

"""DARTS (Liu et al. 2019), first and second order, and PC-DARTS (Xu et al. 2020) on the same step.

Bilevel: the weights learn on the training half, the alphas on the validation half. Second order follows the
paper's ``architect.py``: a virtual SGD step ``w' = w - xi * (momentum + grad + wd * w)`` with ``xi`` the weight
learning rate, the validation gradient at ``w'``, and the finite-difference Hessian-vector product
``(grad_a L_train(w + eps v) - grad_a L_train(w - eps v)) / 2 eps`` with ``v = grad_w' L_val`` and
``eps = 0.01 / |v|``. PC-DARTS is DARTS's first-order step on a supernet with partial channels and edge
normalisation (``partial``, ``edge_norm``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from archsearch.oneshot.base import OneShotMethod, StepResult


@contextmanager
def _frozen(params: list[torch.nn.Parameter]) -> Iterator[None]:
    """``params`` do not require gradients inside the block (those that did, again after it)."""
    thawed = [p for p in params if p.requires_grad]
    for p in thawed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in thawed:
            p.requires_grad_(True)


class Darts(OneShotMethod):
    """First-order DARTS (the alphas' gradient at the current weights)."""

    name = "darts"
    collapse_control = True
    second_order: ClassVar[bool] = False

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> StepResult:
        val_loss = val_correct = None
        if self.epoch >= self.config.weights_only_epochs:
            assert self.a_optimizer is not None
            self.a_optimizer.zero_grad(set_to_none=True)
            if self.second_order:
                val_loss, val_correct = self.unrolled_arch_grad(x, y, x_val, y_val)
            else:
                val_loss, val_correct = self.arch_grad(x_val, y_val)
            self.a_optimizer.step()
            self.arch_step_taken()
        with torch.no_grad():  # the weight step needs no gradient through the mixing weights
            archs = self.net.mixed_archs()
        loss, correct = self.weight_step(x, y, archs)
        return StepResult(loss, correct, val_loss, val_correct, len(y))

    def _val_loss(self, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(x_val)
        loss = F.cross_entropy(logits, y_val)
        for penalty in (self.skip_penalty(), self.beta_decay_loss(), self.latency_penalty()):
            if penalty is not None:
                loss = loss + penalty
        return loss, logits

    def arch_grad(self, x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[float, int]:
        """Set the alphas' ``.grad`` to the validation loss gradient at the current weights (weights' gradients
        are not computed)."""
        alphas = self.net.arch_parameters()
        with _frozen(self.weights):  # no layer builds a graph for the weights' gradients
            loss, logits = self._val_loss(x_val, y_val)
        self.set_arch_grads(torch.autograd.grad(loss, alphas))
        return float(loss.detach()), int((logits.argmax(-1) == y_val).sum())

    def unrolled_arch_grad(
        self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor
    ) -> tuple[float, int]:
        """Set the alphas' ``.grad`` to DARTS's second-order hypergradient (see the module docstring)."""
        alphas = self.net.arch_parameters()
        weights = list(self.weights)
        buffers = [b.clone() for b in self.net.buffers()]
        saved = [w.detach().clone() for w in weights]
        xi = self.scheduler.get_last_lr()[0]
        group = self.w_optimizer.param_groups[0]
        momentum, decay = group["momentum"], group["weight_decay"]

        train_loss = F.cross_entropy(self.net(x), y)
        grads = self._average(weights, torch.autograd.grad(train_loss, weights, allow_unused=True))
        with torch.no_grad():
            for w, g in zip(weights, grads):
                step = torch.zeros_like(w) if g is None else g.clone()
                buf = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
                if buf is not None:
                    step += momentum * buf
                w.sub_(xi * (step + decay * w))
        loss, logits = self._val_loss(x_val, y_val)
        found = self._average(alphas + weights, torch.autograd.grad(loss, alphas + weights, allow_unused=True))
        d_alpha = list(found[: len(alphas)])
        v = [torch.zeros_like(w) if g is None else g for w, g in zip(weights, found[len(alphas) :])]
        eps = self.config.fd_radius / torch.sqrt(sum((g * g).sum() for g in v)).clamp_min(1e-12)  # type: ignore[arg-type]

        def train_grad(sign: float) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                for w, s, g in zip(weights, saved, v):
                    w.copy_(s + sign * eps * g)
            return tuple(self._average(alphas, torch.autograd.grad(F.cross_entropy(self.net(x), y), alphas)))

        plus, minus = train_grad(1.0), train_grad(-1.0)
        with torch.no_grad():
            for w, s in zip(weights, saved):
                w.copy_(s)
            for b, s in zip(self.net.buffers(), buffers):
                b.copy_(s)
        for a, da, gp, gm in zip(alphas, d_alpha, plus, minus):
            a.grad = da - xi * (gp - gm) / (2 * eps)  # each term already averaged over the ranks
        return float(loss.detach()), int((logits.argmax(-1) == y_val).sum())

    def _average(self, params: list[torch.Tensor], grads: tuple[torch.Tensor | None, ...]) -> list[torch.Tensor]:
        """Gradients averaged over the ranks (a parameter without one gets zeros)."""
        filled = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        return [g for g in self.world.average(filled) if g is not None]


class BetaDarts(Darts):
    """beta-DARTS (Ye et al. 2022): first-order DARTS with the Beta-Decay regulariser on the alphas
    (:meth:`~archsearch.oneshot.base.OneShotMethod.beta_decay_loss`), which keeps the derived cell from collapsing
    into parameter-free ops without a skip penalty or an early stop."""

    name = "betadarts"
    collapse_control = False
    config_defaults: ClassVar[dict[str, Any]] = {"beta_decay": 25.0}

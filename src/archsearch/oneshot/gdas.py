"""GDAS (Dong & Yang 2019): each edge runs one op per forward pass, drawn by a Gumbel-softmax sample of its alphas;
the hard one-hot choice goes forward and the soft probabilities' gradient comes back (straight-through). The
temperature falls linearly from ``tau_max`` to ``tau_min`` over the epochs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archsearch.oneshot.base import OneShotMethod, StepResult
from archsearch.oneshot.search_cell import CellArch


class Gdas(OneShotMethod):
    """Gumbel-softmax differentiable sampling with hard one-hot choices."""

    name = "gdas"

    @property
    def tau(self) -> float:
        c = self.config
        span = max(1, c.epochs - 1)
        return c.tau_max - (c.tau_max - c.tau_min) * min(self.epoch, span) / span

    def sample(self) -> dict[str, CellArch]:
        """One Gumbel sample per cell type: the op index per edge and the straight-through hard weights."""
        archs = {}
        for cell_type, alpha in self.net.arch_logits().items():
            log_probs = F.log_softmax(alpha, dim=-1)
            while True:  # a Gumbel draw can overflow; redraw (as GDAS's code does)
                gumbel = -torch.empty_like(alpha).exponential_(generator=self.generator).log()
                probs = F.softmax((log_probs + gumbel) / self.tau, dim=-1)
                if torch.isfinite(probs).all():
                    break
            index = probs.argmax(-1)
            hard = F.one_hot(index, probs.shape[-1]).to(probs) - probs.detach() + probs
            archs[cell_type] = CellArch(choice=index.tolist(), hard=hard)
        return archs

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> StepResult:
        val_loss = val_correct = None
        if self.epoch >= self.config.weights_only_epochs:
            assert self.a_optimizer is not None
            self.a_optimizer.zero_grad(set_to_none=True)
            alphas = self.net.arch_parameters()
            logits = self.net(x_val, self.sample())
            loss = F.cross_entropy(logits, y_val)
            for penalty in (self.skip_penalty(), self.latency_penalty()):
                if penalty is not None:
                    loss = loss + penalty
            self.set_arch_grads(torch.autograd.grad(loss, alphas, allow_unused=True))
            self.a_optimizer.step()
            self.arch_step_taken()
            val_loss, val_correct = float(loss.detach()), int((logits.argmax(-1) == y_val).sum())
        with torch.no_grad():
            archs = {t: CellArch(choice=a.choice) for t, a in self.sample().items()}
        loss_w, correct = self.weight_step(x, y, archs)
        return StepResult(loss_w, correct, val_loss, val_correct, len(y))

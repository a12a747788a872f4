"""The one-shot method interface: a method owns a supernet and its optimizers, takes one search step on a training
batch and a validation batch, and says which genotype the supernet currently points to.

It is its own small interface (DESIGN: no stub methods on the multi-trial strategies).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.oneshot.distributed import current_world, wrap
from archsearch.oneshot.latency import LatencyTarget
from archsearch.oneshot.supernets import Supernet
from archsearch.options import internal, option, positive_int, register
from archsearch.spaces import Space

#: how SPOS samples the paths it trains (see OneShotConfig.path_sampling)
PATH_SAMPLING = ("fair", "uniform")


@register("oneshot")
@dataclass
class OneShotConfig:
    """Hyperparameters of a one-shot search (DARTS's defaults where they apply): the one-shot option group
    (:mod:`archsearch.options`), so each field with help text is also a flag of ``archsearch oneshot``."""

    epochs: int = option(50, "search epochs", parse=positive_int)
    batch_size: int = option(64, "batch size (each step takes one training and one validation batch)",
                             parse=positive_int)  # fmt: skip
    w_lr: float = option(0.025, "learning rate of the supernet's weights (cosine to w_lr_min)")
    w_lr_min: float = internal(0.001)
    w_momentum: float = internal(0.9)
    w_weight_decay: float = internal(3e-4)
    grad_clip: float = internal(5.0)
    alpha_lr: float = option(3e-4, "learning rate of the architecture weights (Adam)")
    alpha_weight_decay: float = internal(1e-3)
    # collapse control (DARTS): a differentiable penalty on skip-connection weight in the normal cell, and a stop
    # when the derived normal cell holds more than ``max_skips`` skip connections (flags of their own: their
    # defaults are the method's)
    skip_penalty: float = internal(0.0)
    max_skips: int | None = internal(None)
    # beta-DARTS's Beta-Decay regularisation (Ye et al. 2022): the weight, at the last epoch, of the mean over
    # edges of logsumexp(alpha) in the architecture loss, ramped linearly from 0 at the first epoch (a flag of its
    # own: its default is the method's)
    beta_decay: float = internal(0.0)
    # GDAS's temperature schedule
    tau_max: float = internal(10.0)
    tau_min: float = internal(0.1)
    weights_only_epochs: int = option(0, "epochs of weight training only, before architecture steps begin",
                                      old_flags=("--warmup-epochs",))  # fmt: skip
    # second-order DARTS: the finite-difference radius r of the Hessian-vector product (eps = r / |v|)
    fd_radius: float = internal(0.01)
    # SPOS's path sampling: "fair" (FairNAS's strict fairness: each step trains as many paths as the widest
    # decision has choices, every choice of every decision exactly once, gradients summed before one update) or
    # "uniform" (one uniformly sampled path per step, the original SPOS)
    path_sampling: str = option("fair", "SPOS: fair (FairNAS: every op of every edge trained once per step) or "
                                "uniform (one path)", choices=PATH_SAMPLING)  # fmt: skip
    # few-shot SPOS (a supernet built with few_shot_edge): the epoch from which the sub-supernets train apart
    # (None: half the epochs)
    few_shot_epoch: int | None = internal(None)
    seed: int = option(0, "random seed")


@dataclass
class StepResult:
    """Losses and accuracies of one search step (the weight step on training data, the arch step on validation)."""

    train_loss: float
    train_correct: int
    val_loss: float | None
    val_correct: int | None
    batch: int


class OneShotMethod(ABC):
    """Base: a supernet, SGD with cosine schedule for its weights, the method's own architecture update."""

    name: ClassVar[str]
    #: whether the method learns architecture parameters (SPOS does not)
    learns_arch: ClassVar[bool] = True
    #: whether the architecture step needs data apart from the weights' (the training split is halved)
    needs_validation_split: ClassVar[bool] = True
    #: collapse control on by default: a skip penalty of 0.1 and a stop above 2 skips in the normal cell (DARTS)
    collapse_control: ClassVar[bool] = False
    #: supernet options the method searches with unless told otherwise (PC-DARTS: partial channels)
    supernet_defaults: ClassVar[dict[str, Any]] = {}
    #: the genotype comes from a search over sub-networks with inherited weights, run above this package (SPOS)
    searches_subnetworks: ClassVar[bool] = False
    #: config values the method runs with unless told otherwise (beta-DARTS: its regularisation weight)
    config_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, supernet: Supernet, config: OneShotConfig, steps_per_epoch: int, space: Space[Any] | None = None
    ) -> None:
        self.net = supernet
        self.config = config
        self.world = current_world()  # under torchrun: this rank; the weight step goes through DDP
        self.forward_module = wrap(supernet, self.world)
        #: the supernet's weights (every parameter but the architecture's), listed once
        self.weights = list(supernet.weight_parameters())
        self.w_optimizer = torch.optim.SGD(
            self.weights,
            lr=config.w_lr,
            momentum=config.w_momentum,
            weight_decay=config.w_weight_decay,
        )
        self.schedule_steps = max(1, config.epochs * steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=self.schedule_steps, eta_min=config.w_lr_min
        )
        self.a_optimizer = (
            torch.optim.Adam(
                supernet.arch_parameters(),
                lr=config.alpha_lr,
                betas=(0.5, 0.999),
                weight_decay=config.alpha_weight_decay,
            )
            if self.learns_arch
            else None
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        #: a latency target the architecture step keeps the supernet's expected latency under (set by the search)
        self.latency: LatencyTarget | None = None

    @abstractmethod
    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> StepResult:
        """One search step: the architecture update on the validation batch, then the weight update."""

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (temperature schedules and the like)."""
        self.epoch = epoch

    def derive(self) -> Any:
        """The genotype the supernet points to now."""
        return self.net.derive()

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, archs: dict[str, Any] | None = None) -> tuple[float, int]:
        """SGD on the weights only; returns (loss, correct)."""
        self.w_optimizer.zero_grad(set_to_none=True)
        logits = self.forward_module(x, archs)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        for p in self.net.arch_parameters():
            p.grad = None
        nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_optimizer.step()
        self.scheduler.step()
        return float(loss.detach()), int((logits.argmax(-1) == y).sum())

    def skip_penalty(self) -> torch.Tensor | None:
        """The differentiable collapse penalty: summed softmax weight of ``skip_connect`` over the normal cell's
        edges (DARTS space) or the cell (NB201), times ``skip_penalty``."""
        if self.config.skip_penalty <= 0 or "skip_connect" not in self.net.op_names:
            return None
        k = self.net.op_names.index("skip_connect")
        cell_type = "normal" if "normal" in self.net.alphas else self.net.cell_types[0]
        return self.config.skip_penalty * F.softmax(self.net.alphas[cell_type], dim=-1)[:, k].sum()

    def beta_decay_loss(self) -> torch.Tensor | None:
        """beta-DARTS's Beta-Decay regulariser: ``beta_decay * epoch / (epochs - 1)`` (epochs counted from 0) times
        the mean over every cell type's edges of ``logsumexp(alpha)``. Its gradient, the softmax of the alphas,
        shrinks the strongest ops most, so no op's mixing weight runs away before the weights have learnt (the cause
        of DARTS's collapse the paper names); the weight ramps from 0 as the paper's schedule does, reaching
        ``beta_decay`` at the last epoch."""
        if self.config.beta_decay <= 0:
            return None
        ramp = self.config.beta_decay * self.epoch / max(1, self.config.epochs - 1)
        edges = torch.cat([torch.logsumexp(a, dim=-1) for a in self.net.arch_logits().values()])
        return ramp * edges.mean()

    def latency_penalty(self) -> torch.Tensor | None:
        """The latency target's term of the architecture loss (:mod:`archsearch.oneshot.latency`), if there is one."""
        return None if self.latency is None else self.latency.penalty(self.net)

    def arch_step_taken(self) -> None:
        """After each architecture step: the latency target's multiplier takes its step."""
        if self.latency is not None:
            self.latency.update()

    def set_arch_grads(self, grads: Sequence[torch.Tensor | None]) -> None:
        """Give the architecture parameters these gradients, averaged over the ranks (a missing one counts as 0)."""
        alphas = self.net.arch_parameters()
        filled = [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, grads)]
        for a, g in zip(alphas, self.world.average(filled)):
            a.grad = g

    # --- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Supernet, optimizers, schedule and random state: enough to continue the search identically."""
        return {
            "net": self.net.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "a_optimizer": None if self.a_optimizer is None else self.a_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "latency": None if self.latency is None else self.latency.state_dict(),
            **self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state made by :meth:`state_dict`."""
        self.net.load_state_dict(state["net"])
        self.w_optimizer.load_state_dict(state["w_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.T_max = self.schedule_steps  # a resume may have raised the epochs: anneal to the new end
        if self.a_optimizer is not None and state["a_optimizer"] is not None:
            self.a_optimizer.load_state_dict(state["a_optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch = state["epoch"]
        if self.latency is not None and state.get("latency") is not None:
            self.latency.load_state_dict(state["latency"])
        self.load_extra_state(state)

    def extra_state(self) -> dict[str, Any]:
        """The method's own state (override)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore :meth:`extra_state` (override)."""

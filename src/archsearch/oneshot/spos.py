"""Single-path one-shot (Guo et al. 2020): the supernet's weights train on sampled paths; no architecture
parameters. By default paths are sampled with FairNAS's strict fairness (Chu et al. 2021): each step draws, for every
decision, a random permutation of its choices, and path k takes the k-th choice of every permutation, so over one
step every op on every edge trains exactly once on the same batch (the gradients summed, then one update); uniform
sampling of one path per step (the original SPOS) is ``path_sampling="uniform"``.

The search afterwards is an ordinary multi-trial search (evolution by default) whose
evaluator scores sub-networks with inherited weights (:class:`archsearch.evaluators.supernet.SupernetEvaluator`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.oneshot.base import PATH_SAMPLING, OneShotConfig, OneShotMethod, StepResult
from archsearch.oneshot.few_shot import FewShotSupernet
from archsearch.oneshot.supernets import Supernet
from archsearch.spaces import Space

__all__ = ["PATH_SAMPLING", "Spos"]


class Spos(OneShotMethod):
    """Uniform single-path supernet training over the genotypes of ``space``."""

    name = "spos"
    learns_arch = False
    needs_validation_split = False  # no architecture step: the weights train on the whole training split
    searches_subnetworks = True

    def __init__(
        self, supernet: Supernet, config: OneShotConfig, steps_per_epoch: int, space: Space[Any] | None = None
    ) -> None:
        super().__init__(supernet, config, steps_per_epoch)
        if space is None:
            raise ValueError("SPOS samples paths of a space: pass space=")
        if config.path_sampling not in PATH_SAMPLING:
            raise ValueError(
                f"path sampling {config.path_sampling!r} is unknown; choose one of: {', '.join(PATH_SAMPLING)}"
            )
        self.space = space
        self.rng = np.random.default_rng(config.seed)
        widest = max(len(d.choices) for d in space.decisions(space.sample(np.random.default_rng(config.seed))))
        self.paths_per_step = widest if config.path_sampling == "fair" else 1

    def fair_paths(self) -> list[Any]:
        """``paths_per_step`` genotypes that together take every choice of every decision once (a decision with
        fewer choices than the widest one repeats its permutation)."""
        perms: dict[str, np.ndarray] = {}

        def chooser(k: int) -> Any:
            def choose(name: str, choices: Sequence[Any]) -> Any:
                perm = perms.setdefault(name, self.rng.permutation(len(choices)))
                if len(perm) != len(choices):  # a conditional decision whose choices differ between paths
                    return choices[int(self.rng.integers(len(choices)))]
                return choices[int(perm[k % len(choices)])]

            return choose

        return [self.space.decide(chooser(k)) for k in range(self.paths_per_step)]

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> StepResult:
        if self.paths_per_step == 1:
            archs = self.net.single_path(self.space.sample(self.rng))
            loss, correct = self.weight_step(x, y, archs)
            return StepResult(loss, correct, None, None, len(y))
        self.w_optimizer.zero_grad(set_to_none=True)
        total_loss, total_correct = 0.0, 0
        for genotype in self.fair_paths():
            logits = self.forward_module(x, self.net.single_path(genotype))
            loss = F.cross_entropy(logits, y)
            loss.backward()  # summed: each op's weights get exactly its own path's gradient (FairNAS)
            total_loss += float(loss.detach())
            total_correct += int((logits.argmax(-1) == y).sum())
        nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_optimizer.step()
        self.scheduler.step()
        # the loss and accuracy of the average path on this batch
        paths = self.paths_per_step
        return StepResult(total_loss / paths, round(total_correct / paths), None, None, len(y))

    def start_epoch(self, epoch: int) -> None:
        """A few-shot supernet splits at the start of epoch ``few_shot_epoch`` (default: half the epochs)."""
        super().start_epoch(epoch)
        split_at = self.config.epochs // 2 if self.config.few_shot_epoch is None else self.config.few_shot_epoch
        if isinstance(self.net, FewShotSupernet) and epoch >= split_at and not bool(self.net.is_split):
            self.net.split()

    def derive(self) -> Any:
        raise RuntimeError("SPOS has no architecture parameters; its genotype comes from the search over the supernet")

    def extra_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

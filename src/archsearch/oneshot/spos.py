"""Single-path one-shot (Guo et al. 2020): the supernet's weights train on one uniformly sampled path per step;
no architecture parameters. The search afterwards is an ordinary multi-trial search (evolution by default) whose
evaluator scores sub-networks with inherited weights (:class:`archsearch.evaluators.supernet.SupernetEvaluator`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from archsearch.oneshot.base import OneShotConfig, OneShotMethod, StepResult
from archsearch.oneshot.supernets import Supernet
from archsearch.spaces import Space


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
        self.space = space
        self.rng = np.random.default_rng(config.seed)

    def step(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> StepResult:
        archs = self.net.single_path(self.space.sample(self.rng))
        loss, correct = self.weight_step(x, y, archs)
        return StepResult(loss, correct, None, None, len(y))

    def derive(self) -> Any:
        raise RuntimeError("SPOS has no architecture parameters; its genotype comes from the search over the supernet")

    def extra_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]

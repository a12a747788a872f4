"""Weight-sharing evaluation: a genotype scored with the weights it inherits from a trained supernet, after its
batch-norm statistics are recalibrated on training batches (SPOS). Any multi-trial strategy can use it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch.data import Data
from archsearch.evaluators.base import Evaluator
from archsearch.oneshot.supernets import Supernet


class SupernetEvaluator(Evaluator):
    """``val_acc`` of the sub-network ``genotype`` inside ``supernet``: batch norms reset and re-estimated on
    ``calibration_batches`` training batches, then accuracy on the validation split (at most ``val_limit``)."""

    name = "supernet"

    def __init__(
        self,
        supernet: Supernet,
        data: Data,
        batch_size: int = 256,
        calibration_batches: int = 4,
        val_limit: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.net = supernet.to(device)
        self.device = torch.device(device)
        self.calibration = data.loader("train", batch_size, device, shuffle=True, seed=0)
        val = data.val if val_limit is None else data.val.subset(val_limit)
        self.val = type(self.calibration)(val, batch_size, data.mean, data.std, device)
        self.calibration_batches = calibration_batches

    @torch.no_grad()
    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        archs = self.net.single_path(genotype)
        norms = [m for m in self.net.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the calibration batches
        self.net.train()
        self.calibration.set_epoch(0)
        try:
            for i, (x, _) in enumerate(self.calibration):
                if i >= self.calibration_batches:
                    break
                self.net(x, archs)
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
        self.net.eval()
        correct = total = 0
        for x, y in self.val:
            correct += int((self.net(x, archs).argmax(-1) == y).sum())
            total += len(y)
        self.net.train()
        return {"val_acc": 100.0 * correct / max(1, total)}


class StandaloneSupernetEvaluator(SupernetEvaluator):
    """A :class:`SupernetEvaluator` whose sub-networks also build stand-alone as ``table`` (a latency table of the
    supernet's space) builds them, so a search over them can limit what a built network costs (``latency_ms`` from
    the table, params, FLOPs)."""

    def __init__(self, supernet: Supernet, data: Data, table: Any, **options: Any) -> None:
        super().__init__(supernet, data, **options)
        self.table = table

    def network(self, genotype: Any, seed: int | None = None) -> tuple[nn.Module, tuple[int, int, int]]:
        """The stand-alone network of ``genotype`` at the table's input, classes and build, and its input shape."""
        return self.table.network(genotype, self.net.space, seed), tuple(self.table.input_shape)

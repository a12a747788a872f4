"""Your own evaluator: a plain function from an architecture to metrics, registered by name.

    python examples/own_evaluator.py

This one trains each network for a few hundred steps with its own PyTorch loop on the embedded digits data and
reports validation accuracy and the parameter count (recorded with every trial).
Any function ``f(genotype, space, **options) -> {"val_acc": ..., ...}`` works; options given to the search
(``evaluator_options``) reach it as keyword arguments.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import archsearch
from archsearch import register_evaluator
from archsearch.data import load_dataset


@register_evaluator
def quick_digits(genotype: Any, space: Any, steps: int = 100, seed: int = 0) -> dict[str, float]:
    """Validation accuracy on digits after ``steps`` SGD steps of batch 64, and the parameter count."""
    data = load_dataset("digits")
    torch.manual_seed(seed)
    net = space.build(genotype, data.in_channels, data.num_classes, data.input_size, seed=seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    batches = data.loader("train", 64, shuffle=True, seed=seed)
    step = 0
    while step < steps:
        for x, y in batches:
            out = net(x)
            loss = F.cross_entropy(out[0] if isinstance(out, tuple) else out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x).argmax(-1) == y).sum()) for x, y in data.loader("val", 256))
    return {"val_acc": 100.0 * correct / len(data.val), "params": float(sum(p.numel() for p in net.parameters()))}


if __name__ == "__main__":
    result = archsearch.search(space="nb201", strategy="random", budget=3, evaluator="quick_digits",
                               evaluator_options={"steps": 20}, seed=1)  # fmt: skip
    best = result.winner
    print(f"best: {best.genotype}  val_acc {best.metrics['val_acc']:.2f}%, {best.metrics['params']:,.0f} params")
    print(f"run: {result.run_dir}  (archsearch show / report / export read it)")

"""Your own search space in a few lines: a stack of convolutional blocks, searched by regularized evolution on the
embedded digits data.

    python examples/own_space.py

A ``ChoiceSpace`` is a table of decisions plus a ``build_network``; registering it makes it a space like the
built-in ones (every strategy, evaluator, the store, resume and the command line find it by name).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

import archsearch
from archsearch import Choices, ChoiceSpace, register_space


@register_space
class ConvBlocks(ChoiceSpace):
    """Three conv blocks, each with its own kernel size and width, optionally followed by max pooling."""

    name = "conv_blocks"
    description = "3 conv blocks: kernel 3/5, width 8/16/32, pooling after or not (216 networks)"
    choices: ClassVar[dict[str, tuple[Any, ...]]] = {
        **{f"kernel{i}": (3, 5) for i in range(3)},
        **{f"width{i}": (8, 16, 32) for i in range(3)},
        **{f"pool{i}": (False, True) for i in range(3)},
    }

    def build_network(
        self, genotype: Choices, in_channels: int, num_classes: int, input_size: int, **options: Any
    ) -> nn.Module:
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(3):
            width, kernel = genotype[f"width{i}"], genotype[f"kernel{i}"]
            layers += [nn.Conv2d(channels, width, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]  # fmt: skip
            if genotype[f"pool{i}"]:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
        return nn.Sequential(*layers)

    def complexity(self, genotype: Choices) -> float:
        return float(sum(genotype[f"width{i}"] * genotype[f"kernel{i}"] ** 2 for i in range(3)))


if __name__ == "__main__":
    result = archsearch.search(space="conv_blocks", strategy="evolution", dataset="digits", budget=6,
                               evaluator_options={"epochs": 2})  # fmt: skip
    print(f"best: {result.winner.genotype}  val_acc {result.winner.metrics['val_acc']:.2f}%")
    print(f"run: {result.run_dir}  (archsearch show / report / export read it)")

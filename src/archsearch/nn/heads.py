"""Classifier heads: global-pool + linear, and DARTS's auxiliary head."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """Global average pool, flatten, linear layer."""

    def __init__(self, C: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary head, built for the feature size it will see.

    At 8x8 (CIFAR at 2/3 depth) it pools exactly as DARTS does (5x5, stride 3, to 2x2); at other sizes it pools
    adaptively to 2x2, so 28x28 and 8x8 inputs work too. Parameters are identical either way.
    """

    def __init__(self, C: int, num_classes: int, feature_size: int) -> None:
        super().__init__()
        pool: nn.Module
        if feature_size == 8:
            pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        else:
            pool = nn.AdaptiveAvgPool2d(2)
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            pool,
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))

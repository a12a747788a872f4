"""The hand-designed baseline CNN, which every report compares a found architecture against."""

from __future__ import annotations

import torch
from torch import nn

from archsearch.nn.ops import ConvBNReLU
from archsearch.registry import Registry


class BaselineCNN(nn.Module):
    """Three blocks of two conv-BN-ReLU and a 2x2 max-pool at 64/128/256 channels, global average pool, then a
    256-128-``num_classes`` classifier with dropout."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: tuple[int, int, int] = (64, 128, 256),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [ConvBNReLU(c, w, 3), ConvBNReLU(w, w, 3), nn.MaxPool2d(2, ceil_mode=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


MODELS: Registry[type[nn.Module]] = Registry("model")
MODELS.add("baseline", BaselineCNN)


def build_model(name: str, in_channels: int, num_classes: int, seed: int | None = None) -> nn.Module:
    """A named hand-designed model; with ``seed``, its weights are drawn without touching the global RNG."""
    cls = MODELS.get(name)
    if seed is None:
        return cls(in_channels=in_channels, num_classes=num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(in_channels=in_channels, num_classes=num_classes)

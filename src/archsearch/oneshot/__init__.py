"""One-shot (weight-sharing) search: a supernet holds every candidate, a method trains it and derives a genotype.

Methods are registered by name (one file each, their defaults as class attributes); supernets by the space they
search (:data:`archsearch.oneshot.supernets.SUPERNETS`). Nothing here imports from the layers above (experiment,
strategies, evaluators, objectives, api, cli): SPOS's search over sub-networks and retraining live in
:mod:`archsearch.api`.
"""

from __future__ import annotations

from typing import Any

from archsearch import options
from archsearch.oneshot.base import OneShotConfig, OneShotMethod
from archsearch.oneshot.block_supernets import MacroSupernet, MobileSupernet
from archsearch.oneshot.darts import BetaDarts, Darts
from archsearch.oneshot.darts2 import DartsSecondOrder
from archsearch.oneshot.gdas import Gdas
from archsearch.oneshot.pcdarts import PCDarts
from archsearch.oneshot.spos import Spos
from archsearch.oneshot.supernets import SUPERNETS, Supernet, build_supernet
from archsearch.registry import Registry
from archsearch.spaces.macro import MacroSpace
from archsearch.spaces.mobile import MobileSpace

METHODS: Registry[type[OneShotMethod]] = Registry("one-shot method")
for _method in (Darts, DartsSecondOrder, PCDarts, BetaDarts, Gdas, Spos):
    METHODS.add(_method.name, _method)
SUPERNETS.add(MobileSpace.name, MobileSupernet)
SUPERNETS.add(MacroSpace.name, MacroSupernet)


def default_config(method: str, **overrides: Any) -> OneShotConfig:
    """The config ``method`` runs with by default: with its class's ``collapse_control`` on, a skip penalty of 0.1
    and a stop at more than 2 skip connections in the normal cell; then its class's ``config_defaults``;
    ``overrides`` win."""
    cls = METHODS.get(method)
    base: dict[str, Any] = {"skip_penalty": 0.1, "max_skips": 2} if cls.collapse_control else {}
    config: OneShotConfig = options.make(options.group("oneshot"), None, f"the {method} config",
                                         **{**base, **cls.config_defaults, **overrides})  # fmt: skip
    return config


def supports(method: str, space: str) -> bool:
    """Whether ``space``'s supernet takes what ``method`` builds it with (PC-DARTS's partial channels need a cell
    supernet)."""
    supernet = SUPERNETS.get(space)
    return not supernet.options or set(METHODS.get(method).supernet_defaults) <= set(supernet.options)


__all__ = ["METHODS", "SUPERNETS", "OneShotConfig", "OneShotMethod", "Supernet", "build_supernet", "default_config",
           "supports"]  # fmt: skip

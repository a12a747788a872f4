"""PC-DARTS (Xu et al. 2020): DARTS's first-order step on a supernet that sends 1/K of the channels through the ops
(with a channel shuffle) and normalises each node's inputs by edge weights; both are the supernet's options."""

from __future__ import annotations

from typing import Any, ClassVar

from archsearch.oneshot.darts import Darts


class PCDarts(Darts):
    """PC-DARTS: DARTS's first-order step; its supernet has partial channels (K = 4) and edge normalisation."""

    name = "pcdarts"
    supernet_defaults: ClassVar[dict[str, Any]] = {"partial": 4, "edge_norm": True}

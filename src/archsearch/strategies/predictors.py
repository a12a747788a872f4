"""Learned performance predictors: fitted on (encoding, metric) pairs of evaluated trials, they predict a mean and an
uncertainty for genotypes not yet evaluated.

- ``mlp``: an ensemble of small MLPs (BANANAS, White et al. 2021) that differ in their initial weights; all members
  train at once as one batched computation. The spread of the members is the uncertainty.
- ``gbt``: gradient-boosted trees (scikit-learn), an ensemble over row subsamples for the uncertainty.

Features are the space's :meth:`~archsearch.spaces.Space.encode`, optionally followed by zero-cost scores.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from archsearch.errors import ArchsearchError
from archsearch.registry import Registry


class Predictor(ABC):
    """Fit on features ``x`` (n, d) and targets ``y`` (n,); predict mean and standard deviation."""

    name: str

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray) -> Predictor:
        """Fit on ``x`` and ``y``; returns self."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the prediction for each row of ``x``."""

    @staticmethod
    def _check(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y.shape != (len(x),):
            raise ArchsearchError(f"predictor needs x of shape (n, d) and y of shape (n,), got {x.shape}, {y.shape}")
        if len(x) < 2:
            raise ArchsearchError(f"a predictor needs at least 2 evaluated architectures, got {len(x)}")
        if not np.all(np.isfinite(y)):
            raise ArchsearchError("predictor targets must be finite")
        return x, y


def _adam(params: list[torch.Tensor], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam as one fused kernel where this PyTorch has it on CPU (2.4+): the tensors are tiny, so the per-tensor
    update loop would cost more than the network."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class MLPEnsemble(Predictor):
    """``members`` MLPs with ``layers`` hidden layers of ``hidden`` units (ReLU), trained full-batch with Adam for
    ``steps`` steps on standardised targets."""

    name = "mlp"

    def __init__(
        self,
        members: int = 5,
        hidden: int = 32,
        layers: int = 2,
        steps: int = 100,
        lr: float = 0.03,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        self.members, self.hidden, self.layers = members, hidden, layers
        self.steps, self.lr, self.weight_decay, self.seed = steps, lr, weight_decay, seed
        self.params: list[torch.Tensor] = []
        self.y_mean, self.y_std = 0.0, 1.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(self.members, *x.shape)  # (members, n, d)
        ps = self.params
        for i in range(0, len(ps) - 2, 2):
            h = torch.relu(torch.baddbmm(ps[i + 1], h, ps[i]))
        return torch.baddbmm(ps[-1], h, ps[-2])[..., 0]  # (members, n)

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        x, y = self._check(x, y)
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        gen = torch.Generator().manual_seed(self.seed)
        sizes = [x.shape[1]] + [self.hidden] * self.layers + [1]
        self.params = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / fan_in**0.5
            w = (torch.rand(self.members, fan_in, fan_out, generator=gen) * 2 - 1) * bound
            b = (torch.rand(self.members, 1, fan_out, generator=gen) * 2 - 1) * bound
            self.params += [w.requires_grad_(), b.requires_grad_()]
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        opt = _adam(self.params, self.lr, self.weight_decay)
        for _ in range(self.steps):
            opt.zero_grad(set_to_none=True)
            loss = (self._forward(xt) - yt).pow(2).mean(1).sum()
            loss.backward()
            opt.step()
        return self

    def member_predictions(self, x: np.ndarray) -> np.ndarray:
        """Each member's prediction, shape (members, n), in the target's units."""
        if not self.params:
            raise ArchsearchError("the predictor is not fitted yet")
        with torch.no_grad():
            out = self._forward(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()
        return out * self.y_std + self.y_mean

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self.member_predictions(x)
        return preds.mean(0), preds.std(0)


class GBTEnsemble(Predictor):
    """``members`` scikit-learn gradient-boosted tree regressors, each on a different random row subsample."""

    name = "gbt"

    def __init__(
        self, members: int = 5, trees: int = 100, depth: int = 3, lr: float = 0.1, subsample: float = 0.8, seed: int = 0
    ) -> None:
        self.members, self.trees, self.depth, self.lr, self.subsample, self.seed = (
            members,
            trees,
            depth,
            lr,
            subsample,
            seed,
        )
        self.models: list[Any] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> GBTEnsemble:
        from sklearn.ensemble import GradientBoostingRegressor

        x, y = self._check(x, y)
        self.models = [
            GradientBoostingRegressor(
                n_estimators=self.trees,
                max_depth=self.depth,
                learning_rate=self.lr,
                subsample=self.subsample,
                random_state=self.seed + i,
            ).fit(x, y)
            for i in range(self.members)
        ]
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.models:
            raise ArchsearchError("the predictor is not fitted yet")
        preds = np.stack([m.predict(np.asarray(x, dtype=np.float32)) for m in self.models])
        return preds.mean(0), preds.std(0)


PREDICTORS: Registry[type[Predictor]] = Registry("predictor")
PREDICTORS.add("mlp", MLPEnsemble)
PREDICTORS.add("gbt", GBTEnsemble)


def make_predictor(name: str, seed: int = 0, **options: Any) -> Predictor:
    """A registered predictor by name."""
    return PREDICTORS.get(name)(seed=seed, **options)  # type: ignore[call-arg]


def signed_log(values: np.ndarray) -> np.ndarray:
    """sign(v) * log(1 + |v|): zero-cost scores span many orders of magnitude (synflow reaches 1e30)."""
    return np.sign(values) * np.log1p(np.abs(values))


ENCODINGS = ("path", "onehot")


def features(space: Any, genotypes: Sequence[Any], zero_cost: Any = None, encoding: str = "path") -> np.ndarray:
    """The predictor's input rows: each genotype's encoding (``path``: the space's path encoding where it has one,
    else ``onehot``: :meth:`~archsearch.spaces.Space.encode`), then (with a zero-cost evaluator) its proxy scores on a
    signed log scale."""
    if encoding not in ENCODINGS:
        raise ArchsearchError(f"unknown encoding {encoding!r} (allowed: {', '.join(ENCODINGS)})")
    encode = space.encode_paths if encoding == "path" else space.encode
    rows = np.stack([encode(g) for g in genotypes]).astype(np.float32)
    if zero_cost is None:
        return rows
    extra = []
    for g in genotypes:
        scores = zero_cost.evaluate(g)
        extra.append([scores[f"zc_{p}"] for p in zero_cost.proxies])
    return np.concatenate([rows, signed_log(np.asarray(extra)).astype(np.float32)], 1)


def fit_from_store(
    store: Any,
    space: Any,
    predictor: str | Predictor = "mlp",
    metric: str = "val_acc",
    zero_cost: Any = None,
    seed: int = 0,
    encoding: str = "path",
) -> Predictor:
    """A predictor fitted on every completed trial of ``store`` that reports ``metric`` (per architecture, the
    trial at the highest fidelity), so a resumed search refits on everything recorded."""
    from archsearch.trial import COMPLETE

    best: dict[str, Any] = {}
    for t in store.trials(space.from_json, status=COMPLETE):
        if metric not in t.metrics:
            continue
        held = best.get(t.key)
        if held is None or (t.fidelity or 0) >= (held.fidelity or 0):
            best[t.key] = t
    if len(best) < 2:
        raise ArchsearchError(f"the store holds {len(best)} completed trial(s) with {metric!r}; a predictor needs 2")
    trials = list(best.values())
    model = make_predictor(predictor, seed=seed) if isinstance(predictor, str) else predictor
    x = features(space, [t.genotype for t in trials], zero_cost, encoding)
    return model.fit(x, np.array([t.metrics[metric] for t in trials]))

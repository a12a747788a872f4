"""Zero-cost proxies: scores of an *untrained* network from one batch (or none) of data, for any ``nn.Module``.

Each proxy follows its paper and NASLib's conventions (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight
NAS"; Mellor et al. 2021 for ``jacov`` and ``nwot``); the sums run over the weights of convolution and linear layers.

- ``synflow``: data-independent. BN layers are bypassed, every parameter replaced by its absolute value, the
  network run in double precision (against overflow) on an all-ones input, and the score is
  sum |theta * dR/dtheta| for R the summed output; the signs and dtype are restored afterwards.
- ``snip``: sum |theta * dL/dtheta|. ``grasp``: -sum theta * (H g). ``fisher``: per channel of each layer's output,
  0.5 * mean over the batch of (sum over positions of activation * gradient)^2, summed. ``grad_norm``: the sum of
  each layer's gradient norm. ``l2_norm``: the sum of each layer's weight norm.
- ``jacov``: minus the sum of log(v + k) + 1 / (v + k) over the eigenvalues v of the correlation matrix of the
  input-Jacobians of the batch (k = 1e-5). ``nwot``: log-determinant of the kernel of binary ReLU activation codes
  (NASWOT); on a module with no activation modules the signs of its conv/linear outputs stand in for the codes.
- ``params`` and ``flops``: the baselines every proxy must beat.

:func:`score_model` scores a deep copy, so the caller's module (weights, gradients, BN statistics) is untouched.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.costs import count_flops, count_params
from archsearch.errors import ArchsearchError
from archsearch.evaluators.base import Evaluator
from archsearch.registry import Registry

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Proxy:
    """A named zero-cost scorer: ``fn(model, x, y)``; ``needs_data`` says whether the batch's values matter."""

    name: str
    fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
    needs_data: bool


PROXIES: Registry[Proxy] = Registry("zero-cost proxy")
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.ELU)


def _proxy(name: str, needs_data: bool = True) -> Callable[[Callable[..., float]], Callable[..., float]]:
    def register(fn: Callable[..., float]) -> Callable[..., float]:
        PROXIES.add(name, Proxy(name, fn, needs_data))
        return fn

    return register


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The convolution and linear layers whose weights the proxies sum over."""
    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    return [m for m in model.modules() if isinstance(m, kinds) and m.weight is not None and m.weight.requires_grad]


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return out[0] if isinstance(out, (tuple, list)) else out


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_logits(model, x), y)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    weights = [m.weight for m in weighted_layers(model)]
    if not weights:
        raise ArchsearchError("the network has no convolution or linear layer for the proxy to score")
    return weights


def _backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Weights of the scored layers after one backward pass of the loss (their ``.grad`` filled)."""
    model.zero_grad(set_to_none=True)
    _loss(model, x, y).backward()
    return [w for w in _weights(model) if w.grad is not None]


@_proxy("synflow", needs_data=False)
def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow (Tanaka et al. 2020) as described in the module docstring."""
    dtype = next(model.parameters()).dtype
    was_training = model.training
    signs = {}
    hooks = [
        m.register_forward_hook(lambda _m, inputs, _out: inputs[0])
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    try:
        model.double().eval()
        with torch.no_grad():
            for name, p in model.state_dict().items():
                if p.is_floating_point():
                    signs[name] = torch.sign(p)
                    p.abs_()
        model.zero_grad(set_to_none=True)
        ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
        _logits(model, ones).sum().backward()
        total = sum(float((w.detach() * w.grad).abs().sum()) for w in _weights(model) if w.grad is not None)
    finally:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for name, p in model.state_dict().items():
                if name in signs:
                    p.mul_(signs[name])
        model.to(dtype).train(was_training)
    if not math.isfinite(total):
        raise ArchsearchError(
            "synflow overflowed even in double precision (the network is too deep for its weight scale)"
        )
    return total


@_proxy("snip")
def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity (Lee et al. 2019): sum |theta * dL/dtheta|."""
    return sum(float((w.detach() * w.grad).abs().sum()) for w in _backward(model, x, y))  # type: ignore[operator]


@_proxy("grad_norm")
def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over layers of the norm of the loss gradient."""
    return sum(float(w.grad.norm()) for w in _backward(model, x, y))  # type: ignore[union-attr]


@_proxy("grasp")
def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Gradient signal preservation (Wang et al. 2020): -sum theta * (H g), the Hessian-gradient product by double
    backpropagation."""
    weights = _weights(model)
    model.zero_grad(set_to_none=True)
    g = torch.autograd.grad(_loss(model, x, y), weights, allow_unused=True)
    pairs = [(w, gi.detach()) for w, gi in zip(weights, g) if gi is not None]
    live = [w for w, _ in pairs]
    g2 = torch.autograd.grad(_loss(model, x, y), live, create_graph=True)
    z = sum((a * b).sum() for a, (_, b) in zip(g2, pairs))
    hg = torch.autograd.grad(z, live)  # type: ignore[arg-type]
    return -sum(float((w.detach() * h).sum()) for w, h in zip(live, hg))  # type: ignore[operator]


@_proxy("fisher")
def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fisher information of each layer's output channels (Theis et al. 2018, as in Turner et al.'s BlockSwap)."""
    acts: list[torch.Tensor] = []

    def keep(_m: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
        acts.append(out)
        return out * 1.0  # later in-place ops change the copy, not the tensor whose gradient is taken

    hooks = [m.register_forward_hook(keep) for m in weighted_layers(model)]
    try:
        loss = _loss(model, x, y)
    finally:
        for h in hooks:
            h.remove()
    if not acts:
        raise ArchsearchError("the network has no convolution or linear layer for the proxy to score")
    grads = torch.autograd.grad(loss, acts, allow_unused=True)
    total = 0.0
    for a, g in zip(acts, grads):
        if g is None:
            continue
        per_channel = (a * g).sum(dim=tuple(range(2, a.dim()))) if a.dim() > 2 else a * g
        total += float(0.5 * per_channel.detach().pow(2).mean(0).sum())
    return total


@_proxy("jacov")
def jacov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al. 2020, v1)."""
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = _logits(model, x)
    out.backward(torch.ones_like(out))
    jac = x.grad.reshape(len(x), -1).double().cpu().numpy()  # type: ignore[union-attr]
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.nan_to_num(np.corrcoef(jac), nan=0.0)
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(np.abs(v) + k) + 1.0 / (np.abs(v) + k)))


@_proxy("nwot")
def nwot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): log|K| with K_ij the number of activation units on which inputs i and j agree
    (both active or both inactive)."""
    kernel = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)
    sources = [m for m in model.modules() if isinstance(m, _ACTIVATIONS)] or weighted_layers(model)

    def count(_m: nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        # agreements = both active + both inactive = 2 c.c' - |c| - |c'| + units: one product, not two; in float32
        # where every count is an integer it holds exactly (below 2**24), else in float64
        active = out.detach().reshape(len(x), -1) > 0
        units = active.shape[1]
        codes = active.to(torch.float32 if units < 2**24 else torch.float64)
        both = (codes @ codes.T).double()
        ones = active.sum(1, dtype=torch.float64)
        kernel.add_(2 * both - ones[:, None] - ones[None, :] + units)

    hooks = [m.register_forward_hook(count) for m in sources]
    try:
        with torch.no_grad():
            _logits(model, x)
    finally:
        for h in hooks:
            h.remove()
    return float(torch.linalg.slogdet(kernel)[1])


@_proxy("l2_norm", needs_data=False)
def l2_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over layers of the weight norm."""
    return sum(float(w.detach().norm()) for w in _weights(model))


@_proxy("params", needs_data=False)
def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Parameter count (a baseline)."""
    return float(count_params(model))


@_proxy("flops", needs_data=False)
def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Multiply-adds of one forward pass on one input (a baseline)."""
    return float(count_flops(model, tuple(x.shape[1:]), x.device))


def parse_proxies(text: str | Sequence[str]) -> list[str]:
    """Proxy names from ``"synflow,nwot"`` or a list, each checked against the registry."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise ArchsearchError(f"no proxy named (allowed: {', '.join(PROXIES)})")
    for n in names:
        PROXIES.get(n)
    return names


def score_model(model: nn.Module, proxy: str, batch: Batch, seed: int = 0, keep: bool = True) -> float:
    """``proxy``'s score of ``model`` on ``batch`` (the seed fixes any randomness in the forward pass, such as
    dropout). ``keep``: score a deep copy, so ``model`` stays as it was (a proxy may change its weights); off for
    a network scored last and then dropped."""
    spec = PROXIES.get(proxy)
    x, y = batch
    net = (copy.deepcopy(model) if keep else model).to(x.device)
    net.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        value = spec.fn(net, x, y)
    if not math.isfinite(value):
        raise ArchsearchError(f"proxy {proxy!r} gave a non-finite score ({value})")
    return value


def rank_average(scores: Sequence[Sequence[float]]) -> np.ndarray:
    """The ensemble of several proxies: for each architecture, the mean over proxies of its rank (0..1, higher is
    better) among the scored architectures. ``scores[p][i]`` is proxy p's score of architecture i."""
    from scipy.stats import rankdata

    mat = np.asarray(scores, dtype=float)
    if mat.ndim != 2 or mat.shape[1] == 0:
        raise ArchsearchError("the ensemble needs at least one architecture scored by every proxy")
    ranks = np.stack([(rankdata(row) - 1) / max(1, mat.shape[1] - 1) for row in mat])
    return ranks.mean(0)


class ZeroCostEvaluator(Evaluator):
    """Scores genotypes of ``space`` with zero-cost proxies instead of training: each network built with seeded
    initial weights, scored on one seeded training batch of ``dataset``.

    With one proxy, ``zc_score`` is its score. With several, ``zc_score`` is their ensemble: the mean over proxies of
    the fraction of a fixed reference sample (``reference`` random genotypes, scored once) that the genotype beats,
    so a score does not depend on what else was evaluated. Every proxy's own score is reported as ``zc_<name>``.
    """

    name = "zero_cost"
    max_fidelity = None

    def __init__(
        self,
        space: Any,
        proxy: str | Sequence[str] = "synflow",
        dataset: Any = "digits",
        data_dir: str | None = None,
        batch_size: int = 64,
        build: dict[str, Any] | None = None,
        reference: int = 32,
        image_size: int | None = None,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        from archsearch.data import Data, load_dataset
        from archsearch.devices import check_device
        from archsearch.spaces import get_space

        check_device(device)
        self.space = get_space(space)
        self.proxies = parse_proxies(proxy)
        self.data = dataset if isinstance(dataset, Data) else load_dataset(dataset, data_dir, image_size=image_size)
        self.build_options = self.space.current_build_options(build)  # recorded before a rename: today's names
        self.seed = seed
        self.batch = first_batch(self.data, batch_size, seed, device)
        self.reference: list[np.ndarray] = []
        if len(self.proxies) > 1:
            rng = np.random.default_rng(seed)
            ref = [self._scores(self.space.sample(rng)) for _ in range(reference)]
            self.reference = [np.sort([r[p] for r in ref]) for p in self.proxies]

    def _scores(self, genotype: Any) -> dict[str, float]:
        c, size, _ = self.data.input_shape
        net = self.space.build(genotype, c, self.data.num_classes, size, seed=self.seed, **self.build_options)
        last = len(self.proxies) - 1
        return {p: score_model(net, p, self.batch, self.seed, keep=i < last) for i, p in enumerate(self.proxies)}

    def evaluate(self, genotype: Any, fidelity: float | None = None, seed: int | None = None) -> dict[str, float]:
        """``zc_score`` and ``zc_<proxy>`` of ``genotype`` (``fidelity`` and ``seed`` are not used: the scores
        are fixed by the evaluator's own seed)."""
        scores = self._scores(genotype)
        out = {f"zc_{p}": v for p, v in scores.items()}
        if self.reference:
            pairs = zip(self.proxies, self.reference)
            beats = [np.searchsorted(ref, scores[p], side="right") / len(ref) for p, ref in pairs]
            out["zc_score"] = float(np.mean(beats))
        else:
            out["zc_score"] = scores[self.proxies[0]]
        return out


def first_batch(data: Any, batch_size: int, seed: int = 0, device: str | torch.device = "cpu") -> Batch:
    """One seeded, normalised training batch of ``data`` (no augmentation)."""
    loader = data.loader("train", batch_size, device, shuffle=True, seed=seed)
    loader.set_epoch(0)
    return next(iter(loader))


def prefilter(
    space: Any,
    genotypes: Sequence[Any],
    proxy: str | Sequence[str],
    top: int,
    data: Any,
    batch_size: int = 64,
    build: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[tuple[Any, float]]:
    """Score many, keep the best: the ``top`` of ``genotypes`` by the proxy (or the rank ensemble of several),
    best first, each with its score; train only these."""
    evaluator = ZeroCostEvaluator(space, proxy, data, batch_size=batch_size, build=build, reference=0, seed=seed)
    per_arch = [evaluator._scores(g) for g in genotypes]
    if len(evaluator.proxies) == 1:
        combined = np.array([s[evaluator.proxies[0]] for s in per_arch])
    else:
        combined = rank_average([[s[p] for s in per_arch] for p in evaluator.proxies])
    order = np.argsort(-combined, kind="stable")[:top]
    return [(genotypes[i], float(combined[i])) for i in order]

"""REINFORCE with an LSTM controller (Zoph & Le 2017; ENAS's controller shape) over the space's decision view.

The controller emits the genotype's decisions token by token: each step feeds the embedding of the previous choice
into an LSTM cell, and a head for that decision's name gives the choice probabilities.
Policy gradient against an exponential moving-average baseline, with an entropy bonus. Results are buffered and the
controller takes one Adam step per ``batch`` scored trials (Zoph & Le's batched updates), which keeps the
strategy's cost per trial small; ``batch=1`` updates after every result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from archsearch.strategies.base import Strategy
from archsearch.strategies.controller import LSTMController
from archsearch.trial import Trial


class Reinforce(Strategy):
    """Policy-gradient controller; ``lr`` Adam step size, ``entropy_weight`` bonus, ``baseline_decay`` EMA,
    ``batch`` scored trials per update."""

    name = "reinforce"
    stable_state_keys = ("controller", "replay")

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        hidden: int = 32,
        lr: float = 0.02,
        entropy_weight: float = 0.05,
        baseline_decay: float = 0.9,
        temperature: float = 1.0,
        batch: int = 8,
    ) -> None:
        super().__init__(space, seed)
        if batch < 1:
            raise ValueError(f"reinforce batch must be >= 1, got {batch}")
        self.batch = batch
        self.buffer: list[tuple[Any, float]] = []  # (genotype, advantage / scale) awaiting the next update
        self.queue: list[Any] = []  # sampled, not yet asked for
        self._signature: list[tuple[str, tuple[Any, ...]]] | None = None
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.controller = LSTMController(hidden, lr=lr, temperature=temperature, seed=seed)
        self.sample_rng = np.random.default_rng([seed, 1])
        self.baseline: float | None = None
        self.scale: float | None = None
        # Saved state: a full controller checkpoint (weights and Adam moments, about 100 KB) plus the updates made
        # since, which a resume replays; writing the checkpoint only every ``checkpoint_every`` updates keeps the
        # per-trial save small. Replaying the same NumPy steps on the same weights gives the same floats.
        self.checkpoint_every = 32
        self._checkpoint: dict[str, Any] | None = None
        self._replay: list[list[list[Any]]] = []  # per update since the checkpoint: [genotype JSON, weight] pairs

    def _sample(self) -> Any:
        choose_index = self.controller.step_sampler(self.sample_rng)
        return self.space.decide(lambda name, choices: choices[choose_index(name, len(choices))])

    def _sample_batch(self, n: int) -> list[Any]:
        """``n`` genotypes from the current policy; drawn together, one controller pass for all, when the space's
        decisions are fixed (each row is an independent draw, as one-by-one sampling gives)."""
        if not self.space.fixed_decisions or n == 1:
            return [self._sample() for _ in range(n)]
        if self._signature is None:
            example = self.space.sample(np.random.default_rng(0))
            self._signature = [(d.name, tuple(d.choices)) for d in self.space.decisions(example)]
        rows = self.controller.sample([(name, len(c)) for name, c in self._signature], n, self.sample_rng)
        return [
            self.space.from_decisions({name: choices[i] for (name, choices), i in zip(self._signature, row)})
            for row in rows.tolist()
        ]

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            if not self.queue:  # a batch of samples from the current policy, as many as one update uses
                self.queue = self._sample_batch(self.batch)
            g = self.queue.pop(0)
            self.asked.add(g.key)
            out.append(g)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            if t.score is None:
                continue
            score = float(t.score)
            if self.baseline is None:
                self.baseline, self.scale = score, 1.0
            advantage = score - self.baseline
            self.scale = self.baseline_decay * self.scale + (1 - self.baseline_decay) * abs(advantage)  # type: ignore[operator]
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * score
            self.buffer.append((t.genotype, advantage / max(self.scale, 1e-8)))  # type: ignore[arg-type]
        if len(self.buffer) >= self.batch:
            self._update()

    def policy_loss_and_grads(self, genotypes: Sequence[Any], weights: Sequence[float]) -> tuple[float, np.ndarray]:
        """Mean over ``genotypes`` of ``-weight * log p(genotype) - entropy_weight * entropy`` under the controller
        (teacher forcing) and its gradients; genotypes with the same decision sequence go through in one batch."""
        groups: dict[tuple[tuple[str, int], ...], list[tuple[list[int], float]]] = {}
        for g, w in zip(genotypes, weights):
            decisions = self.space.decisions(g)
            signature = tuple((d.name, len(d.choices)) for d in decisions)
            groups.setdefault(signature, []).append(([d.choices.index(d.value) for d in decisions], float(w)))
        loss, grad = 0.0, None
        for signature, members in groups.items():
            chosen = np.array([idx for idx, _ in members], dtype=np.int64)
            group_weights = np.array([w for _, w in members])
            group_loss, group_grad = self.controller.loss_and_grads(
                signature, chosen, group_weights, self.entropy_weight, len(genotypes)
            )
            loss += group_loss
            if grad is not None and grad.size < group_grad.size:  # a later group added a head
                grad = np.concatenate([grad, np.zeros(group_grad.size - grad.size)])
            grad = group_grad if grad is None else grad + group_grad
        assert grad is not None, "no genotypes to score"
        return loss, grad

    def _update(self) -> None:
        """One policy-gradient step on the buffered results."""
        self._step(self.buffer)
        if self._checkpoint is not None:
            # a new list, not an append: the store rewrites a stable part only when it is a new object
            self._replay = [*self._replay, [[g.to_json(), w] for g, w in self.buffer]]
        self.buffer = []

    def _step(self, results: Sequence[tuple[Any, float]]) -> None:
        _, grad = self.policy_loss_and_grads([g for g, _ in results], [w for _, w in results])
        self.controller.adam_step(grad)

    def extra_state(self) -> dict[str, Any]:
        stale = self._checkpoint is None or self._checkpoint["heads"] != self.controller.head_sizes
        if stale or len(self._replay) >= self.checkpoint_every:
            self._checkpoint, self._replay = self.controller.state_dict(), []
        return {
            "controller": self._checkpoint,
            "replay": self._replay,
            "buffer": [[g.to_json(), w] for g, w in self.buffer],
            "queue": [g.to_json() for g in self.queue],
            "sample_rng": self.sample_rng.bit_generator.state,
            "baseline": self.baseline,
            "scale": self.scale,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "controller" not in state:
            raise ValueError(
                "this run's reinforce state was saved by an older archsearch (PyTorch controller); "
                "start the search afresh or resume it with the version that wrote it"
            )
        self.controller.load_state_dict(state["controller"])
        self._checkpoint, self._replay = state["controller"], [list(u) for u in state.get("replay", [])]
        for update in self._replay:
            self._step([(self._g(g), float(w)) for g, w in update])
        self.sample_rng.bit_generator.state = state["sample_rng"]
        self.baseline, self.scale = state["baseline"], state["scale"]
        self.buffer = [(self._g(g), float(w)) for g, w in state.get("buffer", [])]
        self.queue = [self._g(g) for g in state.get("queue", [])]

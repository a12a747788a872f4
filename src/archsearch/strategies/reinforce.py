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
import torch
import torch.nn.functional as F
from torch import nn

from archsearch.strategies.base import Strategy, pack, unpack
from archsearch.trial import Trial


class Controller(nn.Module):
    """An LSTM cell with one softmax head per decision name (created when a name is first seen)."""

    def __init__(self, hidden: int = 32, max_choices: int = 64) -> None:
        super().__init__()
        self.hidden = hidden
        self.cell = nn.LSTMCell(hidden, hidden)
        self.value_embedding = nn.Embedding(max_choices + 1, hidden)
        self.heads = nn.ModuleDict()
        self.head_sizes: dict[str, int] = {}

    @staticmethod
    def head_key(name: str) -> str:
        return name.replace(".", "__")

    def head(self, name: str, size: int) -> nn.Linear:
        key = self.head_key(name)
        if key not in self.heads:
            self.heads[key] = nn.Linear(self.hidden, size)
            self.head_sizes[name] = size
        return self.heads[key]  # type: ignore[return-value]


class Reinforce(Strategy):
    """Policy-gradient controller; ``lr`` Adam step size, ``entropy_weight`` bonus, ``baseline_decay`` EMA,
    ``batch`` scored trials per update."""

    name = "reinforce"
    stable_state_keys = ("heads", "weights", "optimizer")

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        hidden: int = 32,
        lr: float = 0.01,
        entropy_weight: float = 0.05,
        baseline_decay: float = 0.9,
        temperature: float = 1.0,
        batch: int = 4,
    ) -> None:
        super().__init__(space, seed)
        if batch < 1:
            raise ValueError(f"reinforce batch must be >= 1, got {batch}")
        self.batch = batch
        self.buffer: list[tuple[Any, float]] = []  # (genotype, advantage / scale) awaiting the next update
        self._packed: dict[str, Any] | None = None  # weights and optimizer as packed at the last update
        self.queue: list[Any] = []  # sampled, not yet asked for
        self._signature: list[tuple[str, tuple[Any, ...]]] | None = None
        self.lr, self.entropy_weight, self.baseline_decay = lr, entropy_weight, baseline_decay
        self.temperature = temperature
        self.gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.controller = Controller(hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline: float | None = None
        self.scale: float | None = None

    def _step_logits(
        self, state: tuple[torch.Tensor, torch.Tensor] | None, prev: torch.Tensor, name: str, size: int
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One controller step for a batch: ``prev`` holds each row's previous choice index (-1 at the start)."""
        if size >= self.controller.value_embedding.num_embeddings:
            raise ValueError(
                f"decision {name!r} has {size} choices; the controller handles at most "
                f"{self.controller.value_embedding.num_embeddings - 1}"
            )
        if self.controller.head_key(name) not in self.controller.heads:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.rng.integers(2**31)))
                head = self.controller.head(name, size)
            self.optimizer.add_param_group({"params": list(head.parameters())})
        h, c = self.controller.cell(self.controller.value_embedding.weight[prev + 1], state)
        return self.controller.head(name, size)(h) / self.temperature, (h, c)

    def _sample(self) -> Any:
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        prev = torch.full((1,), -1)

        def choose(name: str, choices: Sequence[Any]) -> Any:
            nonlocal state, prev
            logits, state = self._step_logits(state, prev, name, len(choices))
            prev = torch.multinomial(F.softmax(logits, -1), 1, generator=self.gen)[:, 0]
            return choices[int(prev)]

        with torch.no_grad():
            return self.space.decide(choose)

    def log_prob_and_entropy(self, genotypes: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of each genotype's decisions under the controller (teacher forcing) and the summed
        entropy of its choice distributions; genotypes with the same decision sequence go through in one batch."""
        groups: dict[tuple[tuple[str, int], ...], list[tuple[int, list[int]]]] = {}
        for row, g in enumerate(genotypes):
            decisions = self.space.decisions(g)
            signature = tuple((d.name, len(d.choices)) for d in decisions)
            groups.setdefault(signature, []).append((row, [d.choices.index(d.value) for d in decisions]))
        logp, entropy = torch.zeros(len(genotypes)), torch.zeros(len(genotypes))
        for signature, members in groups.items():
            rows = torch.tensor([r for r, _ in members])
            chosen = torch.tensor([idx for _, idx in members])  # (batch, steps)
            state, prev = None, torch.full((len(members),), -1)
            group_logp, group_entropy = torch.zeros(len(members)), torch.zeros(len(members))
            for step, (name, size) in enumerate(signature):
                logits, state = self._step_logits(state, prev, name, size)
                log_probs = F.log_softmax(logits, -1)
                prev = chosen[:, step]
                group_logp = group_logp + log_probs.gather(1, prev[:, None])[:, 0]
                group_entropy = group_entropy - (log_probs.exp() * log_probs).sum(-1)
            logp = logp.index_put((rows,), group_logp)
            entropy = entropy.index_put((rows,), group_entropy)
        return logp, entropy

    def _sample_batch(self, n: int) -> list[Any]:
        """``n`` genotypes from the current policy; drawn together, one controller pass for all, when the space's
        decisions are fixed (each row is an independent draw, as one-by-one sampling gives)."""
        if not self.space.fixed_decisions or n == 1:
            return [self._sample() for _ in range(n)]
        if self._signature is None:
            example = self.space.sample(np.random.default_rng(0))
            self._signature = [(d.name, tuple(d.choices)) for d in self.space.decisions(example)]
        picks = []
        with torch.no_grad():
            state, prev = None, torch.full((n,), -1)
            for name, choices in self._signature:
                logits, state = self._step_logits(state, prev, name, len(choices))
                prev = torch.multinomial(F.softmax(logits, -1), 1, generator=self.gen)[:, 0]
                picks.append(prev)
        rows = torch.stack(picks, 1).tolist()
        return [
            self.space.from_decisions({name: choices[i] for (name, choices), i in zip(self._signature, row)})
            for row in rows
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

    def _update(self) -> None:
        """One policy-gradient step on the buffered results."""
        logp, entropy = self.log_prob_and_entropy([g for g, _ in self.buffer])
        weights = torch.tensor([w for _, w in self.buffer])
        self.buffer = []
        self.optimizer.zero_grad(set_to_none=True)
        (-weights * logp - self.entropy_weight * entropy).mean().backward()
        self.optimizer.step()
        self._packed = None

    def extra_state(self) -> dict[str, Any]:
        if self._packed is None or self._packed["heads"] != self.controller.head_sizes:
            self._packed = {
                "heads": dict(self.controller.head_sizes),
                "weights": pack(self.controller.state_dict()),
                "optimizer": pack(self.optimizer.state_dict()),
            }
        return {
            **self._packed,
            "buffer": [[g.to_json(), w] for g, w in self.buffer],
            "queue": [g.to_json() for g in self.queue],
            "gen": pack(self.gen.get_state()),
            "baseline": self.baseline,
            "scale": self.scale,
        }

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, size in state["heads"].items():
            if self.controller.head_key(name) not in self.controller.heads:
                self.optimizer.add_param_group({"params": list(self.controller.head(name, size).parameters())})
        self.controller.load_state_dict(unpack(state["weights"]))
        self.optimizer.load_state_dict(unpack(state["optimizer"]))
        self.gen.set_state(unpack(state["gen"]))
        self.baseline, self.scale = state["baseline"], state["scale"]
        self.buffer = [(self._g(g), float(w)) for g, w in state.get("buffer", [])]
        self.queue = [self._g(g) for g in state.get("queue", [])]
        self._packed = None

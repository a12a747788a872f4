"""REINFORCE with an LSTM controller (Zoph & Le 2017; ENAS's controller shape) over the space's decision view.

The controller emits the genotype's decisions token by token: each step feeds the embedding of the previous choice
into an LSTM cell, and a head for that decision's name gives the choice probabilities.
Policy gradient against an exponential moving-average baseline, with an entropy bonus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    """Policy-gradient controller; ``lr`` Adam step size, ``entropy_weight`` bonus, ``baseline_decay`` EMA."""

    name = "reinforce"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        hidden: int = 32,
        lr: float = 0.003,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(space, seed)
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
        self, state: tuple[torch.Tensor, torch.Tensor] | None, prev: int, name: str, size: int
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if size >= self.controller.value_embedding.num_embeddings:
            raise ValueError(
                f"decision {name!r} has {size} choices; the controller handles at most "
                f"{self.controller.value_embedding.num_embeddings - 1}"
            )
        new_head = self.controller.head_key(name) not in self.controller.heads
        if new_head:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.rng.integers(2**31)))
                head = self.controller.head(name, size)
            self.optimizer.add_param_group({"params": list(head.parameters())})
        x = self.controller.value_embedding.weight[prev + 1]
        h, c = self.controller.cell(x[None], state)
        logits = self.controller.head(name, size)(h)[0] / self.temperature
        return logits, (h, c)

    def _sample(self) -> Any:
        state: tuple[torch.Tensor, torch.Tensor] | None = None
        prev = -1

        def choose(name: str, choices: Sequence[Any]) -> Any:
            nonlocal state, prev
            with torch.no_grad():
                logits, state = self._step_logits(state, prev, name, len(choices))
                idx = int(torch.multinomial(F.softmax(logits, -1), 1, generator=self.gen))
            prev = idx
            return choices[idx]

        return self.space.decide(choose)

    def log_prob_and_entropy(self, genotype: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of a genotype's decisions under the controller (teacher forcing), and the entropy."""
        state, prev = None, -1
        logp, entropy = torch.zeros(()), torch.zeros(())
        for d in self.space.decisions(genotype):
            logits, state = self._step_logits(state, prev, d.name, len(d.choices))
            log_probs = F.log_softmax(logits, -1)
            idx = d.choices.index(d.value)
            logp = logp + log_probs[idx]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            prev = idx
        return logp, entropy

    def ask(self, n: int = 1) -> list[Any]:
        out = []
        for _ in range(n):
            g = self._sample()
            self.asked.add(g.key)
            out.append(g)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        scored = [t for t in trials if t.score is not None]
        if not scored:
            return
        losses = []
        for t in scored:
            score = float(t.score)  # type: ignore[arg-type]
            if self.baseline is None:
                self.baseline, self.scale = score, 1.0
            advantage = score - self.baseline
            self.scale = self.baseline_decay * self.scale + (1 - self.baseline_decay) * abs(advantage)  # type: ignore[operator]
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * score
            logp, entropy = self.log_prob_and_entropy(t.genotype)
            losses.append(-(advantage / max(self.scale, 1e-8)) * logp - self.entropy_weight * entropy)
        self.optimizer.zero_grad(set_to_none=True)
        torch.stack(losses).mean().backward()
        self.optimizer.step()

    def extra_state(self) -> dict[str, Any]:
        return {
            "heads": self.controller.head_sizes,
            "weights": pack(self.controller.state_dict()),
            "optimizer": pack(self.optimizer.state_dict()),
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

"""The REINFORCE controller: an LSTM cell over decision tokens with one softmax head per decision name, in NumPy.

Written by hand because of its size: with 32 hidden units and batches of a few sequences, PyTorch's per-operation
dispatch and autograd bookkeeping cost about ten times the arithmetic (an update of 4 sequences took 8.7 ms in
PyTorch against well under 1 ms here). The math is PyTorch's (``nn.LSTMCell`` gate order i, f, g, o; ``nn.Linear``
and ``nn.Embedding`` initialisation; ``torch.optim.Adam``), and tests/test_controller.py checks the gradients
against PyTorch's autograd.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _softmax_rows(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, log-probabilities) over the last axis."""
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return np.exp(logp), logp


class LSTMController:
    """All parameters live in one flat vector (``flat``; ``params`` holds named views into it), so that Adam and
    saving are a few whole-vector operations; a decision name's head is appended the first time it is seen."""

    def __init__(
        self,
        hidden: int = 32,
        max_choices: int = 64,
        lr: float = 0.01,
        temperature: float = 1.0,
        seed: int = 0,
        dtype: Any = np.float32,
    ) -> None:
        self.hidden, self.max_choices, self.lr, self.temperature = hidden, max_choices, lr, temperature
        self.dtype = np.dtype(dtype)
        self.init_rng = np.random.default_rng(seed)
        H, bound = hidden, 1.0 / np.sqrt(hidden)
        self.layout: list[tuple[str, tuple[int, ...]]] = []
        self.flat, self.adam_m, self.adam_v = (np.zeros(0, self.dtype) for _ in range(3))
        self.params: dict[str, np.ndarray] = {}
        # one row per token (row 0: the start token, row k + 1: choice k); grown as wider decisions appear
        self._append("embedding", self.init_rng.standard_normal((1, H)))
        self._append("lstm.weight_ih", self.init_rng.uniform(-bound, bound, (4 * H, H)))
        self._append("lstm.weight_hh", self.init_rng.uniform(-bound, bound, (4 * H, H)))
        # nn.LSTMCell has two biases that are always summed; one carries the same function
        self._append(
            "lstm.bias", self.init_rng.uniform(-bound, bound, 4 * H) + self.init_rng.uniform(-bound, bound, 4 * H)
        )
        self.head_sizes: dict[str, int] = {}
        self.steps = 0
        self.version = 0  # bumped whenever parameters change, so callers can cache the packed state
        # one tanh gives all four gates: sigmoid(x) = (1 + tanh(x / 2)) / 2 for i, f, o; tanh for g
        self._gate_scale = np.concatenate([np.full(2 * H, 0.5), np.ones(H), np.full(H, 0.5)]).astype(self.dtype)

    def _append(self, key: str, value: np.ndarray) -> None:
        self.layout.append((key, value.shape))
        self._head_indices: dict[tuple[tuple[str, int], ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.flat = np.concatenate([self.flat, value.ravel().astype(self.dtype)])
        self.adam_m = np.concatenate([self.adam_m, np.zeros(value.size, self.dtype)])
        self.adam_v = np.concatenate([self.adam_v, np.zeros(value.size, self.dtype)])
        self.params = self._views(self.flat)

    def _grow_embedding(self, rows: int) -> None:
        """Add token rows (fresh N(0, 1) weights, zero Adam moments) so that the embedding has ``rows`` rows."""
        current = dict(self.layout)["embedding"][0]
        extra = self.init_rng.standard_normal((rows - current, self.hidden)).astype(self.dtype)
        parts = []
        for array, new in (
            (self.flat, extra),
            (self.adam_m, np.zeros_like(extra)),
            (self.adam_v, np.zeros_like(extra)),
        ):
            views = self._views(array)
            parts.append(
                np.concatenate(
                    [
                        np.concatenate([views[k].ravel(), new.ravel()]) if k == "embedding" else views[k].ravel()
                        for k, _ in self.layout
                    ]
                )
            )
        self.layout = [(k, (rows, self.hidden) if k == "embedding" else shape) for k, shape in self.layout]
        self.flat, self.adam_m, self.adam_v = parts
        self.params = self._views(self.flat)
        self._head_indices = {}

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        views, offset = {}, 0
        for key, shape in self.layout:
            size = math.prod(shape)
            views[key] = flat[offset : offset + size].reshape(shape)
            offset += size
        return views

    def ensure_head(self, name: str, size: int) -> None:
        """Create the head of decision ``name`` (``size`` choices) the first time it is seen."""
        if size > self.max_choices:
            raise ValueError(f"decision {name!r} has {size} choices; the controller handles at most {self.max_choices}")
        if name in self.head_sizes:
            if self.head_sizes[name] != size:
                raise ValueError(f"decision {name!r} had {self.head_sizes[name]} choices and now has {size}")
            return
        bound = 1.0 / np.sqrt(self.hidden)
        self.version += 1
        if size + 1 > self.params["embedding"].shape[0]:
            self._grow_embedding(size + 1)
        self.head_sizes[name] = size
        self._append(f"head.{name}.weight", self.init_rng.uniform(-bound, bound, (size, self.hidden)))
        self._append(f"head.{name}.bias", self.init_rng.uniform(-bound, bound, size))

    # --- forward ---------------------------------------------------------------------------------------------------
    def _cell(self, gx: np.ndarray, h: np.ndarray | None, c: np.ndarray) -> tuple[np.ndarray, ...]:
        """One LSTM step from the input's gate rows ``gx`` (input projection + bias); ``h`` None is the zero state."""
        H = self.hidden
        gates = gx if h is None else gx + h @ self.params["lstm.weight_hh"].T
        t = np.tanh(gates * self._gate_scale)
        sig = 0.5 + 0.5 * t
        i, f, g, o = sig[:, :H], sig[:, H : 2 * H], t[:, 2 * H : 3 * H], sig[:, 3 * H :]
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        return i, f, g, o, c_new, tanh_c, o * tanh_c

    def _input_gates(self) -> np.ndarray:
        """Gate rows of every token (row 0: the start token), bias included."""
        return self.params["embedding"] @ self.params["lstm.weight_ih"].T + self.params["lstm.bias"]

    def _logits(self, name: str, h: np.ndarray) -> np.ndarray:
        return (h @ self.params[f"head.{name}.weight"].T + self.params[f"head.{name}.bias"]) / self.temperature

    def sample(self, signature: Sequence[tuple[str, int]], n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent choice sequences (n, steps) for a fixed decision signature."""
        for name, size in signature:
            self.ensure_head(name, size)
        token_gates = self._input_gates()
        h, c, prev = None, np.zeros((n, self.hidden), self.dtype), np.full(n, -1)
        picks = np.empty((n, len(signature)), dtype=np.int64)
        draws = rng.random((len(signature), n))
        for step, (name, size) in enumerate(signature):
            *_, c, h = self._cell(token_gates[prev + 1], h, c)
            probs, _ = _softmax_rows(self._logits(name, h))
            prev = np.minimum((probs.cumsum(axis=1) < draws[step][:, None]).sum(axis=1), size - 1)
            picks[:, step] = prev
        return picks

    def step_sampler(self, rng: np.random.Generator) -> Any:
        """A ``choose(name, size) -> index`` function for one sequence whose decisions depend on earlier ones."""
        state: dict[str, Any] = {"h": None, "c": np.zeros((1, self.hidden), self.dtype), "prev": -1}

        def choose(name: str, size: int) -> int:
            self.ensure_head(name, size)
            gx = self._input_gates()[state["prev"] + 1][None]
            *_, state["c"], state["h"] = self._cell(gx, state["h"], state["c"])
            probs, _ = _softmax_rows(self._logits(name, state["h"]))
            state["prev"] = min(int((probs[0].cumsum() < rng.random()).sum()), size - 1)
            return state["prev"]

        return choose

    # --- policy gradient ------------------------------------------------------------------------------------------
    def _head_index(self, signature: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions in ``flat`` of every step's head weights (steps, S, H) and biases (steps, S), padded to the
        largest head S with the position one past the end (a zero), and the padding mask."""
        key = tuple(signature)
        if key not in self._head_indices:
            width, H = max(size for _, size in signature), self.hidden
            offsets, offset = {}, 0
            for name, shape in self.layout:
                offsets[name] = offset
                offset += math.prod(shape)
            weight_index = np.full((len(signature), width, H), offset)
            bias_index = np.full((len(signature), width), offset)
            mask = np.full((len(signature), width), -1e9, dtype=self.dtype)
            for step, (name, size) in enumerate(signature):
                start = offsets[f"head.{name}.weight"]
                weight_index[step, :size] = start + np.arange(size * H).reshape(size, H)
                bias_index[step, :size] = offsets[f"head.{name}.bias"] + np.arange(size)
                mask[step, :size] = 0.0
            self._head_indices[key] = (weight_index, bias_index, mask)
        return self._head_indices[key]

    def loss_and_grads(
        self,
        signature: Sequence[tuple[str, int]],
        chosen: np.ndarray,
        weights: np.ndarray,
        entropy_weight: float,
        total: int,
    ) -> tuple[float, np.ndarray]:
        """Loss ``sum_rows(-w * log p(sequence) - entropy_weight * entropy) / total`` of one group of sequences with
        the same signature, and its gradient as a vector laid out like ``flat`` (backpropagation through time).

        Only the recurrence runs step by step; the heads, the softmax and the gate derivatives are computed for all
        steps at once (each head padded to the widest), which keeps the count of NumPy calls, the real cost, small."""
        for name, size in signature:
            self.ensure_head(name, size)
        n = chosen.shape[0]
        weights = np.asarray(weights, dtype=self.dtype)
        tokens = np.concatenate([np.full((n, 1), -1), chosen[:, :-1]], axis=1).T + 1  # (steps, n) input tokens
        T, C, Hs = self._recur(tokens)
        weight_index, bias_index, mask = self._head_index(signature)
        flat_ext = np.append(self.flat, self.dtype.type(0))
        W_stack = flat_ext[weight_index]  # (steps, S, H)
        logits = (Hs @ W_stack.transpose(0, 2, 1) + (flat_ext[bias_index] + mask)[:, None, :]) / self.temperature
        probs, logp = _softmax_rows(logits)
        entropy = -(probs * logp).sum(axis=-1)  # (steps, n)
        onehot = np.arange(W_stack.shape[1]) == chosen.T[..., None]
        picked = (logp * onehot).sum(axis=-1)
        scale = weights / total
        loss = float((-scale * picked.sum(axis=0)).sum() - entropy_weight / total * entropy.sum())
        dz = (entropy_weight / total) * probs * (logp + entropy[..., None]) + scale[:, None] * (probs - onehot)
        dz /= self.temperature

        grad_flat = np.zeros(self.flat.size + 1, self.dtype)
        head_grad = np.bincount(
            np.concatenate([weight_index.ravel(), bias_index.ravel()]),
            np.concatenate([(dz.transpose(0, 2, 1) @ Hs).ravel(), dz.sum(axis=1).ravel()]),
            minlength=grad_flat.size,
        )
        grad_flat += head_grad.astype(self.dtype)
        grad_flat = grad_flat[:-1]
        self._backprop_through_time(self._views(grad_flat), dz @ W_stack, T, C, Hs, tokens)
        return loss, grad_flat

    def _recur(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The LSTM run over the input ``tokens`` (steps, n): its gates' tanh (steps, n, 4H), cell and hidden
        states (steps, n, H) at every step."""
        n, H = tokens.shape[1], self.hidden
        token_gates = self._input_gates()[tokens]
        W_hh = self.params["lstm.weight_hh"]
        h, c = None, np.zeros((n, H), self.dtype)
        t_list, c_list, h_list = [], [], []
        for step in range(tokens.shape[0]):
            gates = token_gates[step] if h is None else token_gates[step] + h @ W_hh.T
            t = np.tanh(gates * self._gate_scale)
            i_f_o = 0.5 + 0.5 * t
            c = i_f_o[:, H : 2 * H] * c + i_f_o[:, :H] * t[:, 2 * H : 3 * H]
            h = i_f_o[:, 3 * H :] * np.tanh(c)
            t_list.append(t)
            c_list.append(c)
            h_list.append(h)
        return np.stack(t_list), np.stack(c_list), np.stack(h_list)

    def _backprop_through_time(self, grads: dict[str, np.ndarray], dh_heads: np.ndarray, T: np.ndarray,
                               C: np.ndarray, Hs: np.ndarray, tokens: np.ndarray) -> None:  # fmt: skip
        """Add the LSTM's and the embedding's gradients to ``grads``, given the heads' gradient with respect to
        each step's hidden state (``dh_heads``, steps x n x H)."""
        steps, n, H = Hs.shape
        W_hh = self.params["lstm.weight_hh"]
        sig = 0.5 + 0.5 * T
        i, f, g, o = sig[..., :H], sig[..., H : 2 * H], T[..., 2 * H : 3 * H], sig[..., 3 * H :]
        C_prev = np.concatenate([np.zeros((1, n, H), self.dtype), C[:-1]])
        tanh_c = np.tanh(C)
        dc_from_h = o * (1.0 - tanh_c**2)
        d_ifg = np.stack([g * i * (1 - i), C_prev * f * (1 - f), i * (1 - g**2)], axis=2)  # (steps, n, 3, H)
        d_o = tanh_c * o * (1 - o)
        dgates = np.empty((steps, n, 4, H), self.dtype)
        dh_next, dc_next = None, None
        for step in range(steps - 1, -1, -1):
            dh = dh_heads[step] if dh_next is None else dh_heads[step] + dh_next
            dc = dh * dc_from_h[step] if dc_next is None else dh * dc_from_h[step] + dc_next
            dgates[step, :, :3] = dc[:, None, :] * d_ifg[step]
            dgates[step, :, 3] = dh * d_o[step]
            dh_next = dgates[step].reshape(n, 4 * H) @ W_hh
            dc_next = dc * f[step]
        dgates = dgates.reshape(steps, n, 4 * H)
        if steps > 1:
            grads["lstm.weight_hh"] += dgates[1:].reshape(-1, 4 * H).T @ Hs[:-1].reshape(-1, H)
        flat_dgates, flat_tokens = dgates.reshape(-1, 4 * H), tokens.reshape(-1)
        grads["lstm.bias"] += flat_dgates.sum(axis=0)
        grads["lstm.weight_ih"] += flat_dgates.T @ self.params["embedding"][flat_tokens]
        np.add.at(grads["embedding"], flat_tokens, flat_dgates @ self.params["lstm.weight_ih"])

    def adam_step(self, grad: np.ndarray, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        """One Adam step (PyTorch's formulation, no weight decay) on the flat parameter vector."""
        self.steps += 1
        self.version += 1
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        self.adam_m *= beta1
        self.adam_m += (1 - beta1) * grad
        self.adam_v *= beta2
        self.adam_v += (1 - beta2) * grad * grad
        self.flat -= (self.lr / correction1) * self.adam_m / (np.sqrt(self.adam_v / correction2) + eps)

    # --- state ----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the layout, and each flat vector as base64 of its raw bytes."""

        def enc(array: np.ndarray) -> str:
            return base64.b64encode(array.tobytes()).decode()

        return {
            "dtype": self.dtype.name,
            "layout": [[key, list(shape)] for key, shape in self.layout],
            "heads": dict(self.head_sizes),
            "flat": enc(self.flat),
            "adam_m": enc(self.adam_m),
            "adam_v": enc(self.adam_v),
            "steps": self.steps,
            "init_rng": self.init_rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

        def dec(text: str) -> np.ndarray:
            return np.frombuffer(base64.b64decode(text), dtype=self.dtype).copy()

        self.dtype = np.dtype(state["dtype"])
        self.layout = [(key, tuple(shape)) for key, shape in state["layout"]]
        self.head_sizes = {k: int(v) for k, v in state["heads"].items()}
        self.flat, self.adam_m, self.adam_v = dec(state["flat"]), dec(state["adam_m"]), dec(state["adam_v"])
        self.params = self._views(self.flat)
        self._head_indices = {}
        self.steps = int(state["steps"])
        self.init_rng.bit_generator.state = state["init_rng"]
        self.version += 1

"""The NumPy REINFORCE controller against PyTorch: same loss, same gradients, same Adam step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archsearch.strategies.controller import LSTMController

SIGNATURE = [("a", 3), ("b", 5), ("c", 2), ("b", 5), ("d", 4)]  # "b" twice: one head used at two steps


def torch_loss(ctrl: LSTMController, chosen: np.ndarray, weights: np.ndarray, entropy_weight: float, total: int):
    """The same policy loss written with torch.nn.LSTMCell and autograd, from the controller's parameters."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in ctrl.params.items()}
    H = ctrl.hidden
    cell = torch.nn.LSTMCell(H, H).double()
    n = chosen.shape[0]
    h = c = torch.zeros(n, H, dtype=torch.float64)
    prev = torch.full((n,), -1)
    loss = torch.zeros((), dtype=torch.float64)
    w = torch.tensor(weights)
    for step, (name, _) in enumerate(SIGNATURE):
        x = params["embedding"][prev + 1]
        h, c = torch.func.functional_call(
            cell,
            {
                "weight_ih": params["lstm.weight_ih"],
                "weight_hh": params["lstm.weight_hh"],
                "bias_ih": params["lstm.bias"],
                "bias_hh": torch.zeros(4 * H, dtype=torch.float64),
            },
            (x, (h, c)),
        )
        logits = F.linear(h, params[f"head.{name}.weight"], params[f"head.{name}.bias"]) / ctrl.temperature
        logp = F.log_softmax(logits, -1)
        prev = torch.tensor(chosen[:, step])
        entropy = -(logp.exp() * logp).sum(-1)
        loss = loss + (-w * logp.gather(1, prev[:, None])[:, 0] - entropy_weight * entropy).sum() / total
    loss.backward()
    return float(loss.detach()), {
        k: p.grad.numpy() if p.grad is not None else np.zeros_like(v)
        for (k, v), p in zip(ctrl.params.items(), params.values())
    }


def make_controller(seed: int = 0) -> LSTMController:
    ctrl = LSTMController(hidden=8, max_choices=6, temperature=1.5, seed=seed, dtype=np.float64)
    for name, size in SIGNATURE:
        ctrl.ensure_head(name, size)
    return ctrl


def test_loss_and_gradients_match_pytorch_autograd() -> None:
    ctrl = make_controller()
    rng = np.random.default_rng(1)
    chosen = np.stack([rng.integers(size, size=7) for _, size in SIGNATURE], axis=1)
    weights = rng.normal(size=7)
    loss, grad = ctrl.loss_and_grads(SIGNATURE, chosen, weights, 0.05, 9)
    ref_loss, ref_grads = torch_loss(ctrl, chosen, weights, 0.05, 9)
    assert loss == pytest.approx(ref_loss, rel=1e-10)
    views = ctrl._views(grad)
    for key, ref in ref_grads.items():
        np.testing.assert_allclose(views[key], ref, rtol=1e-8, atol=1e-12, err_msg=key)
    assert np.abs(grad).sum() > 0


def test_adam_step_matches_torch_adam() -> None:
    ctrl = make_controller()
    start = torch.tensor(ctrl.flat.copy(), requires_grad=True)
    optimizer = torch.optim.Adam([start], lr=ctrl.lr)
    rng = np.random.default_rng(2)
    for _ in range(3):
        grad = rng.normal(size=ctrl.flat.size)
        ctrl.adam_step(grad)
        start.grad = torch.tensor(grad)
        optimizer.step()
    np.testing.assert_allclose(ctrl.flat, start.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sampling_follows_the_policy_and_state_round_trips() -> None:
    ctrl = make_controller()
    fixed = [("a", 3), ("b", 5)]
    picks = ctrl.sample(fixed, 20000, np.random.default_rng(3))
    assert picks.shape == (20000, 2) and picks[:, 0].max() < 3 and picks[:, 1].max() < 5
    # first decision: probabilities from the start token alone
    gates = ctrl._input_gates()[0:1]
    *_, h = ctrl._cell(gates, None, np.zeros((1, ctrl.hidden)))
    logits = ctrl._logits("a", h)[0]
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    observed = np.bincount(picks[:, 0], minlength=3) / len(picks)
    np.testing.assert_allclose(observed, expected, atol=0.015)

    # a copy restored from the state samples and learns identically
    clone = LSTMController(hidden=8, max_choices=6, temperature=1.5, seed=99, dtype=np.float64)
    clone.load_state_dict(ctrl.state_dict())
    for model in (ctrl, clone):
        _, grad = model.loss_and_grads(SIGNATURE, np.zeros((2, len(SIGNATURE)), dtype=np.int64), np.ones(2), 0.1, 2)
        model.adam_step(grad)
        model.ensure_head("new", 3)
    np.testing.assert_array_equal(ctrl.flat, clone.flat)
    np.testing.assert_array_equal(
        ctrl.sample(fixed, 5, np.random.default_rng(4)), clone.sample(fixed, 5, np.random.default_rng(4))
    )


def test_too_many_choices_is_a_clear_error() -> None:
    ctrl = LSTMController(hidden=4, max_choices=6)
    with pytest.raises(ValueError, match="at most 6"):
        ctrl.ensure_head("x", 7)
    ctrl.ensure_head("y", 3)
    with pytest.raises(ValueError, match="had 3 choices"):
        ctrl.ensure_head("y", 4)

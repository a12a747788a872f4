"""Property checks every search space must pass. A new space gets them by being registered (see tests/)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from archsearch.spaces import Space, genotype_from_json


def check_roundtrip(space: Space[Any], n: int = 200, seed: int = 0) -> None:
    """Sampled genotypes are valid, survive JSON, text and decision round trips with equal keys."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        g = space.sample(rng)
        assert space.validate(g) is g
        again = genotype_from_json(json.loads(json.dumps(g.to_json())))
        assert again == g and again.key == g.key, f"JSON round trip changed {g}"
        assert space.parse(str(g)).key == g.key, f"text round trip changed {g}"
        decisions = space.decisions(g)
        rebuilt, asked = space.trace(lambda name, choices, table={d.name: d.value for d in decisions}: table[name])
        assert rebuilt.key == g.key, f"decision round trip changed {g}"
        assert [(d.name, d.choices) for d in asked] == [(d.name, d.choices) for d in decisions]
        assert all(d.value in d.choices for d in decisions)


def check_operators(space: Space[Any], n: int = 200, seed: int = 0) -> None:
    """Mutation, crossover and neighbours give valid genotypes; encodings have one fixed length."""
    rng = np.random.default_rng(seed)
    lengths = set()
    previous = space.sample(rng)
    for i in range(n):
        g = space.sample(rng)
        child = space.mutate(g, rng)
        space.validate(child)
        assert child.key != g.key, f"mutate returned the parent {g}"
        mixed = space.crossover(g, previous, rng)
        space.validate(mixed)
        previous = g
        enc = space.encode(g)
        assert np.isfinite(enc).all()
        lengths.add(enc.shape)
        if i < 20:
            nbrs = space.neighbors(g)
            keys = [x.key for x in nbrs]
            assert nbrs and len(set(keys)) == len(keys) and g.key not in keys
            for x in nbrs:
                space.validate(x)
    assert len(lengths) == 1, f"encodings of different lengths: {lengths}"


def check_builds(
    space: Space[Any],
    n: int = 200,
    seed: int = 0,
    shapes: tuple[tuple[int, int, int], ...] = ((1, 28, 28), (3, 32, 32)),
    batch: int = 2,
    **options: Any,
) -> None:
    """Sampled genotypes build, run forward and backward on every input shape, and give finite outputs/grads."""
    rng = np.random.default_rng(seed)
    opts = {**space.tiny_build(), **options}
    gen = torch.Generator().manual_seed(seed)
    for i in range(n):
        g = space.sample(rng)
        c, h, w = shapes[i % len(shapes)]
        model = space.build(g, in_channels=c, num_classes=10, input_size=h, seed=i, **opts)
        model.train()
        x = torch.randn(batch, c, h, w, generator=gen)
        out = model(x)
        logits = out[0] if isinstance(out, tuple) else out
        assert logits.shape == (batch, 10), f"{g}: output shape {tuple(logits.shape)} on input {(c, h, w)}"
        loss = sum(o.square().mean() for o in (out if isinstance(out, tuple) else (out,)))
        loss.backward()
        assert torch.isfinite(logits).all(), f"{g}: non-finite output"
        for name, p in model.named_parameters():
            assert p.grad is None or torch.isfinite(p.grad).all(), f"{g}: non-finite gradient in {name}"


class SpaceContractError(AssertionError):
    """A space breaks one rule of the space contract; the message names the rule and what went wrong."""


def check_space(space: str | Space[Any], n: int = 50, seed: int = 0, **build_options: Any) -> None:
    """Every rule of the space contract on ``n`` sampled genotypes (a registered name or a space object): round trips
    (JSON, text, decisions), operators (mutation, crossover, neighbours, encodings), networks (build, forward,
    backward on 1x28x28 and 3x32x32 inputs, finite values). The first broken rule raises
    :class:`SpaceContractError` naming it."""
    from archsearch.spaces import SPACES, get_space

    sp = get_space(space)
    if sp.name not in SPACES or not isinstance(sp, SPACES.get(sp.name)):
        raise SpaceContractError(
            f"space {sp.name!r} breaks the rule 'registered: the space is registered under its name "
            "(archsearch.register_space), so genotypes read back from JSON and run directories find it'"
        )
    rules = (
        ("round trips: sampled genotypes are valid and survive JSON, text and decisions", check_roundtrip, {}),
        ("operators: mutate, crossover and neighbours give valid genotypes, encodings one length", check_operators, {}),
        ("networks: every genotype builds and runs forward and backward with finite values", check_builds,
         build_options),
    )  # fmt: skip
    for rule, check, extra in rules:
        try:
            check(sp, n=n, seed=seed, **extra)
        except SpaceContractError:
            raise
        except Exception as exc:  # any failure of the space's own code breaks the rule
            what = str(exc) or type(exc).__name__
            raise SpaceContractError(
                f"space {sp.name!r} breaks the rule '{rule}': {type(exc).__name__}: {what}"
            ) from exc

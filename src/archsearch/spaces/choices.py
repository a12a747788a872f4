"""A space written as a table of choices: the quickest way to define your own space.

Subclass :class:`ChoiceSpace`, give it a ``name``, a ``choices`` table (decision name -> allowed values, in order)
and a ``build_network``; register it with :func:`archsearch.register_space`. Sampling, mutation, crossover,
neighbours, encodings, text and JSON forms, enumeration and size come from the table, so every strategy, evaluator,
the store and resume work with it unchanged (``examples/own_space.py`` is a worked example)::

    @register_space
    class Blocks(ChoiceSpace):
        name = "blocks"
        choices = {"kernel1": (3, 5), "width1": (16, 32), "kernel2": (3, 5)}

        def build_network(self, genotype, in_channels, num_classes, input_size, **options):
            ...  # genotype["kernel1"] is 3 or 5

A genotype (:class:`Choices`) reads like a mapping: ``genotype["kernel1"]``; its text form is
``kernel1=3,width1=16,kernel2=5``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from archsearch.errors import GenotypeError
from archsearch.spaces.base import Chooser, Decision, Space


@dataclass(frozen=True)
class Choices:
    """A genotype of a :class:`ChoiceSpace`: the space's name and one value per decision, in the table's order."""

    space: str
    values: tuple[tuple[str, Any], ...]

    def __getitem__(self, name: str) -> Any:
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(name)

    @property
    def key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values)

    def __str__(self) -> str:
        return self.key

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "choices": dict(self.values)}


class ChoiceSpace(Space[Choices]):
    """A space of independent categorical decisions given by the class attribute ``choices``; subclasses add
    ``name``, ``build_network`` and, if they like, ``build_options``, ``complexity`` and ``description``."""

    choices: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    fixed_decisions = True

    def __init__(self) -> None:
        if not self.choices:
            raise GenotypeError("choices", f"space {type(self).__name__} defines no decisions (its choices is empty)")
        for name, allowed in self.choices.items():
            if len(allowed) < 1 or len(set(map(repr, allowed))) != len(allowed):
                raise GenotypeError(name, f"needs at least one choice and no repeats, got {allowed!r}")

    def make(self, **values: Any) -> Choices:
        """The genotype with these decision values (every decision named once)."""
        return self.from_decisions(values)

    def from_decisions(self, values: Mapping[str, Any] | Sequence[Decision]) -> Choices:
        names = list(values) if isinstance(values, Mapping) else [d.name for d in values]
        unknown = sorted(set(names) - set(self.choices))
        if unknown:
            raise GenotypeError("decisions", f"unknown decision(s) {unknown} (this space's: {list(self.choices)})")
        return super().from_decisions(values)

    def decide(self, choose: Chooser) -> Choices:
        return Choices(self.name, tuple((n, choose(n, tuple(c))) for n, c in self.choices.items()))

    def decisions(self, genotype: Choices) -> list[Decision]:
        self.validate(genotype)
        return [Decision(n, tuple(self.choices[n]), v) for n, v in genotype.values]

    def _variable(self) -> list[str]:
        return [n for n, c in self.choices.items() if len(c) > 1]

    def mutate(self, genotype: Choices, rng: np.random.Generator) -> Choices:
        variable = self._variable()
        if not variable:
            raise GenotypeError("mutate", f"space {self.name!r} has one genotype; nothing to mutate")
        name = variable[int(rng.integers(len(variable)))]
        others = [c for c in self.choices[name] if c != genotype[name]]
        return self._replace(genotype, name, others[int(rng.integers(len(others)))])

    def crossover(self, a: Choices, b: Choices, rng: np.random.Generator) -> Choices:
        take_a = rng.random(len(a.values)) < 0.5
        return Choices(self.name, tuple(x if t else y for x, y, t in zip(a.values, b.values, take_a)))

    def neighbors(self, genotype: Choices) -> list[Choices]:
        return [self._replace(genotype, n, c) for n in self._variable() for c in self.choices[n] if c != genotype[n]]

    def _replace(self, genotype: Choices, name: str, value: Any) -> Choices:
        return Choices(self.name, tuple((n, value if n == name else v) for n, v in genotype.values))

    def encode(self, genotype: Choices) -> np.ndarray:
        """One-hot value per decision."""
        parts = [np.eye(len(self.choices[n]), dtype=np.float32)[list(self.choices[n]).index(v)]
                 for n, v in genotype.values]  # fmt: skip
        return np.concatenate(parts)

    def validate(self, genotype: Any) -> Choices:
        if not isinstance(genotype, Choices) or genotype.space != self.name:
            raise GenotypeError("genotype", f"expected a {self.name} genotype, got {genotype!r}"[:200])
        names = [n for n, _ in genotype.values]
        if names != list(self.choices):
            raise GenotypeError("genotype", f"decisions {names} differ from the space's {list(self.choices)}")
        for n, v in genotype.values:
            if v not in self.choices[n]:
                raise GenotypeError(n, f"{v!r} is not one of the allowed choices {list(self.choices[n])}")
        return genotype

    def size(self) -> int:
        return int(np.prod([len(c) for c in self.choices.values()], dtype=object))

    def enumerate(self) -> Iterator[Choices]:
        for values in itertools.product(*self.choices.values()):
            yield Choices(self.name, tuple(zip(self.choices, values)))

    def complexity(self, genotype: Choices) -> float:
        """By default the sum of the numeric choices (override with a better size measure)."""
        return float(sum(v for _, v in genotype.values if isinstance(v, (int, float)) and not isinstance(v, bool)))

    def from_json(self, obj: Mapping[str, Any]) -> Choices:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("choices"), Mapping):
            raise GenotypeError("json", f"a {self.name} genotype is {{'space': {self.name!r}, 'choices': {{...}}}}")
        if obj.get("space", self.name) != self.name:
            raise GenotypeError("space", f"expected {self.name!r}, got {obj.get('space')!r}")
        unknown = sorted(set(obj["choices"]) - set(self.choices))
        if unknown:
            raise GenotypeError("json", f"unknown decision(s) {unknown} (allowed: {list(self.choices)})")
        return self.from_decisions(dict(obj["choices"]))

    def parse(self, text: str) -> Choices:
        """``name=value,name=value`` (values read as JSON where they can be, e.g. ``3`` is the number 3) or JSON."""
        text = text.strip()
        if text.startswith("{"):
            return super().parse(text)
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, raw = part.partition("=")
            if not sep:
                raise GenotypeError(self.name, f"expected name=value, got {part!r} (decisions: {list(self.choices)})")
            allowed = {str(c): c for c in self.choices.get(name.strip(), ())}
            if raw.strip() in allowed:  # the choice's own text form (3, True, 'conv')
                values[name.strip()] = allowed[raw.strip()]
                continue
            try:
                values[name.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                values[name.strip()] = raw.strip()
        return self.from_decisions(values)

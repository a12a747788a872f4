"""Search spaces by name, and reading architectures from text or JSON in any space."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archsearch.errors import ArchsearchError, GenotypeError
from archsearch.registry import Registry
from archsearch.spaces.base import Decision, Genotype, Space, uniform_chooser
from archsearch.spaces.chain import ChainGenotype, ChainLayer, ChainSpace
from archsearch.spaces.choices import Choices, ChoiceSpace
from archsearch.spaces.darts import DartsGenotype, DartsSpace, published
from archsearch.spaces.darts_genotypes import PUBLISHED
from archsearch.spaces.macro import MacroGenotype, MacroSpace
from archsearch.spaces.mobile import MobileGenotype, MobileLayer, MobileSpace
from archsearch.spaces.nb201 import NB201Genotype, NB201Space

SPACES: Registry[type[Space[Any]]] = Registry("space")
SPACES.add(NB201Space.name, NB201Space)
SPACES.add(DartsSpace.name, DartsSpace)
SPACES.add(ChainSpace.name, ChainSpace)
SPACES.add(MacroSpace.name, MacroSpace)
SPACES.add(MobileSpace.name, MobileSpace)

#: the space searched when none is named (the tabular benchmark's, NAS-Bench-201)
DEFAULT_SPACE = NB201Space.name


def block_spaces() -> list[str]:
    """The registered spaces whose networks are chains of blocks a latency table can time one by one (those that
    list their blocks with ``block_cover``)."""
    return [name for name in SPACES if hasattr(SPACES.get(name), "block_cover")]


def register_space(cls: type[Space[Any]] | None = None, *, name: str | None = None) -> Any:
    """Register a space class (a decorator, or a call: ``register_space(MySpace)``) under its ``name`` attribute
    (or ``name``), so every command, strategy, evaluator, the store and resume find it by that name. The class must
    subclass :class:`Space` (:class:`ChoiceSpace` is the short way) and build with no arguments; check it with
    :func:`archsearch.testing.space_suite.check_space`. Register it at import time of your module: worker processes
    and a resumed search find it only if the module that registers it is imported again."""

    def register(space_cls: type[Space[Any]]) -> type[Space[Any]]:
        if not (isinstance(space_cls, type) and issubclass(space_cls, Space)):
            raise GenotypeError("space", f"register_space takes a subclass of archsearch.Space, got {space_cls!r}")
        key = name or getattr(space_cls, "name", None)
        if not isinstance(key, str) or not key.isidentifier():
            raise GenotypeError("space", f"{space_cls.__name__} needs a name that is an identifier, got {key!r}")
        if getattr(space_cls, "__abstractmethods__", None):
            missing = ", ".join(sorted(space_cls.__abstractmethods__))
            raise GenotypeError("space", f"{space_cls.__name__} does not implement {missing}")
        SPACES.add(key, space_cls)  # first: a refused name changes nothing
        space_cls.name = key
        return space_cls

    return register if cls is None else register(cls)


def get_space(space: str | Space[Any], **options: Any) -> Space[Any]:
    """A space by name (with its constructor options), or the given space object unchanged."""
    if isinstance(space, Space):
        return space
    return SPACES.get(space)(**options)


def space_from_record(name: Any, options: Any, where: str) -> Space[Any]:
    """The space a stored record names (a run's config, a latency table), its options checked: a name that is not
    registered, options that are not a JSON object or that the space refuses are an :class:`ArchsearchError`
    naming ``where``; nothing stored is ever imported."""
    if not isinstance(name, str) or name not in SPACES:
        raise ArchsearchError(f"{where}: space {name!r} is not registered (registered: {', '.join(SPACES)})")
    if options is None:
        options = {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ArchsearchError(f"{where}: space_options must be a JSON object of option names, got {options!r:.80}")
    try:
        return get_space(name, **options)
    except ArchsearchError as exc:
        raise ArchsearchError(f"{where}: space {name!r} refuses its stored space_options ({exc})") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ArchsearchError(f"{where}: space {name!r} refuses its stored space_options ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None  # fmt: skip


def genotype_from_json(obj: Mapping[str, Any], space: str | Space[Any] | None = None) -> Any:
    """The genotype of a JSON object; its ``space`` field (or ``space``) says which space reads it."""
    if not isinstance(obj, Mapping):
        raise GenotypeError("json", f"a genotype must be a JSON object, got {type(obj).__name__}")
    name = obj.get("space") or (space if isinstance(space, str) else getattr(space, "name", None))
    if name is None:
        raise GenotypeError("space", f"the JSON object names no space (allowed: {', '.join(SPACES)})")
    sp = get_space(space) if isinstance(space, Space) else get_space(name)
    if sp.name != name:
        raise GenotypeError("space", f"the genotype is in space {name!r}, expected {sp.name!r}")
    return sp.from_json(obj)


def guess_space(text: str) -> str:
    """Which registered space a piece of architecture text belongs to: the space a JSON object names, else the first
    space (in the order they were registered) that :meth:`Space.recognizes` the text."""
    t = text.strip()
    if t.startswith("{"):
        try:
            obj = json.loads(t)
        except json.JSONDecodeError as exc:
            raise GenotypeError("json", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(obj, dict) and isinstance(obj.get("space"), str):
            return obj["space"]
        raise GenotypeError("space", f"the JSON object names no space (allowed: {', '.join(SPACES)})")
    for name in SPACES:
        if SPACES.get(name).recognizes(t):
            return name
    forms = [SPACES.get(name).text_example for name in SPACES if SPACES.get(name).text_example]
    raise GenotypeError(
        "arch",
        f"cannot tell the space of {t[:60]!r}: expected {', '.join(forms)}, or a JSON object; a registered space's "
        "own text needs its name (--space)",
    )


def parse_arch(text: str, space: str | Space[Any] | None = None) -> tuple[Space[Any], Any]:
    """Read an architecture from text in any space; with ``space`` the text must belong to it."""
    if space is not None and not type(get_space(space)).text_example:  # a space that reads its own text only
        sp = get_space(space)
        return sp, sp.parse(text)
    found = guess_space(text)
    if space is not None:
        sp = get_space(space)
        if sp.name != found:
            raise GenotypeError("space", f"{text.strip()[:60]!r} is a {found} architecture, not {sp.name}")
    else:
        sp = get_space(found)
    return sp, sp.parse(text)


@dataclass(frozen=True)
class StoredGenotype:
    """A genotype of a space not registered in this process: shown as stored, never built."""

    obj: dict[str, Any]

    @property
    def space(self) -> str:
        return str(self.obj.get("space", "?"))

    def __str__(self) -> str:
        choices = self.obj.get("choices")
        if isinstance(choices, dict):
            return ",".join(f"{k}={v}" for k, v in choices.items())
        return json.dumps({k: v for k, v in self.obj.items() if k != "space"}, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        return dict(self.obj)


@dataclass(frozen=True)
class StoredSpace:
    """Stands in for a space that is not registered here: reads its genotypes as :class:`StoredGenotype`."""

    name: str

    def from_json(self, obj: Any) -> StoredGenotype:
        if not isinstance(obj, dict) or obj.get("space") != self.name:
            raise ArchsearchError(f"a stored genotype of space {self.name!r} is not a JSON object of that space")
        return StoredGenotype(obj)


def space_for_reading(name: Any, options: Any, where: str) -> Any:
    """The registered space ``name`` with its stored options, or a :class:`StoredSpace` when ``name`` is not
    registered in this process (a space registered by the program that ran the search)."""
    if isinstance(name, str) and name not in SPACES:
        return StoredSpace(name)
    return space_from_record(name, options, where)


__all__ = [
    "DEFAULT_SPACE",
    "PUBLISHED",
    "SPACES",
    "ChainGenotype",
    "ChainLayer",
    "ChainSpace",
    "ChoiceSpace",
    "Choices",
    "DartsGenotype",
    "DartsSpace",
    "Decision",
    "Genotype",
    "MacroGenotype",
    "MacroSpace",
    "MobileGenotype",
    "MobileLayer",
    "MobileSpace",
    "NB201Genotype",
    "NB201Space",
    "Space",
    "StoredGenotype",
    "StoredSpace",
    "block_spaces",
    "genotype_from_json",
    "get_space",
    "guess_space",
    "parse_arch",
    "published",
    "register_space",
    "space_for_reading",
    "uniform_chooser",
]

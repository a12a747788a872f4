"""Search spaces by name, and reading architectures from text or JSON in any space."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
SPACES.add("nb201", NB201Space)
SPACES.add("darts", DartsSpace)
SPACES.add("chain", ChainSpace)
SPACES.add("macro", MacroSpace)
SPACES.add("mobile", MobileSpace)


#: the spaces whose text form :func:`guess_space` recognises
BUILT_IN = ("nb201", "darts", "chain", "macro", "mobile")


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
    """Which space a piece of architecture text belongs to, from its form."""
    t = text.strip()
    if t.startswith("|"):
        return "nb201"
    if t.startswith("Genotype") or t in PUBLISHED:
        return "darts"
    if t.startswith(("add:", "concat:")):
        return "chain"
    if t.isdigit():
        return "macro"
    if re.fullmatch(r"k\d.*", t):
        return "mobile"
    if t.startswith("{"):
        try:
            obj = json.loads(t)
        except json.JSONDecodeError as exc:
            raise GenotypeError("json", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(obj, dict) and isinstance(obj.get("space"), str):
            return obj["space"]
        raise GenotypeError("space", f"the JSON object names no space (allowed: {', '.join(SPACES)})")
    raise GenotypeError(
        "arch",
        f"cannot tell the space of {t[:60]!r}: expected an NB201 string '|op~0|+...', a DARTS 'Genotype(...)' "
        f"or name ({', '.join(PUBLISHED)}), a chain 'add: ...', a macro '02012100', a mobile 'k3e6-k5e3se|...', "
        "or a JSON object; a registered space's own text "
        "needs its name (--space)",
    )


def parse_arch(text: str, space: str | Space[Any] | None = None) -> tuple[Space[Any], Any]:
    """Read an architecture from text in any space; with ``space`` the text must belong to it."""
    if space is not None and get_space(space).name not in BUILT_IN:  # a registered space reads its own text
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


__all__ = [
    "BUILT_IN",
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
    "genotype_from_json",
    "get_space",
    "guess_space",
    "parse_arch",
    "published",
    "register_space",
    "uniform_chooser",
]

"""Options defined once: a group of options is a dataclass whose fields carry their help text (:func:`option`), and
from that one definition come the command line's flags (name, type, default, choices, help), the keys a TOML config
may hold (the command's parser checks them), the keyword arguments the API takes (:func:`make`) and their checks
(the dataclass's own ``__post_init__``). The groups: training (:class:`archsearch.trainer.TrainConfig`), one-shot
(:class:`archsearch.oneshot.OneShotConfig`), search and latency (:mod:`archsearch.api.search_config`), looked up
in :data:`GROUPS` when a parser or a config is made, so a field added to a group is a flag, a TOML key and a keyword
argument at once.

Names kept for runs recorded before a rename are in :data:`RENAMED`: old flags still parse (with a note on stderr),
and recorded options and config files are read under the new names."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from archsearch.errors import ArchsearchError

T = TypeVar("T")


def finite_float(text: str) -> float:
    """Parse a finite number (``nan`` and ``inf`` are refused: no option means them)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """Parse a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """Parse a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


@dataclass(frozen=True)
class Spec:
    """How a field shows on the command line (its flag is ``--field-name``; a switch that is on by default shows as
    ``--no-field-name``): its help, how its text is parsed (default: from the field's type), its choices, old flags
    it still answers to, and whether the command line offers it at all."""

    help: str = ""
    parse: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    old_flags: tuple[str, ...] = ()
    cli: bool = True


def option(default: Any, help: str = "", **spec: Any) -> Any:
    """A dataclass field that is an option: ``default``, its ``help`` and the rest of its :class:`Spec`."""
    return dataclasses.field(default=default, metadata={"option": Spec(help=help, **spec)})


def internal(default: Any) -> Any:
    """A dataclass field that the API takes but the command line does not offer (set by the code that runs it)."""
    return dataclasses.field(default=default, metadata={"option": Spec(cli=False)})


#: group name -> its dataclass, looked up when parsers and configs are made (tests declare a field by replacing one)
GROUPS: dict[str, type] = {}


def register(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: ``cls`` is the option group ``name``."""

    def put(cls: type[T]) -> type[T]:
        GROUPS[name] = cls
        return cls

    return put


def group(name: str) -> type:
    """The dataclass of option group ``name`` (importing the module that defines it)."""
    if name not in GROUPS:
        import importlib

        importlib.import_module(_DEFINED_IN[name])
    return GROUPS[name]


_DEFINED_IN = {"training": "archsearch.trainer", "oneshot": "archsearch.oneshot.base",
               "search": "archsearch.api.search_config", "latency": "archsearch.api.search_config"}  # fmt: skip


@dataclass(frozen=True)
class Field:
    """One option of a group: its name (the flag's dest, the TOML key, the keyword argument), default and spec."""

    name: str
    default: Any
    spec: Spec
    type: Any

    @property
    def flag(self) -> str:
        prefix = "--no-" if self.default is True else "--"
        return prefix + self.name.replace("_", "-")


def fields(cls: type, cli_only: bool = False) -> Iterator[Field]:
    """The option fields of a group (``cli_only``: those the command line offers)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is None or (cli_only and not spec.cli):
            continue
        yield Field(f.name, f.default, spec, hints[f.name])


def names(cls: type, cli_only: bool = False) -> set[str]:
    """The names of a group's options."""
    return {f.name for f in fields(cls, cli_only)}


def add_arguments(parser: argparse.ArgumentParser, cls: type, defaults: Mapping[str, Any] | None = None,
                  skip: frozenset[str] | set[str] = frozenset()) -> None:  # fmt: skip
    """Add a flag for every command-line option of group ``cls`` (but ``skip``); ``defaults`` replace the group's
    defaults on this command (a search's trials train for fewer epochs than ``archsearch train``)."""
    for f in fields(cls, cli_only=True):
        if f.name in skip:
            continue
        default = (defaults or {}).get(f.name, f.default)
        kwargs = _argument(f, default)
        parser.add_argument(f.flag, dest=f.name, **kwargs)
        for old in f.spec.old_flags:
            parser.add_argument(old, dest=f.name, help=argparse.SUPPRESS, default=argparse.SUPPRESS,
                                action=_renamed(f.flag), **{k: v for k, v in kwargs.items()
                                                            if k in ("type", "choices", "nargs")})  # fmt: skip


def _argument(f: Field, default: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords of field ``f``."""
    shown = default is not None and not isinstance(default, bool) and default != ""
    help_text = f.spec.help + (f" (default {default})" if shown else "")
    base = _base_type(f.type)
    if base is bool:
        return {"action": "store_false" if f.default is True else "store_true", "help": f.spec.help}
    kwargs: dict[str, Any] = {"default": default, "help": help_text, "type": f.spec.parse or _PARSERS.get(base, str)}
    if f.spec.choices is not None:
        kwargs["choices"] = f.spec.choices
    if f.spec.metavar is not None:
        kwargs["metavar"] = f.spec.metavar
    return kwargs


_PARSERS: dict[Any, Callable[[str], Any]] = {int: int, float: finite_float, str: str}


def _base_type(annotation: Any) -> Any:
    """``int`` for ``int | None``, ``bool`` for a switch that also takes an object (``bool | Augment``), the type
    itself otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if bool in args:
            return bool
        return args[0] if len(args) == 1 else str
    return annotation


def _renamed(new: str) -> type[argparse.Action]:
    class Renamed(argparse.Action):
        """An old flag: sets the option and says its new name."""

        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
            print(f"archsearch: {option_string} is now {new}", file=sys.stderr)
            setattr(namespace, self.dest, values)

    return Renamed


def values(cls: type, args: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The group's options found in ``args`` by name: those the command line offers, from a parsed command line;
    any of the group's, from a mapping."""
    if isinstance(args, argparse.Namespace):
        return {name: getattr(args, name) for name in names(cls, cli_only=True) if hasattr(args, name)}
    return {name: args[name] for name in names(cls) if name in args}


def make(cls: type[T], base: T | None = None, where: str = "", **given: Any) -> T:
    """An instance of group ``cls``: ``base`` (or the defaults) with ``given`` options; a name that is not an option
    of the group is an error naming the ones that are (``where`` says who was called)."""
    allowed = names(cls)
    unknown = sorted(set(given) - allowed)
    renamed = {old: new for name, table in RENAMED.items() if issubclass(cls, group(name))
               for old, (new, _) in table.items() if old in unknown}  # fmt: skip
    if renamed:
        raise ArchsearchError(f"{where or cls.__name__}: " + ", ".join(f"{old} is now {new}" for old, new in
                                                                       sorted(renamed.items())))  # fmt: skip
    if unknown:
        raise ArchsearchError(f"{where or cls.__name__}: unknown option(s) {', '.join(unknown)} "
                              f"(allowed: {', '.join(sorted(allowed))})")  # fmt: skip
    if base is None:
        return cls(**given)
    return dataclasses.replace(base, **given)  # type: ignore[type-var]


def unchanged(value: Any) -> Any:
    """A renamed option's value, as it was."""
    return value


#: old name -> (new name, how an old value becomes a new one), for runs and config files written before a rename
RENAMED: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "training": {"warmup": ("lr_warmup_epochs", unchanged), "warmup_epochs": ("lr_warmup_epochs", unchanged),
                 "no_augment": ("augment", lambda v: not v),
                 "amp": ("precision", lambda v: "auto" if v else "float32")},
    "oneshot": {"warmup_epochs": ("weights_only_epochs", unchanged)},
}  # fmt: skip


def migrate(recorded: Mapping[str, Any], *groups: str) -> dict[str, Any]:
    """``recorded`` options (a run's, a config file's) under today's names: a value stored under an old name of one
    of ``groups`` moves to the new name (a value under the new name wins)."""
    out = dict(recorded)
    for name in groups:
        out = rename_keys(out, RENAMED.get(name, {}))
    return out


def rename_keys(recorded: Mapping[str, Any], renames: Mapping[str, tuple[str, Callable[[Any], Any]]]) -> dict[str, Any]:
    """``recorded`` with each old key's value moved to its new key (converted); a value under the new key wins."""
    out = dict(recorded)
    for old, (new, convert) in renames.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, convert(value))
    return out


def flag_of(dest: str) -> str:
    """The flag of option ``dest`` as the command line shows it (``--no-augment`` for ``augment``)."""
    for cls in GROUPS.values():
        for f in fields(cls, cli_only=True):
            if f.name == dest:
                return f.flag
    return "--" + dest.replace("_", "-")

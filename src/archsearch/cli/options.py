"""What the user gave: options named on the command line (told apart from defaults), values from a TOML config checked
by the same parser, and options that would not act in the chosen setting (refused, never ignored)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from archsearch import options
from archsearch.errors import ArchsearchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: dests that are not options of a run (how a command reads or prints, not what it does)
NOT_OPTIONS = frozenset({"help", "config", "resume", "json", "func", "command", "given"})


def given_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests the user named in ``argv`` (a value equal to the default still counts as named): ``argv`` is parsed
    again by ``parser`` with every default suppressed, so only named options appear."""
    for sub in _subparsers(parser):
        for action in sub._actions:
            action.default = argparse.SUPPRESS
        sub._defaults.clear()
    return set(vars(parser.parse_args(argv))) - {"command"}


def _subparsers(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The parser's options by dest, without the ones that are not settings of a run."""
    return {a.dest: a for a in parser._actions
            if a.dest not in NOT_OPTIONS and a.option_strings and a.help != argparse.SUPPRESS}  # fmt: skip


def flag(dest: str) -> str:
    """The flag of option ``dest`` as the command line shows it."""
    return options.flag_of(dest)


def take_recorded(args: argparse.Namespace, given: set[str], recorded: dict[str, Any], resumable: Iterable[str],
                  out: Any) -> None:  # fmt: skip
    """Resume reconciliation, for every command that resumes: the run's recorded options fill ``args``, except
    those a resume may change (``resumable``); an option given with another value than the run's is an error naming
    it and the recorded value."""
    may_change = set(resumable)
    for dest in sorted(given & set(recorded) - may_change):
        if getattr(args, dest) != recorded[dest]:
            raise ArchsearchError(
                f"{flag(dest)} {getattr(args, dest)!r} contradicts the run in {out}, which has {recorded[dest]!r}: "
                "resume takes its settings from the run (drop the option, or start a new run with another --out)"
            )
    for dest, value in recorded.items():
        if dest not in may_change and hasattr(args, dest):
            setattr(args, dest, value)


def apply_config_file(args: argparse.Namespace, parser: argparse.ArgumentParser, given: set[str],
                      groups: tuple[str, ...] = ("training",)) -> set[str]:  # fmt: skip
    """Fill ``args`` from ``--config FILE.toml`` where the command line named nothing; each value passes the same
    checks as on the command line (type, choices); keys renamed since are read under their new names (the option
    ``groups`` of the command say which). Returns the keys the file set."""
    path = Path(args.config)
    try:
        values = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ArchsearchError(f"{path}: cannot read the config ({exc})") from None
    values = options.migrate(values, *groups)  # keys of a file written before a rename
    actions = option_actions(parser)
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise ArchsearchError(f"{path}: unknown key(s) {unknown} (allowed: {', '.join(sorted(actions))})")
    if isinstance(values.get("evaluator"), str) and ":" in values["evaluator"]:
        raise ArchsearchError(
            f"{path}: evaluator = {values['evaluator']!r}: a config file may name only registered evaluators; "
            "archsearch imports no class a file names, so give a custom one on the command line (--evaluator)"
        )
    set_keys = set()
    for key, value in values.items():
        if key in given:
            continue  # the command line wins
        setattr(args, key, _convert(path, key, value, actions[key]))
        set_keys.add(key)
    return set_keys


def given_with_config(args: argparse.Namespace, groups: tuple[str, ...]) -> set[str]:
    """The options the user gave, with those of ``--config FILE.toml`` (which fills ``args`` where the command line
    named nothing; ``groups``: the option groups of the command, for keys renamed since)."""
    given = set(getattr(args, "given", set()))
    if getattr(args, "config", None):
        from archsearch.cli import build_parser

        parser = build_parser()._subparsers._group_actions[0].choices[args.command]  # type: ignore[union-attr]
        given |= apply_config_file(args, parser, given, groups)
    return given


def _convert(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    where = f"{path}: {key} = {value!r}"
    if action.nargs == 0:  # a switch
        if not isinstance(value, bool):
            raise ArchsearchError(f"{where}: expected true or false")
        return value  # the key is the option's own name: `augment = false` is --no-augment
    if isinstance(action, argparse._AppendAction):
        items = value if isinstance(value, list) else [value]
        return [_convert_one(where, item, action) for item in items]
    return _convert_one(where, value, action)


def _convert_one(where: str, value: Any, action: argparse.Action) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ArchsearchError(f"{where}: expected {'a string' if action.type is None else 'a number'}")
    if action.type is None and not isinstance(value, str):
        raise ArchsearchError(f"{where}: expected a string")
    try:
        converted = action.type(str(value)) if callable(action.type) else value
    except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
        raise ArchsearchError(f"{where}: {exc}") from None
    if action.choices is not None and converted not in action.choices:
        raise ArchsearchError(f"{where}: allowed: {', '.join(map(str, action.choices))}")
    return converted


def refuse_unused(given: set[str], used: set[str], why: str) -> None:
    """Options the user gave that nothing in this setting reads are an error (``why`` says what the setting is)."""
    unused = sorted(given - used - NOT_OPTIONS)
    if unused:
        names = ", ".join(flag(d) for d in unused)
        raise ArchsearchError(f"{names} {'has' if len(unused) == 1 else 'have'} no effect {why}; drop {names}")


def default_of(definition: Any, name: str) -> Any:
    """The default of parameter ``name`` of a function, or of field ``name`` of a dataclass: the command line takes
    its defaults from the API's definitions, so the two cannot differ."""
    import dataclasses
    import inspect

    if dataclasses.is_dataclass(definition):
        for f in dataclasses.fields(definition):
            if f.name == name:
                return f.default
        raise KeyError(f"{definition.__name__} has no field {name!r}")
    default = inspect.signature(definition).parameters[name].default
    if default is inspect.Parameter.empty:
        raise KeyError(f"{definition.__name__}({name}) has no default")
    return default

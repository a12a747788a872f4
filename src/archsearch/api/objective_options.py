"""How a search's objective is configured: table columns and their directions, how ``latency_ms`` is measured or
predicted (a latency lookup table or a fitted device model), and the objectives a multi-objective strategy gets."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ArchsearchError
from archsearch.objectives import DIRECTIONS, Objective
from archsearch.spaces import get_space
from archsearch.strategies import STRATEGIES


def latency_settings(objective: Objective, named: set[str], space: str, table: str | Path | None,
                      target: str | None, threads: int) -> None:  # fmt: skip
    """Put how ``latency_ms`` is measured (or predicted by a latency table) into ``objective``; refuse settings that
    would act on nothing."""
    from archsearch.costs.lookup import LatencyTable
    from archsearch.costs.runtime import check_target

    given = [n for n, v in (("latency_table", table), ("latency_target", target)) if v is not None]
    if threads != 1:
        given.append("latency_threads")
    if given and "latency_ms" not in named:
        raise ArchsearchError(f"{', '.join(given)} set how latency_ms is measured, but no constraint or objective "
                              "uses latency_ms (e.g. --constraint latency_ms<=5 or --objectives "
                              "val_acc,latency_ms)")  # fmt: skip
    if threads < 1:
        raise ArchsearchError(f"latency_threads must be >= 1, got {threads}")
    objective.latency_threads = threads
    if target is not None:
        objective.latency_target = check_target(target)
    if table is not None:
        lut = LatencyTable.load(table)
        lut.check(get_space(space).name, target, where=str(table))
        objective.latency_table, objective.latency_target = lut.to_json(), lut.target
        objective.latency_threads, objective.latency_batch_size = lut.threads, lut.batch_size


def table_options(table: str | Path | Sequence[str | Path], signal: str, report: str) -> dict[str, Any]:
    """The table evaluator's options: the first table (with the signal and reported columns) and the tables
    joined to it on the architecture."""
    paths = [table] if isinstance(table, (str, Path)) else list(table)
    if not paths:
        raise ArchsearchError("--table needs at least one CSV file")
    options: dict[str, Any] = {"table": str(Path(paths[0]).resolve())}
    if paths[1:]:
        options["join"] = [str(Path(p).resolve()) for p in paths[1:]]
    if (signal, report) != ("valid_acc_12ep", "test_acc_200ep"):
        options.update(signal=signal, report=report)
    return options


def check_columns(objective: Objective, space: str, table: dict[str, Any] | None) -> None:
    """Column metrics need a table that holds them."""
    if not objective.columns:
        return
    if table is None:
        from archsearch.objectives import COST_METRICS

        names = ", ".join(objective.columns)
        raise ArchsearchError(f"{names}: not a built-in metric; constraints are METRIC<=VALUE with METRIC one of "
                              f"{', '.join(COST_METRICS)}, objectives built-in metrics ({', '.join(DIRECTIONS)}); "
                              "a column of a table needs a search on that table (--table)")  # fmt: skip
    from archsearch.evaluators.table import header_columns

    paths = [table["table"], *table.get("join", [])]
    have = [c for path in paths for c in header_columns(path)]
    unknown = [n for n in objective.columns if n not in have and n not in ("params", "flops")]
    if unknown:
        raise ArchsearchError(f"{', '.join(unknown)}: not a column of the table(s) "
                              f"{', '.join(Path(p).name for p in paths)} (columns: {', '.join(have)}; params and "
                              "flops are counted)")  # fmt: skip


def latency_model_settings(objective: Objective, named: set[str], space: str, path: str | Path | None,
                           lut: str | Path | None, target: str | None = None, threads: int = 1) -> None:  # fmt: skip
    """``latency_ms`` predicted by a fitted device model (``archsearch latency-model fit``)."""
    if path is None:
        return
    from archsearch.costs.device_model import LatencyModel

    if "latency_ms" not in named:
        raise ArchsearchError("--latency-model predicts latency_ms, but no constraint or objective uses latency_ms "
                              "(e.g. --constraint latency_ms<=5)")  # fmt: skip
    if lut is not None:
        raise ArchsearchError("latency_ms comes from --latency-model or --latency-table, not both")
    if target is not None or threads != 1:
        raise ArchsearchError("--latency-target and --latency-threads set how latency_ms is measured; with "
                              "--latency-model it is predicted for the model's device: drop them")  # fmt: skip
    model = LatencyModel.load(path)
    if model.space != get_space(space).name:
        raise ArchsearchError(f"{path}: the latency model was fitted on space {model.space}, not {space}")
    objective.latency_model = model.to_json()


def strategy_objectives(strategy: str, objective: Objective, options: dict[str, Any] | None) -> dict[str, Any] | None:
    """A multi-objective strategy (one taking ``objectives``) is given the search's objectives."""
    if not isinstance(strategy, str) or "objectives" not in inspect.signature(STRATEGIES.get(strategy)).parameters:
        return options
    given = dict(options or {})
    if "objectives" in given:
        raise ArchsearchError(f"strategy {strategy} optimises the search's objectives: give them as --objectives")
    if len(objective.objectives) < 2:
        raise ArchsearchError(f"strategy {strategy} is multi-objective: name two or more --objectives "
                              "(e.g. val_acc,latency_ms)")  # fmt: skip
    return {**given, "objectives": objective.specs()}


def check_latency_table(objective: Objective, evaluator: Any) -> None:
    """A search's latency table must be for the networks its evaluator builds (input shape, classes, build)."""
    if objective.latency_table is None:
        return
    from archsearch.costs.lookup import LatencyTable

    data = getattr(evaluator, "data", None)
    table = LatencyTable.from_json(objective.latency_table, "the search's latency table")
    table.check(table.space, None, data.input_shape if data is not None else None,
                data.num_classes if data is not None else None, getattr(evaluator, "build_options", None),
                where="the latency table")  # fmt: skip

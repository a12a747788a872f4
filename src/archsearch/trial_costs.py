"""What a trial costs before it is trained: the measured, counted, looked-up or predicted values of the metrics
the objective limits or optimises (``params``, ``flops``, ``latency_ms``, peak memory, a table's columns). A
network that breaks a limit is never trained."""

from __future__ import annotations

from typing import Any

from archsearch import costs
from archsearch.errors import ArchsearchError
from archsearch.objectives import Objective


class CostMeter:
    """The costs of each architecture a search proposes, measured once and kept by its key."""

    def __init__(self, space: Any, evaluator: Any, objective: Objective) -> None:
        self.space, self.evaluator, self.objective = space, evaluator, objective
        self.cache: dict[str, dict[str, float]] = {}
        self.latency_table: Any = None  # the objective's latency table, read at its first use
        self.latency_model: Any = None  # the objective's device latency model, read at its first use

    def of(self, genotype: Any) -> dict[str, float]:
        """The costs the objective needs for ``genotype`` (a configuration error is an ArchsearchError)."""
        needed = self.objective.needed_costs()
        if not needed or genotype.key in self.cache:
            return self.cache.get(genotype.key, {})
        if hasattr(self.evaluator, "costs"):  # a table: columns and counts without a network
            values = self._table_costs(genotype, needed)
            self.cache[genotype.key] = values
            return values
        network = getattr(self.evaluator, "network", None)
        if network is None:
            raise ArchsearchError(
                f"the {self.evaluator.name} evaluator builds no network, so constraints on "
                f"{', '.join(sorted(needed))} cannot be checked"
            )
        model, shape = network(genotype, seed=0)
        values: dict[str, float] = {}
        if needed & {"params", "flops"}:
            values["params"] = float(costs.count_params(model))
            values["flops"] = float(costs.count_flops(model, shape))
        if "latency_ms" in needed:
            values.update(self._latency(genotype, model, shape))
        for mode in ("forward", "train"):
            if f"{mode}_peak_mb" in needed:
                values[f"{mode}_peak_mb"] = costs.peak_memory_mb(model, shape, mode=mode)
        self.cache[genotype.key] = values
        return values

    def _table_costs(self, genotype: Any, needed: set[str]) -> dict[str, float]:
        """Costs on a table search: its columns, counted params/flops, and ``latency_ms`` from a latency model."""
        values: dict[str, float] = {}
        if "latency_ms" in needed:
            if self.objective.latency_model is None:
                raise ArchsearchError("a table search builds no network to time: latency_ms needs --latency-model "
                                      "FILE (a fitted device model), or name a latency column of the "
                                      "table")  # fmt: skip
            values["latency_ms"] = self._predicted_latency(genotype)
        other = sorted(needed - {"latency_ms"})
        unsupported = [n for n in other if n in ("forward_peak_mb", "train_peak_mb")]
        if unsupported:
            raise ArchsearchError(f"a table search builds no network, so {', '.join(unsupported)} cannot be measured")
        values.update(self.evaluator.costs(genotype, other))  # type: ignore[attr-defined]
        return values

    def _predicted_latency(self, genotype: Any) -> float:
        from archsearch.costs.device_model import LatencyModel

        if self.latency_model is None:
            self.latency_model = LatencyModel.from_json(self.objective.latency_model, "the search's latency model")
        return self.latency_model.predict([genotype], self.space)[0]

    def _latency(self, genotype: Any, model: Any, shape: Any) -> dict[str, float]:
        """``latency_ms``: predicted by the objective's latency table (and measured where the prediction is near a
        limit), else measured on the objective's target."""
        from archsearch.costs.lookup import LatencyTable, constrained_latency

        o = self.objective
        if o.latency_model is not None:
            return {"latency_ms": self._predicted_latency(genotype)}
        if o.latency_table is None:
            from archsearch.costs.runtime import measure

            return {"latency_ms": measure(model, shape, o.latency_target, o.latency_batch_size, o.latency_threads,
                                          device=o.latency_device).median_ms}  # fmt: skip
        if self.latency_table is None:
            self.latency_table = LatencyTable.from_json(o.latency_table, "the search's latency table")
        limit = o.limits.get("latency_ms") if o.latency_verify else None
        return constrained_latency(self.latency_table, genotype, self.space, model, limit)


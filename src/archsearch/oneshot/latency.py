"""A latency target in a one-shot search: the supernet's expected latency from a latency table, kept at or under the
target by a Lagrange multiplier that adapts during the search, so the user gives a limit, not a weight to tune.

The architecture loss gains ``multiplier * (E[latency] / target - 1)``; after every architecture step the multiplier
takes a step of dual ascent, ``multiplier <- max(0, multiplier + rate * (E[latency] / target - 1))``: it grows while
the expectation is over the target, shrinks while under, and stays at 0 when the target is met with room to spare
(then accuracy alone drives the alphas). The expectation is differentiable in the architecture parameters
(:meth:`~archsearch.oneshot.block_supernets.BlockSupernet.expected_latency`), so the penalty's gradient moves each
layer's probabilities towards its cheaper choices in proportion to how much each one costs against the layer's mean.

A method without architecture weights that searches its trained supernet's sub-networks (SPOS) takes the target as
that search's limit instead (``archsearch.api.oneshot_search.subnetwork_search``), as Single Path One-Shot searched
under a FLOPs limit; :func:`first_measured_within` measures its winners.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.costs.lookup import LatencyTable
from archsearch.errors import ArchsearchError

#: the multiplier's step per architecture step and unit of relative violation (a search of ~1,000 steps 10% over
#: its target raises it by about 1, the scale of the cross-entropy it is weighed against)
RATE = 0.01


@dataclass
class LatencyTarget:
    """A table, a target in milliseconds, and the multiplier's state (saved with the method's, so a resumed run
    continues it)."""

    table: LatencyTable
    target_ms: float
    rate: float = RATE
    multiplier: float = 0.0
    last_expected_ms: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target_ms) and self.target_ms > 0):
            raise ArchsearchError(f"the latency target must be a positive number of milliseconds, got {self.target_ms}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ArchsearchError(f"the multiplier's rate must be positive, got {self.rate}")

    def penalty(self, net: Any) -> torch.Tensor:
        """``multiplier * (E[latency] / target - 1)`` for the supernet's current architecture weights (its gradient
        reaches them); remembers the expectation for :meth:`update`."""
        expected = net.expected_latency(self.table)
        self.last_expected_ms = float(expected.detach())
        return self.multiplier * (expected / self.target_ms - 1.0)

    def update(self) -> None:
        """One step of dual ascent on the multiplier, from the expectation :meth:`penalty` last saw."""
        if self.last_expected_ms is None:
            return
        violation = self.last_expected_ms / self.target_ms - 1.0
        self.multiplier = max(0.0, self.multiplier + self.rate * violation)

    def state_dict(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "last_expected_ms": self.last_expected_ms}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.multiplier = float(state["multiplier"])
        self.last_expected_ms = state.get("last_expected_ms")


def derive_within(net: Any, table: LatencyTable, limit_ms: float, steps: int = 40) -> tuple[Any, str | None]:
    """The derived genotype if the table predicts it within ``limit_ms``; else the most probable network within it,
    found as the derivation of ``log p - mu * latency`` (each choice's log-probability less ``mu`` times what it
    adds to the latency) with the least ``mu`` that meets the limit (bisection), and a note saying so. Raises when
    even the fastest choices break the limit."""
    genotype = net.derive()
    predicted = table.predict(genotype, net.space)
    if predicted <= limit_ms:
        return genotype, None
    logp = torch.log_softmax(net.arch_logits()["layer"].detach(), dim=-1)
    _, per_choice = net.latency_terms(table)
    per_choice = per_choice * table.scale

    def derived(mu: float) -> tuple[Any, float]:
        g = net.derive(logp - mu * per_choice)
        return g, table.predict(g, net.space)

    low, high = 0.0, 1.0
    fastest, fastest_ms = derived(high)
    while fastest_ms > limit_ms and high < 1e9:
        high *= 4
        fastest, fastest_ms = derived(high)
    if fastest_ms > limit_ms:
        raise ArchsearchError(f"no network of the space is predicted within {limit_ms:g} ms: the fastest the table "
                              f"finds takes {fastest_ms:.4g} ms ({fastest}); raise the target")  # fmt: skip
    best, best_ms = fastest, fastest_ms
    for _ in range(steps):
        mid = (low + high) / 2
        g, ms = derived(mid)
        if ms <= limit_ms:
            high, best, best_ms = mid, g, ms
        else:
            low = mid
    note = (f"the derived network ({genotype}) is predicted at {predicted:.4g} ms, over the {limit_ms:g} ms limit; "
            f"the most probable network within it was taken instead ({best_ms:.4g} ms)")  # fmt: skip
    return best, note


def check_latency_target(method: Any, net: Any, target: LatencyTarget) -> None:
    """A latency target needs a method that learns architecture weights (the penalty steers them) or searches
    sub-networks (the search keeps to the target), and a supernet of a block space whose networks the table was
    built for (a table of another space, input or build is refused, naming the difference)."""
    if not (method.learns_arch or method.searches_subnetworks):
        raise ArchsearchError(f"a latency target steers architecture weights or a search over sub-networks, and "
                              f"{method.name} has neither")  # fmt: skip
    if not hasattr(net, "expected_latency"):
        raise ArchsearchError("a latency target needs a supernet whose expected latency a latency table gives "
                              "(the mobile and macro supernets)")  # fmt: skip
    net.latency_terms(target.table)


def first_measured_within(net: Any, ranked: Sequence[Any], target: LatencyTarget,
                          tries: int = 4) -> tuple[Any, list[str], float]:  # fmt: skip
    """The first of the ``ranked`` genotypes (best first) that meets the target when measured on the table's
    runtime; the genotype, notes on those passed over, and its measured milliseconds. A measurement over the target
    shows how far the table predicts low for these networks: the prediction the next candidate must be within is
    lowered to ``target x predicted / measured`` (never raised again), and the genotypes predicted above it are
    passed over unmeasured, as :func:`derive_measured` derives again under a lowered prediction. Raises when none of
    ``tries`` measured networks meets it, or none is left within the lowered prediction."""
    notes: list[str] = []
    limit, measured, skipped = target.target_ms, 0, 0
    for genotype in ranked:
        predicted = target.table.predict(genotype, net.space)
        if predicted > limit:
            skipped += 1
            continue
        if measured == tries:
            break
        ms = measured_ms(net, genotype, target.table, target.target_ms)
        measured += 1
        if ms <= target.target_ms:
            if skipped:
                notes.append(f"{skipped} more accurate sub-network(s) predicted above {limit:.4g} ms were passed "
                             "over unmeasured")  # fmt: skip
            return genotype, notes, ms
        limit = min(limit, target.target_ms * predicted / ms)
        notes.append(f"{genotype} (predicted {predicted:.4g} ms) measured {ms:.4g} ms on {target.table.target}, over "
                     f"the {target.target_ms:g} ms target, and was passed over; the next must be predicted within "
                     f"{limit:.4g} ms")  # fmt: skip
    why = (f"{measured} measured" if measured == tries else
           f"{measured} measured and no other sub-network predicted within {limit:.4g} ms")  # fmt: skip
    raise ArchsearchError(f"no sub-network met the {target.target_ms:g} ms target when measured on "
                          f"{target.table.target} ({why}): " + "; ".join(notes))  # fmt: skip


def epoch_latency(target: LatencyTarget, net: Any, genotype: Any) -> dict[str, float]:
    """What an epoch records of the latency target: the supernet's expected latency, the multiplier, the derived
    network's predicted latency and its latency measured on the table's runtime, and the target (milliseconds)."""
    with torch.no_grad():
        expected = float(net.expected_latency(target.table))
    return {"expected_ms": expected, "multiplier": target.multiplier,
            "predicted_ms": target.table.predict(genotype, net.space),
            "measured_ms": measured_ms(net, genotype, target.table, record=True),
            "target_ms": target.target_ms}  # fmt: skip


def measured_ms(net: Any, genotype: Any, table: LatencyTable, limit_ms: float | None = None,
                record: bool = False) -> float:  # fmt: skip
    """The latency of ``genotype``'s network measured as the table was built: its runtime, threads, batch and input
    (freshly built weights: latency does not depend on their values). As a limit is decided
    (:func:`~archsearch.costs.runtime.verified_ms` against ``limit_ms``), or with ``record`` one session's median
    (an epoch's record, not a decision)."""
    from archsearch.costs.runtime import measure, verified_ms

    model = table.network(genotype, net.space).eval()
    if record:
        return measure(model, table.input_shape, table.target, table.batch_size, table.threads).median_ms
    return verified_ms(model, table.input_shape, table.target, table.batch_size, table.threads, limit_ms)


def derive_measured(net: Any, target: LatencyTarget, tries: int = 4) -> tuple[Any, list[str], float]:
    """The derived network within the target as measured on the table's runtime: :func:`derive_within` the target,
    then, while the measurement breaks it, again within a prediction lowered by the measured overrun. Returns the
    genotype, notes on what was done, and its measured milliseconds; raises if ``tries`` derivations all break it."""
    limit, notes = target.target_ms, []
    for _ in range(tries):
        try:
            genotype, note = derive_within(net, target.table, limit)
        except ArchsearchError as error:
            if not notes:
                raise
            raise ArchsearchError(f"no derived network met the {target.target_ms:g} ms target when measured on "
                                  f"{target.table.target}: " + "; ".join([*notes, str(error)])) from error  # fmt: skip
        notes += [note] if note else []
        ms = measured_ms(net, genotype, target.table, target.target_ms)
        if ms <= target.target_ms:
            return genotype, notes, ms
        limit *= target.target_ms / ms
        notes.append(f"{genotype} measured {ms:.4g} ms on {target.table.target}, over the {target.target_ms:g} ms "
                     f"target; derived again with its prediction held under {limit:.4g} ms")  # fmt: skip
    raise ArchsearchError(f"no derived network met the {target.target_ms:g} ms target when measured on "
                          f"{target.table.target} after {tries} tries: " + "; ".join(notes))  # fmt: skip

"""Device latency models: predict a network's latency on a device archsearch cannot run on, from a few networks
timed there.

A user times k networks on their phone (a CSV of ``arch, latency_ms``); :func:`fit` builds a ridge regression of
latency on each candidate set of the architecture's features (the ridge strength chosen by leave-one-out error on
the measured networks) and predicts with the mean of the best of them and the simplest one nearly as good, that
choice made again on every subset leaving one network out and averaged (see :func:`fit`). The features:

- ``ops``: how often each decision value occurs (NB201: the count of each op in the cell; ``mobile``: kernel sizes,
  expansions, ... counted over layers),
- ``size``: params and FLOPs of the network built at the space's defaults for 3x32x32 inputs and 10 classes
  (with the op counts),
- ``reference`` (with a reference table): the latencies of the same architectures measured on other devices, as
  HELP meta-learns from other devices: all columns together, each column alone, and each column with the op
  counts. The model keeps the reference values it reads, so a model file stands alone.

The model is saved as JSON (never a pickle) and read back with every field checked. Written by hand: ridge
regression with leave-one-out selection on ten rows is a few lines of numpy, and scikit-learn's estimators would be
stored by pickling.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.errors import ArchsearchError

FORMAT = "archsearch-latency-model"
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: a feature set with fewer features joins the best one when its leave-one-out error is within this factor
PARSIMONY = 3.0
MIN_ROWS = 3


def _kind(name: str) -> str:
    """A decision's kind: its name without positions (``s0.l2.kernel`` -> ``s.l.kernel``)."""
    return re.sub(r"[0-9]+", "", name)


def op_counts(genotype: Any, space: Any) -> dict[str, float]:
    """How often each ``kind=value`` occurs among the genotype's decisions."""
    out: dict[str, float] = {}
    for d in space.decisions(genotype):
        key = f"{_kind(d.name)}={d.value}"
        out[key] = out.get(key, 0.0) + 1.0
    return out


def read_measured(path: str | Path, space: Any) -> list[tuple[Any, float]]:
    """The ``arch, latency_ms`` rows of a CSV of measured networks, each arch read in ``space``; a row of another
    space, a duplicate architecture, a negative or non-finite latency, or fewer than 3 rows is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise ArchsearchError(f"{path}: no such file (a CSV of arch, latency_ms)")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("arch", "latency_ms") if c not in (reader.fieldnames or ())]
            if missing:
                raise ArchsearchError(f"{path}: missing column(s) {missing}; a measured-latency CSV has columns "
                                      "arch, latency_ms")  # fmt: skip
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise ArchsearchError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ArchsearchError(f"{path}: not a readable CSV file ({exc})") from None
    out: list[tuple[Any, float]] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=2):
        arch = row.get("arch") or ""
        try:
            genotype = space.parse(arch)
        except ArchsearchError as exc:
            raise ArchsearchError(f"{path}:{n}: arch {arch[:60]!r} is not a {space.name} architecture "
                                  f"({exc})") from None
        try:
            ms = float(row.get("latency_ms") or "")
        except ValueError:
            raise ArchsearchError(f"{path}:{n}: latency_ms {row.get('latency_ms')!r:.40} is not a number") from None
        if not math.isfinite(ms) or ms < 0:
            raise ArchsearchError(f"{path}:{n}: latency_ms must be a finite number >= 0, got {ms}")
        if genotype.key in seen:
            raise ArchsearchError(f"{path}:{n}: architecture {arch[:60]!r} is measured twice "
                                  f"(line {seen[genotype.key]})")
        seen[genotype.key] = n
        out.append((genotype, ms))
    if len(out) < MIN_ROWS:
        raise ArchsearchError(f"{path}: {len(out)} measured network(s); a latency model needs at least {MIN_ROWS}")
    return out


def read_reference(path: str | Path, space: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Latencies of the same architectures on other devices: a CSV with ``arch`` and numeric columns (``columns``:
    the ones to use, default all but ``index``), as ``{"columns": [...], "rows": {key: [values]}}``."""
    path = Path(path)
    if not path.is_file():
        raise ArchsearchError(f"{path}: no such reference table")
    rows: dict[str, list[float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        names = [c for c in (reader.fieldnames or ()) if c not in ("arch", "index")]
        use = list(columns) if columns else names
        unknown = [c for c in use if c not in names]
        if "arch" not in (reader.fieldnames or ()) or unknown or not use:
            raise ArchsearchError(f"{path}: a reference table needs an arch column and the columns {use} "
                                  f"(it has {', '.join(names) or 'none'})")  # fmt: skip
        for n, row in enumerate(reader, start=2):
            try:
                key = row["arch"] if space.text_is_key else str(space.parse(row["arch"]).key)
            except ArchsearchError as exc:
                raise ArchsearchError(f"{path}:{n}: not a {space.name} architecture ({exc})") from None
            try:
                rows[key] = [float(row[c]) for c in use]
            except (TypeError, ValueError):
                raise ArchsearchError(f"{path}:{n}: the columns {use} must be numbers") from None
    return {"columns": use, "rows": rows}


@dataclass
class Member:
    """One ridge regression of the ensemble: ``latency_ms = intercept + coef . (features - mean) / scale``."""

    features: str  # its feature set: ops, size, ops+size, reference, reference:COLUMN, reference:COLUMN+ops
    names: list[str]  # feature names, in the order of coef
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    ridge: float
    loo_rmse_ms: float  # its leave-one-out error on the measured networks
    weight: float  # its share of the prediction

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Member:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("features"), str):
            raise ArchsearchError(f"{where}: a model member must be an object with its features")
        names = obj.get("names")
        n = len(names) if isinstance(names, list) else -1
        vectors = [obj.get(k) for k in ("mean", "scale", "coef")]
        ok = n >= 1 and all(isinstance(x, str) for x in names)
        ok = ok and all(isinstance(v, list) and len(v) == n and all(_finite(x) for x in v) for v in vectors)
        ok = ok and all(_finite(obj.get(k)) for k in ("intercept", "ridge", "loo_rmse_ms", "weight"))
        if not ok or any(x == 0 for x in obj["scale"]):
            raise ArchsearchError(f"{where}: a model member's names, mean, scale (non-zero), coef, intercept, ridge, "
                                  "error and weight must be finite numbers, the vectors of one length")  # fmt: skip
        return cls(obj["features"], list(names), *[[float(x) for x in v] for v in vectors],
                   *[float(obj[k]) for k in ("intercept", "ridge", "loo_rmse_ms", "weight")])  # fmt: skip


@dataclass
class LatencyModel:
    """A fitted latency model: a weighted ensemble of ridge regressions on the architecture's features."""

    space: str
    members: list[Member]
    measured: int
    reference: dict[str, Any] | None = None
    fitted_on: str = ""
    tried: dict[str, float] = field(default_factory=dict)  # every candidate feature set's leave-one-out error (ms)
    _cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False, compare=False)

    def _raw(self, genotype: Any, space: Any) -> dict[str, float]:
        if genotype.key not in self._cache:
            self._cache[genotype.key] = raw_features(genotype, space, self.kinds(), self.reference)
        return self._cache[genotype.key]

    def predict(self, genotypes: Sequence[Any], space: Any) -> list[float]:
        """Predicted latency (ms) of each genotype of ``space`` (the model's space)."""
        if space.name != self.space:
            raise ArchsearchError(f"this latency model was fitted on space {self.space}, not {space.name}")
        return self.predict_features([self._raw(g, space) for g in genotypes])

    def kinds(self) -> str:
        """The feature kinds the members read (what :func:`raw_features` must compute for :meth:`predict_features`)."""
        return "+".join(sorted({part.partition(":")[0] for m in self.members for part in m.features.split("+")}))

    def predict_features(self, raws: Sequence[Mapping[str, float]]) -> list[float]:
        """Predicted latency (ms) from each network's :func:`raw_features` (computed once when many models predict
        the same networks, as a benchmark does)."""
        total = np.zeros(len(raws))
        for m in self.members:
            x = np.array([[r.get(n, 0.0) for n in m.names] for r in raws], dtype=float).reshape(len(raws), -1)
            total += m.weight * (m.intercept + ((x - np.array(m.mean)) / np.array(m.scale)) @ np.array(m.coef))
        return [float(v) for v in total]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": 1, "space": self.space, "measured": self.measured,
                "members": [m.to_json() for m in self.members], "reference": self.reference,
                "fitted_on": self.fitted_on, "tried": self.tried}  # fmt: skip

    @classmethod
    def from_json(cls, obj: Any, where: str) -> LatencyModel:
        """A model :meth:`to_json` wrote, every field checked; anything else is an error naming ``where``."""
        if not isinstance(obj, Mapping) or obj.get("format") != FORMAT or obj.get("version") != 1:
            raise ArchsearchError(f"{where}: not an archsearch latency model (format {FORMAT}, version 1)")
        members = obj.get("members")
        if not isinstance(obj.get("space"), str) or not isinstance(members, list) or not members:
            raise ArchsearchError(f"{where}: the model needs its space (text) and a list of members")
        parsed = [Member.from_json(m, where) for m in members]
        reference = obj.get("reference")
        if any("reference" in m.features for m in parsed):
            _check_reference(reference, where)
        elif reference is not None:
            raise ArchsearchError(f"{where}: a model without reference features holds no reference table")
        measured = obj.get("measured")
        if isinstance(measured, bool) or not isinstance(measured, int) or measured < MIN_ROWS:
            raise ArchsearchError(f"{where}: measured must be a whole number >= {MIN_ROWS}")
        tried = obj.get("tried", {})
        if not isinstance(tried, Mapping) or not all(_finite(v) for v in tried.values()):
            raise ArchsearchError(f"{where}: the model's tried feature sets must map to finite errors")
        return cls(obj["space"], parsed, measured, reference, str(obj.get("fitted_on", "")), dict(tried))

    @classmethod
    def load(cls, path: str | Path) -> LatencyModel:
        """Read a model file (JSON)."""
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArchsearchError(f"{path}: no such latency model file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchsearchError(f"{path}: not a JSON latency model ({exc})") from None
        return cls.from_json(obj, str(path))


def candidates(reference: Mapping[str, Any] | None) -> list[str]:
    """The feature sets :func:`fit` tries: ops, ops+size and, with a reference table, all its columns and each column
    alone or with the op counts (params and FLOPs alone are the baseline a model must beat, not a candidate)."""
    out = ["ops", "ops+size"]
    if reference is not None:
        out.append("reference")
        for column in reference["columns"]:
            out += [f"reference:{column}", f"reference:{column}+ops"]
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_reference(reference: Any, where: str) -> None:
    ok = isinstance(reference, Mapping) and isinstance(reference.get("columns"), list) and isinstance(
        reference.get("rows"), Mapping)  # fmt: skip
    if ok:
        width = len(reference["columns"])
        ok = all(isinstance(v, list) and len(v) == width and all(_finite(x) for x in v)
                 for v in reference["rows"].values())  # fmt: skip
    if not ok:
        raise ArchsearchError(f"{where}: the model's reference table must map architectures to lists of numbers")


def raw_features(genotype: Any, space: Any, features: str, reference: Mapping[str, Any] | None) -> dict[str, float]:
    """The named features of one genotype for a feature set (see the module docstring)."""
    out: dict[str, float] = {}
    parts = features.split("+")
    if "ops" in parts:
        out.update({f"ops:{k}": v for k, v in op_counts(genotype, space).items()})
    if "size" in parts:
        out.update({f"size:{k}": v for k, v in space.counts(genotype).items()})
    wanted = {p.partition(":")[2] for p in parts if p.startswith("reference")}
    if wanted:
        assert reference is not None
        values = reference["rows"].get(genotype.key)
        if values is None:
            raise ArchsearchError(f"{genotype.key[:80]} is not in the latency model's reference table, so its "
                                  "latency cannot be predicted from it")  # fmt: skip
        pairs = zip(reference["columns"], values)
        out.update({f"reference:{c}": float(v) for c, v in pairs if "" in wanted or c in wanted})
    return out


def _ridge(z: np.ndarray, y: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    """Intercept and coefficients of ridge regression on standardised ``z`` (the intercept is not penalised)."""
    a = np.hstack([np.ones((len(z), 1)), z])
    penalty = lam * np.eye(a.shape[1])
    penalty[0, 0] = 0.0
    w = np.linalg.solve(a.T @ a + penalty, a.T @ y)
    return float(w[0]), w[1:]


def _loo_rmse(z: np.ndarray, y: np.ndarray, lam: float) -> float:
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        b, w = _ridge(z[keep], y[keep], lam)
        errors.append(b + z[i] @ w - y[i])
    return float(np.sqrt(np.mean(np.square(errors))))


def _fit_member(features: str, raws: list[dict[str, float]], y: np.ndarray) -> Member | None:
    names = sorted({k for r in raws for k in r if _belongs(k, features)})
    x = np.array([[r.get(n, 0.0) for n in names] for r in raws], dtype=float).reshape(len(raws), -1)
    varying = x.std(axis=0) > 0
    names, x = [n for n, v in zip(names, varying) if v], x[:, varying]
    if not names:
        return None
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / scale
    lam, err = min(((lam, _loo_rmse(z, y, lam)) for lam in LAMBDAS), key=lambda p: p[1])
    intercept, coef = _ridge(z, y, lam)
    return Member(features, names, mean.tolist(), scale.tolist(), coef.tolist(), intercept, lam, err, 0.0)


def _belongs(feature: str, features: str) -> bool:
    kind, _, name = feature.partition(":")
    return any(part == kind or (kind == "reference" and part == f"reference:{name}") for part in features.split("+"))


def choose(raws: list[dict[str, float]], y: np.ndarray,
           feature_sets: Sequence[str]) -> tuple[list[Member], list[Member]]:  # fmt: skip
    """Every feature set's ridge regression on these rows, and the one or two chosen of them: the lowest
    leave-one-out error and the set with the fewest features whose error is at most :data:`PARSIMONY` times that."""
    members = [m for m in (_fit_member(f, raws, y) for f in feature_sets) if m is not None]
    if not members:
        raise ArchsearchError("the measured networks do not differ in any feature: time networks that differ")
    best = min(members, key=lambda m: m.loo_rmse_ms)
    simple = min((m for m in members if m.loo_rmse_ms <= PARSIMONY * best.loo_rmse_ms),
                 key=lambda m: (len(m.names), m.loo_rmse_ms))  # fmt: skip
    return members, [best] if simple is best else [best, simple]


def merge(fits: Sequence[Sequence[Member]], full: Sequence[Member]) -> list[Member]:
    """One member per feature set for the mean of ``fits`` (each fit the mean of its chosen members): the chosen
    regressions of a set are linear in the raw features, so their weighted mean is one regression (mean 0, scale 1).
    Its error and ridge strength are those of the same set fitted on all rows (``full``)."""
    parts: dict[str, list[tuple[float, Member]]] = {}
    for chosen in fits:
        for m in chosen:
            parts.setdefault(m.features, []).append((1.0 / (len(fits) * len(chosen)), m))
    on_all = {m.features: m for m in full}
    out = []
    for features, weighted in parts.items():
        names = sorted({n for _, m in weighted for n in m.names})
        total = sum(w for w, _ in weighted)
        coef, intercept = np.zeros(len(names)), 0.0
        for w, m in weighted:
            raw = np.array(m.coef) / np.array(m.scale)
            intercept += w * (m.intercept - float(raw @ np.array(m.mean)))
            coef[[names.index(n) for n in m.names]] += w * raw
        ref = on_all[features]
        out.append(Member(features, names, [0.0] * len(names), [1.0] * len(names), (coef / total).tolist(),
                          intercept / total, ref.ridge, ref.loo_rmse_ms, total))  # fmt: skip
    return sorted(out, key=lambda m: -m.weight)


def fit(measured: Sequence[tuple[Any, float]], space: Any, reference: Mapping[str, Any] | None = None,
        fitted_on: str = "") -> LatencyModel:  # fmt: skip
    """Fit on ``measured`` (genotype, ms) pairs: a ridge regression per candidate feature set (its strength chosen
    by leave-one-out error), of which :func:`choose` keeps the best and the simplest nearly as good. With ten
    measurements the lowest error alone overfits: on NAS-Bench-201's devices the simpler partner (often one
    reference device's column) keeps the ranking of the unmeasured networks. That choice itself turns on single
    networks, so it is made again on every subset that leaves one measured network out, and the prediction is the
    mean of those k + 1 choices (:func:`merge`; with more than :data:`MIN_ROWS` networks)."""
    if len(measured) < MIN_ROWS:
        raise ArchsearchError(f"a latency model needs at least {MIN_ROWS} measured networks, got {len(measured)}")
    y = np.array([ms for _, ms in measured], dtype=float)
    kinds = "ops+size" + ("+reference" if reference is not None else "")
    raws = [raw_features(g, space, kinds, reference) for g, _ in measured]
    sets = candidates(reference)
    members, chosen = choose(raws, y, sets)
    fits = [chosen]
    if len(y) > MIN_ROWS:
        for i in range(len(y)):
            keep = [j for j in range(len(y)) if j != i]
            try:
                fits.append(choose([raws[j] for j in keep], y[keep], sets)[1])
            except ArchsearchError:  # the others do not differ in any feature: this subset has nothing to choose
                continue
    merged = merge(fits, members)
    kept = None
    if reference is not None and any("reference" in m.features for m in merged):
        kept = {"columns": list(reference["columns"]),
                "rows": {k: [float(f"{v:.6g}") for v in vals] for k, vals in reference["rows"].items()}}  # fmt: skip
    tried = {m.features: round(m.loo_rmse_ms, 6) for m in members}
    return LatencyModel(space.name, merged, len(measured), kept, fitted_on, tried)

"""A latency lookup table: every distinct block of a mobile-style space measured once on a target, so a network's
latency is predicted by adding up its blocks, without building or running it (as ProxylessNAS, FBNet and Once-for-All
do; nn-Meter predicts per fused kernel).

A block's key is its configuration and its input shape (``mb e6 k5 se 24->40 s2 @24x56x56``); the stem and the head
are blocks too. Each block is measured alone on the target (a one-block model on a batch of its input shape), so
each measurement holds one call's fixed cost (the runtime's dispatch, ONNX Runtime's session call); the table also
measures that cost alone (a one-element ReLU) and a prediction counts it once: ``sum(blocks) - (n - 1) * overhead``.

A block run alone finds its weights and input in the caches and its buffers ready; inside a network it does not, so
the plain sum runs low (by about 15% for PyTorch eager and 9% for ONNX Runtime at 224x224 on the CPU this was
written on). Building a table therefore also measures a few whole networks (``calibrate``, sampled with a fixed
seed) and stores the median ratio of measured to summed latency as ``scale``; a prediction is the sum times that
scale.

On PyTorch eager a block's time also depends on what ran before it (which caches hold its input), so an eager
table times each block *inside* networks too: ``profile`` sampled networks and
the covering ones run whole with a timer around every block (forward hooks), and a block's entry is the median of its
times in those contexts (which hold no call overhead of their own, so none is subtracted). ONNX Runtime and
TorchScript run a graph that hooks cannot enter; their blocks are timed alone.

The table is a JSON file (it never holds code) recording the space, target, threads, batch size, input shape, classes
and build options it was built for; using it for another is refused with what differs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archsearch.costs.runtime import check_target, measure, settle_allocator, torch_threads, verified_ms
from archsearch.errors import ArchsearchError
from archsearch.nn.mobile import MobileBlockSpec, MobileHead, MobileNetwork, MobileStem, make_block
from archsearch.outputs import write_file
from archsearch.spaces import Space, block_spaces, get_space, space_from_record

FORMAT = "archsearch latency table"
MAX_TABLE_BYTES = 64 << 20  # a table of every block of a large space is a few MiB; more is not a table
CALIBRATION_SEED = 20_261_130  # networks measured whole for the scale; benchmarks evaluate on other seeds
VERSION = 1


def _after(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def block_key(spec: MobileBlockSpec, shape: tuple[int, int, int]) -> str:
    """The table's key of a block with this spec at this input shape."""
    where = f"{spec.in_channels}->{spec.out_channels} s{spec.stride} @{shape[0]}x{shape[1]}x{shape[2]}"
    if spec.kind == "skip":
        return f"skip {where}"
    return f"mb e{spec.expansion} k{spec.kernel}{' se' if spec.se else ''} {where}"


def network_blocks(
    space: Space[Any], genotype: Any, input_shape: tuple[int, int, int], num_classes: int, build: Mapping[str, Any]
) -> list[tuple[str, Callable[[], nn.Module], tuple[int, int, int]]]:
    """(key, module factory, input shape) of every block of ``genotype``'s network, stem and head included."""
    c, h, _ = input_shape
    call = space.network_call(genotype, c, num_classes, h, **build)
    if call is None or call[0] is not MobileNetwork:
        raise ArchsearchError(
            f"latency tables add up blocks of MobileNet-style networks (spaces {', '.join(block_spaces())}); "
            f"space {space.name!r} "
            "builds other networks: constrain latency_ms measured on the network instead (no --latency-table)"
        )
    kw = call[1]
    stem, stride = kw["stem_channels"], kw["stem_stride"]
    out = [(f"stem {c}->{stem} s{stride} @{c}x{h}x{h}", lambda: MobileStem(c, stem, stride), (c, h, h))]
    h = _after(h, 3, stride)
    for spec in kw["blocks"]:
        shape = (spec.in_channels, h, h)
        out.append((block_key(spec, shape), lambda spec=spec: make_block(spec), shape))
        h = _after(h, spec.kernel if spec.kind == "mb" else 1, spec.stride)
    last, head = kw["blocks"][-1].out_channels, kw["head_channels"]
    out.append((f"head {last}->{head}->{num_classes} @{last}x{h}x{h}",
                lambda: MobileHead(last, head, num_classes), (last, h, h)))  # fmt: skip
    return out


@dataclass
class LatencyTable:
    """Measured block latencies (milliseconds) for one space, target, thread count, batch size and input."""

    space: str
    target: str
    threads: int
    batch_size: int
    input_shape: tuple[int, int, int]
    num_classes: int
    build: dict[str, Any]
    overhead_ms: float
    entries: dict[str, float]
    space_options: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    calibrated_on: int = 0
    built_seconds: float = 0.0
    machine: str = ""

    # --- using it ------------------------------------------------------------------------------------------------
    def describe(self) -> str:
        c, h, w = self.input_shape
        return (f"space {self.space!r}, target {self.target}, {self.threads} thread(s), batch {self.batch_size}, "
                f"input {c}x{h}x{w}, {self.num_classes} classes, build {self.build or 'defaults'}")  # fmt: skip

    def check(
        self,
        space: str,
        target: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        num_classes: int | None = None,
        build: Mapping[str, Any] | None = None,
        where: str = "the latency table",
    ) -> None:
        """Raise unless this table was built for ``space`` (and the target, input, classes and build given; a build
        option left out counts as the space's default)."""
        wanted = {"space": space, "target": target,
                  "input shape": tuple(input_shape) if input_shape is not None else None,
                  "classes": num_classes, "build options": dict(build) if build is not None else None}  # fmt: skip
        have = {"space": self.space, "target": self.target, "input shape": tuple(self.input_shape),
                "classes": self.num_classes, "build options": self.build}  # fmt: skip
        if build is not None and space == self.space:  # an option given at its default is the same network
            defaults = get_space(self.space, **self.space_options).build_options()
            if {**defaults, **self.build} == {**defaults, **build}:
                wanted["build options"] = None
        wrong = [f"{k} {have[k]!r}, not {v!r}" for k, v in wanted.items() if v is not None and have[k] != v]
        if wrong:
            raise ArchsearchError(f"{where} was built for another setting: {'; '.join(wrong)} "
                                  f"(it holds {self.describe()}; build one with archsearch latency-table)")  # fmt: skip

    def network(self, genotype: Any, space: Space[Any], seed: int | None = None) -> nn.Module:
        """``genotype``'s network as this table's entries were measured: its input, classes and build."""
        c, h, _ = self.input_shape
        return space.build(genotype, c, self.num_classes, h, seed=seed, **self.build)

    def predict(self, genotype: Any, space: Space[Any] | None = None) -> float:
        """Predicted milliseconds for ``genotype``'s network: the sum of its blocks with the call overhead counted
        once, times the table's calibration ``scale``."""
        sp = space or get_space(self.space, **self.space_options)
        self.check(sp.name)
        blocks = network_blocks(sp, sp.validate(genotype), self.input_shape, self.num_classes, self.build)
        missing = [key for key, _, _ in blocks if key not in self.entries]
        if missing:
            raise ArchsearchError(f"the latency table has no entry for block {missing[0]!r} of {genotype} "
                                  f"(it holds {self.describe()})")  # fmt: skip
        total = self.scale * (sum(self.entries[key] for key, _, _ in blocks) - (len(blocks) - 1) * self.overhead_ms)
        if not (math.isfinite(total) and total > 0):  # a prediction that is no latency never passes a limit
            raise ArchsearchError(f"the latency table predicts {total!r} ms for {genotype}, not a latency (it holds "
                                  f"{self.describe()})")  # fmt: skip
        return total

    # --- files ---------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "space": self.space, "space_options": self.space_options,
                "target": self.target, "threads": self.threads, "batch_size": self.batch_size,
                "input_shape": list(self.input_shape), "num_classes": self.num_classes, "build": self.build,
                "overhead_ms": self.overhead_ms, "scale": self.scale, "calibrated_on": self.calibrated_on,
                "built_seconds": self.built_seconds, "machine": self.machine,
                "entries": self.entries}  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (a fresh temporary file beside ``path``, renamed into place when complete)."""
        return write_file(json.dumps(self.to_json(), indent=1), path)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """A table saved by :meth:`save` (a regular file of at most :data:`MAX_TABLE_BYTES`); anything else is
        refused with what is wrong."""
        where = Path(path)
        try:
            if not where.is_file():
                what = "no such latency table" if not os.path.lexists(where) else "not a regular file"
                raise ArchsearchError(f"{where}: {what}")
            with where.open("rb") as handle:
                raw = handle.read(MAX_TABLE_BYTES + 1)
            if len(raw) > MAX_TABLE_BYTES:
                raise ArchsearchError(f"{where}: over {MAX_TABLE_BYTES >> 20} MiB, not a latency table")
            obj = json.loads(raw.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, 5000 digits
            raise ArchsearchError(f"{where}: not a latency table ({str(exc)[:200]})") from None
        return cls.from_json(obj, str(where))

    @classmethod
    def from_json(cls, obj: Any, where: str = "the latency table") -> LatencyTable:
        """A table from the object :meth:`to_json` made (a file's content, or a run's config); every number is
        checked (finite; positive where it must be), and the space must accept the table's options."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ArchsearchError(f'{where}: not a latency table (no "format": "{FORMAT}")')
        if obj.get("version") != VERSION:
            version = obj.get("version")
            raise ArchsearchError(f"{where}: latency table version {version!r}; this archsearch reads {VERSION}")
        try:
            raw_entries, shape = obj["entries"], obj["input_shape"]
            if not isinstance(raw_entries, dict) or not raw_entries:
                raise ArchsearchError(f"{where}: entries must be a non-empty object of block -> milliseconds")
            if not isinstance(shape, list) or len(shape) != 3:
                raise ArchsearchError(f"{where}: input_shape must be [C, H, W], got {shape!r:.80}")
            entries = {str(k): _number(v, f"entry {k!r:.80}", where, positive=True) for k, v in raw_entries.items()}
            build, options = obj["build"], obj.get("space_options") or {}
            if not isinstance(options, dict):
                raise ArchsearchError(f"{where}: space_options must be a JSON object, got {options!r:.80}")
            if not isinstance(build, dict):
                raise ArchsearchError(f"{where}: build must be an object of build options, got {build!r:.80}")
            table = cls(str(obj["space"]), check_target(str(obj["target"])), _count(obj["threads"], "threads", where),
                        _count(obj["batch_size"], "batch_size", where),
                        tuple(_count(x, "input_shape", where) for x in shape),  # type: ignore[arg-type]
                        _count(obj["num_classes"], "num_classes", where), dict(build),
                        _number(obj["overhead_ms"], "overhead_ms", where), entries,
                        dict(options), _number(obj.get("scale", 1.0), "scale", where, True),
                        int(_number(obj.get("calibrated_on", 0), "calibrated_on", where)),
                        _number(obj.get("built_seconds", 0.0), "built_seconds", where),
                        str(obj.get("machine", "")))  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchsearchError(f"{where}: a latency table field is missing or malformed ({exc!r:.200})") from None
        # each entry holds the call overhead once (measured alone, it may exceed the smallest entry by noise)
        if table.overhead_ms >= max(entries.values()):
            raise ArchsearchError(f"{where}: overhead_ms {table.overhead_ms:g} is not below the blocks' latencies "
                                  f"(largest {max(entries.values()):g} ms); each entry includes it once")  # fmt: skip
        space_from_record(table.space, obj.get("space_options"), where)
        return table


def _number(value: Any, name: str, where: str, positive: bool = False) -> float:
    """A stored number: a JSON number (not a boolean or text), finite, >= 0 (> 0 with ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArchsearchError(f"{where}: {name} must be a number, got {value!r:.80}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ArchsearchError(f"{where}: {name} must be a finite number {'> 0' if positive else '>= 0'}, got "
                              f"{value!r:.80}")  # fmt: skip
    return number


def _count(value: Any, name: str, where: str) -> int:
    """A stored positive whole number."""
    number = _number(value, name, where, positive=True)
    if not number.is_integer() or number > 2**31:
        raise ArchsearchError(f"{where}: {name} must be a positive whole number, got {value!r:.80}")
    return int(number)


#: a prediction this close to a latency limit (relative) is checked by measuring the network on the table's target
NEAR_LIMIT = 0.10


def constrained_latency(
    table: LatencyTable, genotype: Any, space: Space[Any], model: nn.Module, limit: float | None
) -> dict[str, float]:
    """A search's ``latency_ms`` from a table: the prediction, or, where it is within :data:`NEAR_LIMIT` of
    ``limit``, the network measured on the table's target (so which side of the limit a network falls is decided by
    measurement where the prediction's error could decide it: :func:`~archsearch.costs.runtime.verified_ms`). Also
    ``latency_predicted_ms``, and ``latency_measured`` (1.0 when measured)."""
    predicted = table.predict(genotype, space)
    out = {"latency_ms": predicted, "latency_predicted_ms": predicted, "latency_measured": 0.0}
    if limit is not None and abs(predicted - limit) <= NEAR_LIMIT * limit:
        ms = verified_ms(model, table.input_shape, table.target, table.batch_size, table.threads, limit)
        out.update(latency_ms=ms, latency_measured=1.0)
    return out


def distinct_blocks(
    space: Space[Any], input_shape: tuple[int, int, int], num_classes: int, build: Mapping[str, Any]
) -> Iterator[tuple[str, Callable[[], nn.Module], tuple[int, int, int]]]:
    """Every distinct block any network of ``space`` contains, once (from the space's covering genotypes)."""
    cover = getattr(space, "block_cover", None)
    if cover is None:
        raise ArchsearchError(f"space {space.name!r} does not list its blocks; latency tables serve "
                             f"{', '.join(block_spaces())}")
    seen: set[str] = set()
    for genotype in cover():
        for key, make, shape in network_blocks(space, genotype, input_shape, num_classes, build):
            if key not in seen:
                seen.add(key)
                yield key, make, shape


PROFILE_SEED = 99  # the networks an eager table times its blocks inside


def _block_times(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> list[list[float]]:
    """Milliseconds of each top-level block (stem, features, head) of a mobile network in each timed call."""
    parts = [model.stem, *model.features, model.head]  # type: ignore[union-attr]
    times: list[list[float]] = [[] for _ in parts]
    started = [0.0]

    def start(module: nn.Module, args: Any) -> None:
        started[0] = time.perf_counter()

    def stop(i: int) -> Callable[..., None]:
        return lambda module, args, out: times[i].append((time.perf_counter() - started[0]) * 1000.0)

    hooks = [h for i, p in enumerate(parts) for h in (p.register_forward_pre_hook(start),
                                                       p.register_forward_hook(stop(i)))]  # fmt: skip
    try:
        with torch.inference_mode():
            for _ in range(warmup + repeats):
                model(x)
    finally:
        for h in hooks:
            h.remove()
    return [t[warmup:] for t in times]


def _times_in_context(
    space: Space[Any], genotypes: list[Any], input_shape: tuple[int, int, int], num_classes: int,
    build: Mapping[str, Any], batch_size: int, threads: int, warmup: int, repeats: int,
) -> dict[str, list[float]]:  # fmt: skip
    """Per block key, its median time (ms) inside each of ``genotypes``' networks on PyTorch eager."""
    settle_allocator()
    found: dict[str, list[float]] = {}
    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
    for genotype in genotypes:
        model = space.build(genotype, input_shape[0], num_classes, input_shape[1], seed=0, **build).eval()
        with torch_threads(threads):
            times = _block_times(model, x, warmup, repeats)
        keys = [key for key, _, _ in network_blocks(space, genotype, input_shape, num_classes, build)]
        for key, t in zip(keys, times):
            found.setdefault(key, []).append(float(np.median(t)))
    return found


def build_table(
    space: str | Space[Any],
    target: str = "onnxruntime",
    input_shape: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
    build: Mapping[str, Any] | None = None,
    threads: int = 1,
    batch_size: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    calibrate: int = 10,
    profile: int = 30,
    progress: Callable[[int, str, float], None] | None = None,
) -> LatencyTable:
    """Measure every distinct block of ``space`` on ``target`` (median of ``repeats`` calls after ``warmup``); on
    eager, time the blocks inside ``profile`` sampled networks and the covering ones too; then ``calibrate`` whole
    sampled networks for the table's scale (0: no calibration, scale 1)."""
    if calibrate < 0 or profile < 0:
        raise ArchsearchError(f"calibrate and profile must be >= 0 networks, got {calibrate}, {profile}")
    sp = get_space(space)
    check_target(target)
    options = dict(build or {})
    unknown = sorted(set(options) - set(sp.build_options()))
    if unknown:
        raise ArchsearchError(f"unknown build option(s) {unknown} for space {sp.name!r} (allowed: "
                              f"{sorted(sp.build_options())})")  # fmt: skip
    start = time.perf_counter()
    overhead = measure(nn.ReLU(), (1, 1, 1), target, 1, threads, warmup, repeats).median_ms
    entries: dict[str, float] = {}
    for n, (key, make, shape) in enumerate(distinct_blocks(sp, input_shape, num_classes, options), start=1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(n)
            module = make()
        entries[key] = measure(module, shape, target, batch_size, threads, warmup, repeats).median_ms
        if progress is not None:
            progress(n, key, entries[key])
    if target == "eager" and profile > 0:
        rng = np.random.default_rng(PROFILE_SEED)
        genotypes = [sp.sample(rng) for _ in range(profile)] + list(sp.block_cover())  # type: ignore[attr-defined]
        inside = _times_in_context(sp, genotypes, input_shape, num_classes, options, batch_size, threads,
                                   min(warmup, 3), min(repeats, 10))  # fmt: skip
        entries = {k: float(np.median(inside[k])) if k in inside else v for k, v in entries.items()}
        overhead = 0.0
    # Every entry holds one call overhead, so the overhead is at most the smallest entry: a ReLU timed above it (by
    # noise, on a few quick repeats) would make networks of small blocks predict negative latencies.
    overhead = min(overhead, min(entries.values(), default=overhead))
    space_options = {"stages": [list(s[:2]) + [list(s[2])] for s in sp.stages]} if hasattr(sp, "stages") else {}
    table = LatencyTable(sp.name, target, threads, batch_size, input_shape, num_classes, options, overhead, entries,
                         space_options, machine=f"{platform.machine()} torch {torch.__version__}")  # fmt: skip
    rng, ratios = np.random.default_rng(CALIBRATION_SEED), []
    for _ in range(calibrate):
        genotype = sp.sample(rng)
        model = sp.build(genotype, input_shape[0], num_classes, input_shape[1], seed=0, **options)
        whole = measure(model, input_shape, target, batch_size, threads, warmup, repeats).median_ms
        ratios.append(whole / table.predict(genotype, sp))
    if ratios:
        table.scale, table.calibrated_on = float(np.median(ratios)), len(ratios)
    table.built_seconds = time.perf_counter() - start
    return table

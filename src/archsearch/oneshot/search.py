"""Running a one-shot search: epochs of method steps over the two halves of the training split, a history of
softmaxed alphas per epoch, collapse control, a checkpoint after every epoch (``--resume`` continues from the last
finished one), and the derived genotype recorded in the run's store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from archsearch import options
from archsearch.data import Data
from archsearch.data.loader import BatchLoader, Split
from archsearch.errors import ArchsearchError
from archsearch.nn import native
from archsearch.oneshot import METHODS, default_config
from archsearch.oneshot.base import OneShotConfig, OneShotMethod
from archsearch.oneshot.checkpoint import load_checkpoint, save_checkpoint
from archsearch.oneshot.latency import LatencyTarget, check_latency_target, derive_measured, epoch_latency
from archsearch.oneshot.supernets import Supernet, build_supernet
from archsearch.rundir import describe, versions
from archsearch.spaces import Space, get_space
from archsearch.store import Store
from archsearch.trial import COMPLETE, Trial

CHECKPOINT = "oneshot.pt"


@dataclass
class SubnetworkFound:
    """What a search over a trained supernet's sub-networks found: the winner, how many sub-networks it scored, and
    under a latency target the winner's measured latency and notes on winners passed over."""

    genotype: Any
    scored: int
    notes: list[str] = field(default_factory=list)
    measured_ms: float | None = None


#: what a method that searches sub-networks needs: (supernet, space, store, config) -> what it found
SubnetworkSearch = Callable[[Supernet, Space[Any], Store, OneShotConfig], SubnetworkFound]
#: a derived architecture's figures in a benchmark table (None: not in the table), recorded beside the search
TableLookup = Callable[[Any], "dict[str, float] | None"]


@dataclass
class OneShotResult:
    """What a one-shot search found: the genotype, the per-epoch history, and why it stopped."""

    method: str
    genotype: Any
    history: list[dict[str, Any]]
    stopped: str  # 'finished', or the collapse-control reason
    run_dir: Path
    search_trials: int = 0  # SPOS: sub-networks scored with inherited weights
    notes: list[str] = field(default_factory=list)  # what the derivation had to do beyond its rule
    supernet: Supernet | None = None  # the trained supernet (e.g. for a SupernetEvaluator)
    table: dict[str, float] | None = None  # the derived genotype's row of the table given (``table_lookup``)
    measured_ms: float | None = None  # under a latency target: the derived network's latency on the table's runtime
    # filled by archsearch.api.oneshot: the plots written, per cell type the epoch each edge's top weight passed 0.6,
    # and in words how far the architecture weights separated from uniform
    plots: list[Path] = field(default_factory=list)
    threshold_epochs: dict[str, dict[int, int | None]] = field(default_factory=dict)
    alpha_separation: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record ``archsearch oneshot --json`` prints at the end."""
        return {
            "method": self.method, "genotype": str(self.genotype), "stopped": self.stopped,
            "epochs": len(self.history), "skips": self.history[-1].get("skips") if self.history else None,
            "threshold_epochs": self.threshold_epochs, "alpha_separation": self.alpha_separation,
            "notes": self.notes, "plots": [str(p) for p in self.plots], "run_dir": str(self.run_dir),
            "table": self.table, "measured_ms": self.measured_ms,
        }  # fmt: skip


def _halves(data: Data, seed: int) -> tuple[Split, Split]:
    n = len(data.train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    half = n // 2
    return Split(data.train.x[order[:half]], data.train.y[order[:half]]), Split(
        data.train.x[order[half:]], data.train.y[order[half:]]
    )


def run_oneshot(
    method: str,
    space: str | Space[Any],
    data: Data,
    run_dir: str | Path,
    config: OneShotConfig | None = None,
    supernet_options: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    resume: bool = False,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    subnetwork_search: SubnetworkSearch | None = None,
    extra_meta: dict[str, Any] | None = None,
    table_lookup: TableLookup | None = None,
    latency: LatencyTarget | None = None,
) -> OneShotResult:
    """Search ``space`` with one-shot ``method`` on ``data``; checkpoints and the store live in ``run_dir``, which
    this process alone writes. With ``resume`` the run's recorded settings must match the ones given (``extra_meta``
    is recorded beside them, e.g. the command line's options). A method that ``searches_subnetworks`` (SPOS) needs
    ``subnetwork_search``, called on the main process with the trained supernet and the run's store, returning the
    winner and the number of sub-networks scored (:func:`archsearch.api.oneshot` passes one). ``table_lookup``: the
    architecture derived after every epoch, and the final one, looked up in a benchmark table and recorded with the
    epoch (``history[i]["table"]``) and the result; what it returns never reaches the method. ``latency``: a target
    the architecture step keeps the supernet's expected latency under (:mod:`archsearch.oneshot.latency`), recorded
    per epoch (``history[i]["latency"]``); the derived network is the most probable one the table predicts within
    it. A method that searches sub-networks gets the target through ``subnetwork_search`` (the API's keeps to it)."""
    sp = get_space(space) if isinstance(space, str) else space
    cls = METHODS.get(method)
    if cls.searches_subnetworks and subnetwork_search is None:
        raise ArchsearchError(f"{method} finds its genotype by a search over sub-networks: use archsearch.api.oneshot")
    config = config or default_config(method)
    options = {**cls.supernet_defaults, **(supernet_options or {})}
    _check_few_shot(cls, config, options)
    run = Path(run_dir)
    checkpoint = run / CHECKPOINT
    shape = list(data.input_shape)
    settings = {"method": method, "space": sp.name, "config": asdict(config), "supernet": options,
                "data": {"name": data.name, "train": len(data.train), "input_shape": shape}}  # fmt: skip
    if latency is not None:
        settings["latency"] = {"target_ms": latency.target_ms, "table": latency.table.describe()}
    recorded = _check_run_dir(run, checkpoint, resume, settings)
    if torch.device(device).type == "cpu":  # the compiled kernels, built in the background the first time
        native.install()
        native.ensure_built(background=True)
    net = build_supernet(sp.name, data.in_channels, data.num_classes, seed=config.seed, input_size=data.input_size,
                         **options)
    # channels-last runs the depthwise convolutions of the DARTS ops 2-3x faster on the CPU (oneDNN) and suits GPUs
    net = net.to(device, memory_format=torch.channels_last)
    train_loader, val_loader = _loaders(data, config, device, cls.needs_validation_split)
    searcher = cls(net, config, len(train_loader), space=sp)
    if latency is not None:
        check_latency_target(searcher, net, latency)
        searcher.latency = latency
    world = searcher.world  # under torchrun: every rank runs this; rank 0 alone writes
    if not world.main:
        on_epoch = on_step = None
    store = Store(run) if world.main else None  # holds the run directory's lock until the end
    try:
        history, stopped = _restore(searcher, checkpoint)
        if store is not None and recorded is None:
            store.set_meta("oneshot", {**settings, "ranks": world.size, **(extra_meta or {})})
            store.set_meta("versions", versions())
        stopped = _epochs(searcher, (train_loader, val_loader), history, stopped, checkpoint, store, on_step, on_epoch,
                          table_lookup)  # fmt: skip
        result = OneShotResult(method, None, history, stopped, run, supernet=net)
        _derive(searcher, sp, result, store, subnetwork_search if cls.searches_subnetworks else None, table_lookup)
        return result
    finally:
        if store is not None:
            store.close()


def _loaders(data: Data, config: OneShotConfig, device: Any, halves: bool) -> tuple[BatchLoader, BatchLoader | None]:
    """The batches the weights train on and (``halves``: a method that steps its architecture on held-out data)
    those the architecture steps on: the training split cut in two, as DARTS does."""
    if halves:
        weight_data, arch_data = _halves(data, config.seed)
    else:
        weight_data, arch_data = data.train, None
    train_loader = BatchLoader(
        weight_data, config.batch_size, data.mean, data.std, device, True, config.seed, data.default_augment(), True
    )
    val_loader = None
    if arch_data is not None:
        val_loader = BatchLoader(
            arch_data, config.batch_size, data.mean, data.std, device, True, config.seed + 1, None, True
        )
    if len(train_loader) == 0:
        raise ValueError(f"batch size {config.batch_size} exceeds the {len(weight_data)} examples the weights train on")
    return train_loader, val_loader


def _restore(searcher: OneShotMethod, checkpoint: Path) -> tuple[list[dict[str, Any]], str]:
    """The history and stop cause of the last finished epoch, the method's state restored (none: a new run)."""
    if not checkpoint.exists():
        return [], "finished"
    saved = load_checkpoint(checkpoint, next(searcher.net.parameters()).device)
    try:
        searcher.load_state_dict(saved["method"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArchsearchError(f"{checkpoint} does not fit this supernet ({first})") from None
    return saved["history"], saved["stopped"]


def _derive(searcher: OneShotMethod, sp: Space[Any], result: OneShotResult, store: Store | None,
            subnetwork_search: SubnetworkSearch | None, table_lookup: TableLookup | None) -> None:  # fmt: skip
    """The genotype of a finished search into ``result`` (and the store): the method's derivation rule, or a search
    over sub-networks on rank 0 whose winner the other ranks receive."""
    net = searcher.net
    if subnetwork_search is not None:
        shared = None
        if store is not None:
            found = subnetwork_search(net, sp, store, searcher.config)
            result.table = table_lookup(found.genotype) if table_lookup is not None else None
            store.set_meta("oneshot_result", {"genotype": found.genotype.to_json(), "stopped": "finished",
                                              "notes": found.notes, "table": result.table,
                                              "measured_ms": found.measured_ms})  # fmt: skip
            shared = (found.genotype.to_json(), found.scored, found.notes, found.measured_ms)
        shared = searcher.world.broadcast_object(shared)
        result.genotype, result.search_trials = sp.from_json(shared[0]), shared[1]
        result.notes, result.measured_ms = list(shared[2]), shared[3]
        return
    if searcher.latency is not None:
        result.genotype, notes, result.measured_ms = derive_measured(net, searcher.latency)
        result.notes += notes
    else:
        result.genotype = searcher.derive()
    if net.derive_note:
        result.notes.append(net.derive_note)
    result.table = table_lookup(result.genotype) if table_lookup is not None else None
    if store is not None:
        _record(store, result)


def _epochs(searcher: OneShotMethod, loaders: tuple[BatchLoader, BatchLoader | None], history: list[dict[str, Any]],
            stopped: str, checkpoint: Path, store: Store | None, on_step: Callable[[int, int], None] | None,
            on_epoch: Callable[[dict[str, Any]], None] | None, table_lookup: TableLookup | None) -> str:  # fmt: skip
    """The search's epochs from where ``history`` ends, each checkpointed (main process) and recorded for reports;
    returns why the search stopped."""
    config = searcher.config
    for epoch in range(len(history), config.epochs):
        if stopped != "finished":
            break
        record, derived = _epoch(searcher, *loaders, epoch, on_step)
        if derived is not None and table_lookup is not None:
            record["table"] = table_lookup(derived)
        history.append(record)
        stopped = _collapse(searcher, record, config) or stopped
        if searcher.world.main:
            save_checkpoint({"method": searcher.state_dict(), "history": history, "stopped": stopped}, checkpoint)
        if store is not None:  # the history alone, for reports (also of a search still running)
            store.set_meta("oneshot_history", history)
        if on_epoch is not None:
            on_epoch(record)
    return stopped


def _check_run_dir(run: Path, checkpoint: Path, resume: bool, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse a directory that holds another kind of run, a resume of nothing, and a resume with other settings;
    returns the recorded settings (``None`` for a new run)."""
    kind, meta = describe(run)
    if kind == "search":
        raise ArchsearchError(f"{run} holds a multi-trial search; a one-shot search needs its own directory")
    if not resume:
        if checkpoint.exists() or kind == "oneshot":
            raise ArchsearchError(f"{run} already holds a one-shot search; resume it (--resume) or choose a new --out")
        return None
    if not checkpoint.exists():
        raise ArchsearchError(f"{run}: no one-shot search to resume (no {CHECKPOINT} there)")
    recorded = meta.get("oneshot")
    if not isinstance(recorded, dict):
        raise ArchsearchError(f"{run}: the one-shot run's settings were not recorded, so it cannot be resumed safely")
    for key, value in settings.items():
        if key == "config":  # the epochs may grow: the schedule is stretched to the new end
            # a run recorded before a rename, or before a field existed (it ran with the field's default)
            was = {**asdict(OneShotConfig()), **options.migrate(recorded.get(key, {}), "oneshot")}
            diff = {k: (v, was.get(k)) for k, v in value.items() if k != "epochs" and was.get(k) != v}
            if diff:
                name, (now, was) = next(iter(diff.items()))
                raise ArchsearchError(
                    f"{run} was searched with {name}={was!r}, not {now!r}: resume takes the run's settings"
                )
        elif key == "supernet":  # unset options, and names from before a rename, compare as today's
            space = get_space(settings["space"])
            now, was = (space.current_build_options({k: v for k, v in d.items() if v is not None})
                        for d in (value, recorded.get(key) or {}))  # fmt: skip
            if now != was:
                raise ArchsearchError(f"{run} was searched with supernet {was!r}, not {now!r}: resume takes the "
                                      "run's settings")  # fmt: skip
        elif recorded.get(key) != value:
            raise ArchsearchError(
                f"{run} was searched with {key} {recorded.get(key)!r}, not {value!r}: resume takes the run's settings"
            )
    return recorded


def _epoch(
    searcher: OneShotMethod,
    train_loader: BatchLoader,
    val_loader: BatchLoader | None,
    epoch: int,
    on_step: Callable[[int, int], None] | None,
) -> tuple[dict[str, Any], Any]:
    """One epoch of method steps: its record, and the architecture derived after it (None: a method that learns no
    architecture weights)."""
    searcher.start_epoch(epoch)
    train_loader.set_epoch(epoch)
    if val_loader is not None:
        val_loader.set_epoch(epoch)
    start = time.perf_counter()
    sums = {"train_loss": 0.0, "train_correct": 0, "val_loss": 0.0, "val_correct": 0, "n": 0, "val_steps": 0}
    device = next(searcher.net.parameters()).device
    world = searcher.world
    batches = world.shard(train_loader)
    pairs = zip(batches, world.shard(val_loader)) if val_loader is not None else ((b, (None, None)) for b in batches)
    for i, ((x, y), (xv, yv)) in enumerate(pairs):
        # on CUDA, mixed precision in bfloat16 (no loss scaling needed); on the CPU, float32
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            r = searcher.step(x, y, xv, yv)
        sums["train_loss"] += r.train_loss * r.batch
        sums["train_correct"] += r.train_correct
        sums["n"] += r.batch
        if r.val_loss is not None and r.val_correct is not None:
            sums["val_loss"] += r.val_loss * len(yv)
            sums["val_correct"] += r.val_correct
            sums["val_steps"] += len(yv)
        if on_step is not None:
            on_step(i + 1, len(train_loader))
    keys = ["train_loss", "train_correct", "val_loss", "val_correct", "n", "val_steps"]
    sums = dict(zip(keys, world.sum_numbers([float(sums[k]) for k in keys])))  # over the ranks' shards
    n, nv = max(1, sums["n"]), sums["val_steps"]
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "train_loss": sums["train_loss"] / n,
        "train_acc": 100.0 * sums["train_correct"] / n,
        "val_loss": sums["val_loss"] / nv if nv else None,
        "val_acc": 100.0 * sums["val_correct"] / nv if nv else None,
        "seconds": time.perf_counter() - start,
    }
    genotype = None
    if searcher.learns_arch:
        genotype = searcher.derive()
        record["probabilities"] = {t: p.tolist() for t, p in searcher.net.probabilities().items()}
        record["genotype"] = str(genotype)
        record["skips"] = _skips(genotype)
        if searcher.latency is not None:
            record["latency"] = epoch_latency(searcher.latency, searcher.net, genotype)
    return record, genotype


def _skips(genotype: Any) -> int:
    if hasattr(genotype, "skip_count"):
        return int(genotype.skip_count("normal"))
    return sum(op == "skip_connect" for op in getattr(genotype, "ops", ()))


def _check_few_shot(cls: type[OneShotMethod], config: OneShotConfig, options: dict[str, Any]) -> None:
    """A few-shot supernet is searched over its sub-networks (SPOS), and its split epoch falls inside the search."""
    few_shot = options.get("few_shot_edge") is not None
    if few_shot and not cls.searches_subnetworks:
        raise ArchsearchError(f"a few-shot supernet (few_shot_edge) is trained by a method that searches its "
                              f"sub-networks (spos), not {cls.name}")  # fmt: skip
    if config.few_shot_epoch is not None:
        if not few_shot:
            raise ArchsearchError("few_shot_epoch splits a few-shot supernet: give few_shot_edge too")
        if not 0 <= config.few_shot_epoch < config.epochs:
            raise ArchsearchError(f"few_shot_epoch {config.few_shot_epoch} must be an epoch of the search "
                                  f"(0 to {config.epochs - 1})")  # fmt: skip


def _collapse(searcher: OneShotMethod, record: dict[str, Any], config: OneShotConfig) -> str | None:
    """Collapse control's stop: the derived normal cell holds more skip connections than allowed."""
    if config.max_skips is None or "skips" not in record or record["skips"] <= config.max_skips:
        return None
    return (
        f"stopped after epoch {record['epoch']}: the derived normal cell has {record['skips']} skip connections "
        f"(more than max_skips={config.max_skips}), the sign of DARTS's collapse"
    )


def _record(store: Store, result: OneShotResult) -> None:
    last = result.history[-1] if result.history else {}
    metrics = {k: float(last[k]) for k in ("val_acc", "train_acc") if last.get(k) is not None}
    trial = Trial(store.next_number(), result.genotype, result.genotype.key, COMPLETE, metrics, metrics.get("val_acc"))
    with store.transaction() as db:
        store.put_trial(db, trial, time.time(), time.time())
        found = {"genotype": result.genotype.to_json(), "stopped": result.stopped, "notes": result.notes,
                 "table": result.table, "measured_ms": result.measured_ms}  # fmt: skip
        store.set_meta("oneshot_result", found, db)

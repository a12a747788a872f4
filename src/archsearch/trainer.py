"""Train any ``nn.Module`` from scratch on a :class:`~archsearch.data.Data`, and report what happened.

SGD (momentum, Nesterov) or AdamW; cosine schedule with linear warm-up; label smoothing; weight decay that skips norms
and biases; gradient clipping; DARTS's drop-path schedule and auxiliary loss when the network has them; mixed
precision (:mod:`archsearch.mixed_precision`); channels-last; ``torch.compile`` as an option; early stopping on
validation accuracy. On the CPU a run is deterministic under its seed. A NaN loss stops the run with status
``nan_loss``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.costs import count_params
from archsearch.data import Augment, Data
from archsearch.devices import check_device
from archsearch.errors import ArchsearchError
from archsearch.mixed_precision import PRECISIONS, autocast_dtype, check_precision, dtype_name
from archsearch.nn import native
from archsearch.nn.folding import fold_batch_norms, is_compiled
from archsearch.options import internal, option, positive_int, register

OPTIMIZERS = ("sgd", "adamw")


@register("training")
@dataclass
class TrainConfig:
    """How to train: the training option group (:mod:`archsearch.options`), so each field with help text is also a
    flag of ``archsearch train`` and ``archsearch search``, a TOML key and a keyword argument of
    :func:`archsearch.train`. Accuracies are reported in percent."""

    epochs: int = option(10, "training epochs", parse=positive_int)
    batch_size: int = option(128, "batch size", parse=positive_int)
    optimizer: str = option("sgd", "SGD (momentum 0.9, Nesterov) or AdamW", choices=OPTIMIZERS)
    lr: float = option(0.05, "peak learning rate")
    momentum: float = internal(0.9)
    nesterov: bool = internal(True)
    weight_decay: float = option(5e-4, "weight decay (norms and biases get none)")
    lr_warmup_epochs: float = option(0.0, "epochs of linear learning-rate warm-up, then cosine decay",
                                     old_flags=("--warmup",))  # fmt: skip
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss")
    grad_clip: float | None = internal(5.0)
    drop_path: float = option(0.0, "final drop-path probability, ramped linearly over the epochs (darts)")
    aux_weight: float = internal(0.4)  # weight of the auxiliary head's loss, when the network returns one
    augment: bool | Augment = option(True, "no random crop / flip")  # or an Augment of your own
    cutout: int = option(0, "cutout size (0: off)")
    patience: int | None = option(None, "stop after N epochs without validation gain", parse=positive_int)
    min_delta: float = internal(0.0)
    restore_best: bool = internal(True)  # end with the weights of the best validation epoch
    evaluate_test: bool = internal(False)
    eval_batch_size: int | None = internal(None)  # None: eval_batch_size(device)
    max_seconds: float | None = option(None, "stop after the epoch that passes this many seconds")
    precision: str = option("auto", "autocast type: auto (bfloat16 on CUDA where supported, else float16; bfloat16 "
                            "on a CPU with bfloat16 instructions for networks that gain from it), float32, "
                            "bfloat16 or float16 (CUDA)", choices=PRECISIONS)  # fmt: skip
    channels_last: bool = internal(True)  # oneDNN (CPU) and cuDNN both run the cell ops faster channels-last
    compile: bool = option(False, "torch.compile the network")
    device: str = option("cpu", "cpu, cuda or cuda:N")
    seed: int = option(0, "random seed")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ArchsearchError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ArchsearchError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.drop_path < 1.0:
            raise ArchsearchError("need lr > 0, 0 <= label_smoothing < 1 and 0 <= drop_path < 1")
        if self.patience is not None and self.patience < 1:
            raise ArchsearchError(f"patience must be >= 1, got {self.patience}")
        if self.weight_decay < 0 or self.lr_warmup_epochs < 0:
            raise ArchsearchError(
                f"need weight_decay >= 0 and lr_warmup_epochs >= 0, got {self.weight_decay}, {self.lr_warmup_epochs}"
            )
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ArchsearchError(f"max_seconds must be > 0, got {self.max_seconds}")
        if self.cutout < 0:
            raise ArchsearchError(f"cutout must be >= 0, got {self.cutout}")
        if self.cutout and self.augment is False:
            raise ArchsearchError("cutout is an augmentation; it cannot go with --no-augment (augment=False)")
        check_device(self.device)
        check_precision(self.precision)

    def augmentation(self, data: Data) -> Augment | None:
        """The augmentation of the training batches: the data's usual one (with this config's cutout), an
        :class:`Augment` given as ``augment``, or none."""
        if isinstance(self.augment, Augment):
            return self.augment
        return data.default_augment(cutout=self.cutout) if self.augment else None


@dataclass
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """The outcome of a training run. ``status``: completed, early_stopped, time_limit or nan_loss."""

    status: str
    best_val_acc: float
    final_val_acc: float
    best_epoch: int
    epochs: int
    seconds: float
    params: int
    test_acc: float | None = None
    message: str = ""
    precision: str = "float32"  # the type it trained in (see TrainConfig.precision)
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def val_acc(self) -> float:
        return self.best_val_acc

    @property
    def ok(self) -> bool:
        return self.status != "nan_loss"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["val_acc"] = self.val_acc
        return out


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer; norms and biases get no weight decay."""
    groups = _param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov and config.momentum > 0
        )
    return torch.optim.AdamW(groups, lr=config.lr)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _logits(out: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None


def eval_batch_size(device: str | torch.device) -> int:
    """The evaluation batch size on ``device`` when none is given: 128 on a CPU, where a batch's activations that
    stay in cache run 1.5x the images/s of a batch of 512 (``benchmarks/eval_batch.py``), and 512 elsewhere."""
    return 128 if torch.device(device).type == "cpu" else 512


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Data,
    split: str,
    batch_size: int | None = None,
    device: str = "cpu",
    channels_last: bool = False,
    fold_norms: bool = True,
) -> tuple[float, float]:
    """Mean loss and accuracy (percent) of ``model`` on a split (``batch_size`` None: :func:`eval_batch_size`), run
    with its batch norms folded into their convolutions unless ``fold_norms`` is off
    (:func:`archsearch.nn.folding.fold_batch_norms`; the same figures up to float rounding)."""
    model.eval()
    net = fold_batch_norms(model) if fold_norms and not is_compiled(model) else model
    if channels_last and net is not model:
        net = net.to(memory_format=torch.channels_last)
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in data.loader(split, batch_size or eval_batch_size(device), device):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits, _ = _logits(net(x))
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        total += len(y)
    return loss_sum / max(1, total), 100.0 * correct / max(1, total)


@dataclass
class _Run:
    """What one training run steps with: the model (and its compiled form), optimizer, schedule, mixed precision
    and the batches."""

    model: nn.Module
    run_model: nn.Module
    config: TrainConfig
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    loader: Any
    amp_dtype: torch.dtype | None  # None: float32 throughout

    @classmethod
    def prepare(cls, model: nn.Module, data: Data, config: TrainConfig) -> _Run:
        """The model moved to the device and memory format, the optimizer, the warm-up and cosine schedule."""
        device = torch.device(config.device)
        cuda = device.type == "cuda"
        model.to(device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        run_model: nn.Module = torch.compile(model) if config.compile else model  # type: ignore[assignment]
        optimizer = make_optimizer(model, config)
        augment = config.augmentation(data)
        loader = data.loader("train", config.batch_size, device, shuffle=True, seed=config.seed, augment=augment,
                             drop_last=len(data.train) > config.batch_size)  # fmt: skip
        total_steps = config.epochs * len(loader)
        warmup_steps = round(config.lr_warmup_epochs * len(loader))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup_steps))
        amp_dtype = autocast_dtype(config.precision, model, device, data.input_shape)
        scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)
        return cls(model, run_model, config, device, optimizer, scheduler, scaler, loader, amp_dtype)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss of a batch (the auxiliary head's added at its weight) and the logits."""
        c = self.config
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits, aux = _logits(self.run_model(x))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=c.label_smoothing)
            if aux is not None:
                loss = loss + c.aux_weight * F.cross_entropy(aux.float(), y, label_smoothing=c.label_smoothing)
        return loss, logits

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss`` (scaled, clipped, scheduled)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    def epoch(self, epoch: int) -> tuple[float, float, str]:
        """Train one epoch: mean loss, accuracy (percent), and the message when the loss stopped being finite."""
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = self.config.drop_path * epoch / self.config.epochs
        self.model.train()
        self.loader.set_epoch(epoch)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        for step, (x, y) in enumerate(self.loader):
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = self.loss(x, y)
            if not torch.isfinite(loss):
                return 0.0, 0.0, f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; training stopped"
            self.step(loss)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(y)
        return loss_sum.item() / max(1, seen), 100.0 * correct.item() / max(1, seen), ""

    def evaluate(self, data: Data, split: str) -> tuple[float, float]:
        """Mean loss and accuracy (percent) on a split."""
        c = self.config
        return evaluate(self.run_model, data, split, c.eval_batch_size, c.device, c.channels_last)


def train(
    model: nn.Module,
    data: Data,
    config: TrainConfig | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data.train``, validate on ``data.val`` each epoch, and return a :class:`TrainResult`."""
    config = config or TrainConfig()
    native.install()  # the compiled kernels where they are built already; a plain training run never builds them
    start = time.perf_counter()
    params = count_params(model)
    run = _Run.prepare(model, data, config)
    history: list[EpochRecord] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    status, message = "completed", ""
    with torch.random.fork_rng(devices=[run.device.index or 0] if run.device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        for epoch in range(config.epochs):
            epoch_start = time.perf_counter()
            train_loss, train_acc, message = run.epoch(epoch)
            if message:
                status = "nan_loss"
                break
            val_loss, val_acc = run.evaluate(data, "val")
            history.append(
                EpochRecord(
                    epoch + 1,
                    train_loss,
                    train_acc,
                    val_loss,
                    val_acc,
                    run.optimizer.param_groups[0]["lr"],
                    time.perf_counter() - epoch_start,
                )
            )
            if on_epoch is not None:
                on_epoch(history[-1])
            if val_acc > best_acc + config.min_delta or best_state is None:
                best_acc, best_epoch = val_acc, epoch + 1
                if config.restore_best:
                    best_state = copy.deepcopy(model.state_dict())
            status, message = _stop(config, epoch, best_epoch, start)
            if status != "completed":
                break
    if best_state is not None and config.restore_best and status != "nan_loss":
        model.load_state_dict(best_state)
    test_acc = None
    if config.evaluate_test and status != "nan_loss":
        test_acc = run.evaluate(data, "test")[1]
    return TrainResult(status=status, best_val_acc=max(best_acc, 0.0),
                       final_val_acc=history[-1].val_acc if history else 0.0, best_epoch=best_epoch,
                       epochs=len(history), seconds=time.perf_counter() - start, params=params, test_acc=test_acc,
                       message=message, precision=dtype_name(run.amp_dtype), history=history)  # fmt: skip


def _stop(config: TrainConfig, epoch: int, best_epoch: int, start: float) -> tuple[str, str]:
    """Whether training stops after ``epoch`` (early stopping, the time limit): the status and why, or
    ``("completed", "")`` to go on."""
    if config.patience is not None and epoch + 1 > best_epoch and epoch + 1 - best_epoch >= config.patience:
        return "early_stopped", f"no validation gain over {config.patience} epoch(s) after epoch {best_epoch}"
    if config.max_seconds is not None and time.perf_counter() - start > config.max_seconds:
        return "time_limit", f"stopped after {epoch + 1} epoch(s): {config.max_seconds}s budget"
    return "completed", ""

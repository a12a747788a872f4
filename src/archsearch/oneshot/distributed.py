"""Data-parallel one-shot search under ``torchrun``: one process per device, each with a shard of every batch.

The weight step runs through ``DistributedDataParallel`` (its gradients averaged across ranks during backward).
The architecture steps take ``torch.autograd.grad`` on the bare supernet, which DDP does not see, so those gradients
are averaged here with ``all_reduce``. Every rank starts from the same seeded supernet and draws the same random
choices (the same generator seeds), so the architecture parameters stay identical across ranks and every rank
derives the same genotype; only rank 0 writes the store, the checkpoint and the plots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from archsearch.devices import check_device


@dataclass(frozen=True)
class World:
    """This process's place: ``rank`` of ``size`` (size 1: not distributed)."""

    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def average(self, tensors: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """The mean of each tensor over the ranks (one flattened all-reduce); ``None`` entries stay ``None`` only
        when they are ``None`` on every rank, so callers pass zeros for unused parameters."""
        if not self.distributed:
            return list(tensors)
        present = [t for t in tensors if t is not None]
        if not present:
            return list(tensors)
        flat = torch.cat([t.reshape(-1).float() for t in present])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        out, offset = [], 0
        for t in tensors:
            if t is None:
                out.append(None)
                continue
            out.append(flat[offset : offset + t.numel()].view_as(t).to(t.dtype))
            offset += t.numel()
        return out

    def sum_numbers(self, values: Sequence[float]) -> list[float]:
        """Sums of plain numbers over the ranks (epoch statistics)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def shard(self, batches: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's slice of every (x, y) batch: contiguous, equal parts of the global batch."""
        for x, y in batches:
            if not self.distributed:
                yield x, y
                continue
            part = len(y) // self.size
            if part == 0:
                raise ValueError(f"a batch of {len(y)} cannot be shared by {self.size} processes")
            yield x[self.rank * part : (self.rank + 1) * part], y[self.rank * part : (self.rank + 1) * part]

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def current_world() -> World:
    """The world of an initialised process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def init_from_env(device: str) -> tuple[World, str]:
    """Join the process group ``torchrun`` describes in the environment (NCCL on CUDA, gloo on the CPU) and pick
    this rank's device (``cuda`` becomes ``cuda:LOCAL_RANK``); without ``torchrun``, a single process."""
    check_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World(), device
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return current_world(), device


def wrap(net: nn.Module, world: World) -> nn.Module:
    """The module the weight step runs through: the supernet itself, or a DDP wrapper of it. Unused parameters are
    expected (the architecture parameters in the weight step, unsampled ops in GDAS and SPOS)."""
    if not world.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [net_device.index] if (net_device := next(net.parameters()).device).type == "cuda" else None
    return DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=True)

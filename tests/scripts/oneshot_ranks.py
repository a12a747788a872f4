"""Run by tests/test_distributed_oneshot.py, under torchrun or alone: a small one-shot search on digits, then each
rank saves its architecture parameters and genotype to OUT/rank<r>.pt.

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/scripts/oneshot_ranks.py OUT METHOD
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from archsearch.data import load_dataset
from archsearch.oneshot import default_config
from archsearch.oneshot.distributed import init_from_env
from archsearch.oneshot.search import run_oneshot


def main() -> None:
    out, method = Path(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(1)
    world, device = init_from_env("cpu")
    data = load_dataset("digits")
    config = default_config(method, epochs=2, batch_size=32, alpha_lr=3e-3, seed=0)
    build = {"channels": 4, "cells_per_stage": 1}
    result = run_oneshot(method, "nb201", data, out / "run", config, build, device=device)
    alphas = [a.detach().clone() for a in result.supernet.arch_parameters()]
    torch.save(
        {"alphas": alphas, "genotype": str(result.genotype), "history": result.history}, out / f"rank{world.rank}.pt"
    )
    if world.distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

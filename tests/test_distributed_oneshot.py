"""One-shot DARTS under torchrun with 2 CPU processes (gloo): identical architecture parameters and genotype on both
ranks, and the same search as 1 process with the same global batch, within the tolerance batch norm allows (each
rank normalises over its own half of the batch, as DistributedDataParallel does without SyncBatchNorm, which has no
CPU implementation)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

SCRIPT = Path(__file__).parent / "scripts" / "oneshot_ranks.py"


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed gloo missing")
def test_two_process_darts_matches_across_ranks_and_one_process(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    subprocess.run([*torchrun, str(SCRIPT), str(tmp_path / "two"), "darts"], check=True, capture_output=True, env=env)
    subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "one"), "darts"], check=True, capture_output=True, env=env
    )
    rank0, rank1 = (torch.load(tmp_path / "two" / f"rank{r}.pt") for r in (0, 1))
    single = torch.load(tmp_path / "one" / "rank0.pt")
    assert all(torch.equal(a, b) for a, b in zip(rank0["alphas"], rank1["alphas"]))
    assert rank0["genotype"] == rank1["genotype"]
    timeless = [[{k: v for k, v in r.items() if k != "seconds"} for r in run["history"]] for run in (rank0, rank1)]
    assert timeless[0] == timeless[1]  # epoch statistics are summed over the ranks' shards
    # against one process with the same global batch (32): softmaxed alphas within 0.03 (measured 0.011, from a
    # uniform 0.2) and the last epoch's training loss within 10% (measured 1.866 against 1.805)
    two_p = [torch.softmax(a, -1) for a in rank0["alphas"]]
    one_p = [torch.softmax(a, -1) for a in single["alphas"]]
    assert max(float((a - b).abs().max()) for a, b in zip(two_p, one_p)) < 0.03
    assert abs(rank0["history"][-1]["train_loss"] / single["history"][-1]["train_loss"] - 1) < 0.10
    assert max(float((a - b).abs().max()) for a, b in zip(rank0["alphas"], single["alphas"])) > 0  # really 2 runs
    assert (tmp_path / "two" / "run" / "oneshot.pt").is_file()  # rank 0 wrote the checkpoint and the store

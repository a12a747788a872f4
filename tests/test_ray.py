"""The Ray executor against a real two-node cluster on loopback: a head and a second node started with
``ray start``, a search joining it with ``--ray-address``, one worker process killed mid-trial."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'archsearch[ray]')")

from archsearch.testing.evaluators import FaultEvaluator  # noqa: E402

FAULT = "archsearch.testing.evaluators:FaultEvaluator"
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raylet_running() -> bool:
    """Whether some Ray node already runs on this machine (``ray stop`` at the end would stop it too)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "raylet":
                return True
        except OSError:
            continue
    return False


@pytest.fixture
def cluster(tmp_path: Path):
    """A Ray head and a second node on 127.0.0.1, one CPU each; stopped afterwards."""
    if not shutil.which(RAY):
        pytest.skip(f"no ray command beside {sys.executable}")
    if not Path("/proc").is_dir() or _raylet_running():
        pytest.skip("a Ray node already runs here (or no /proc to tell): this test ends with `ray stop --force`")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
    # loopback only: no token authentication (Ray's default for clusters writes a token to ~/.ray)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    subprocess.run(
        [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard",
         "false", *common], check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    try:
        subprocess.run(
            [RAY, "start", "--address", address, "--node-ip-address", "127.0.0.1", *common],
            check=True, capture_output=True, env=env, timeout=120,
        )  # fmt: skip
        yield address, env
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)


def _rows(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / "experiment.sqlite")
    rows = db.execute("SELECT number, key, status, error, attempts FROM trials ORDER BY number").fetchall()
    db.close()
    return rows


def test_search_on_a_two_node_cluster_survives_a_killed_worker(cluster: tuple[str, dict], tmp_path: Path) -> None:
    address, env = cluster
    out, log = tmp_path / "run", tmp_path / "log"
    log.mkdir()
    cmd = [
        sys.executable, "-m", "archsearch.cli", "search", "--space", "nb201", "--strategy", "random",
        "--evaluator", FAULT, "--evaluator-option", "seconds=2.0", "--evaluator-option", f"log_dir={log}",
        "--executor", "ray", "--ray-address", address, "--workers", "2", "--trials", "6", "--out", str(out), "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    runs = log / "runs.log"
    deadline = time.time() + 180
    victim = None
    while time.time() < deadline and victim is None:  # the first trial to start: kill its worker process
        time.sleep(0.1)
        if runs.exists() and runs.read_text().strip():
            key, pid = runs.read_text().splitlines()[0].rsplit(" ", 1)
            victim = key
            os.kill(int(pid), signal.SIGKILL)
    assert victim is not None, "no trial started on the cluster"
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    rows = _rows(out)
    assert [r[0] for r in rows] == list(range(6)) and all(r[2] == "complete" for r in rows)
    assert len({r[1] for r in rows}) == 6  # every trial recorded exactly once
    (killed,) = [r for r in rows if r[1] == victim]
    assert killed[4] == 2 and "worker process died" in killed[3]  # retried once, and the store says why
    evaluator = FaultEvaluator(log_dir=str(log))
    assert evaluator.runs_of(victim) == 2 and all(evaluator.runs_of(r[1]) == 1 for r in rows if r[1] != victim)
    pids = {line.rsplit(" ", 1)[1] for line in runs.read_text().splitlines()}
    assert len(pids) >= 2  # trials ran in more than one worker process

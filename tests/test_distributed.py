"""Searches over several processes (torchrun, gloo on the CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_cli

WORKER = ROOT / "tests" / "distributed_worker.py"


def torchrun(nproc: int, *args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node NPROC ARGS`` (the ``rlnas`` module when ARGS starts with ``-m``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=env)


# f1 (12 s) takes the same steps as accuracy through another metric: run on purpose (-m slow).
@pytest.mark.parametrize("metric", ["accuracy", pytest.param("f1", marks=pytest.mark.slow)])
def test_two_ranks_with_half_the_batch_take_the_steps_of_one(metric, tmp_path):
    # Macro F1 is not a mean of per-shard values: the ranks score the gathered global batch.
    budget = ["threads=1", "distributed.sync_batchnorm=true", "search.augment=true", f"task.reward_metric={metric}"]
    two = torchrun(2, str(WORKER), str(tmp_path), "search.batch_size=16", "search.val_batch_size=32", *budget)
    assert two.returncode == 0, two.stderr[-3000:]
    from tests.distributed_worker import main as one_process  # no torchrun: a single process, here

    one_process(str(tmp_path), ["search.batch_size=32", "search.val_batch_size=64", *budget])
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}_of2.pt") for r in (0, 1))
    single = torch.load(tmp_path / "rank0_of1.pt")
    # Both ranks hold the same supernet, bit for bit.
    assert rank0["weights"].keys() == rank1["weights"].keys()
    for name, w in rank0["weights"].items():
        assert torch.equal(w, rank1["weights"][name]), name
    # ... and it is the one a single process trains with the global batch (same samples, same steps).
    assert rank0["archs"] == single["archs"] and len(single["archs"]) > 0
    assert rank0["best"] == single["best"]
    # Equal up to rounding: two gathered halves sum in another order than one batch of 32, and the
    # difference grows over the steps, by how much depends on the CPU's vector units (up to 3e-4 where
    # AVX-512 is used). So it is judged against how far training moved the weights: under 1 % of it
    # (0.3 % measured), where a step of another size (a sum of the halves for their mean) would be ~100 %.
    moved = {n: w - single["start"][n] for n, w in single["weights"].items() if w.is_floating_point()}
    apart = {n: rank0["weights"][n] - single["weights"][n] for n in moved}
    total = sum(d.norm() ** 2 for d in apart.values()) ** 0.5 / sum(m.norm() ** 2 for m in moved.values()) ** 0.5
    assert total < 0.01, f"two ranks ended {total:.1%} of the training's movement away from one process"
    for name, m in moved.items():  # and no tensor far off (a tensor the training barely moved: rounding only)
        assert apart[name].norm() <= 0.1 * m.norm() + 1e-6, name


def test_torchrun_search_writes_one_complete_run(tmp_path):
    proc = torchrun(2, "-m", "rlnas", "+experiment=smoke", "threads=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [p for p in (tmp_path / "outputs" / "runs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs  # the ranks agreed on one run dir
    run = runs[0]
    for name in (
        "best_arch.json",
        "history.csv",
        "summary.json",
        "supernet.pt",
        "controller.pt",
        "config.yaml",
        "latency_lut.json",
        "tensorboard",
        ".hydra",
    ):
        assert (run / name).exists(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert json.loads((run / "summary.json").read_text())["processes"] == 2
    assert proc.stdout.count("best: ") == 1  # rank 0 reports, once
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4  # one controller epoch of 2 steps x 4 archs, written once


@pytest.mark.slow
def test_stopped_torchrun_search_resumes_in_one_process(tmp_path):
    run = tmp_path / "run"
    stop = torchrun(
        2, "-m", "rlnas", "+experiment=smoke", "threads=1", f"hydra.run.dir={run}", "checkpoint.stop_after=1"
    )
    assert stop.returncode != 0
    assert "interrupted after epoch 1" in stop.stderr
    assert (run / "checkpoint.pt").exists() and not (run / "best_arch.json").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    resumed = run_cli(f"resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "best_arch.json").exists()
    assert json.loads((run / "status.json").read_text())["status"] == "completed"


def test_a_rank_that_dies_ends_the_run(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "rlnas",
        "+experiment=smoke",
        "search.epochs=200",
        "threads=1",
        f"hydra.run.dir={run}",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists():  # training has started
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2, children
        os.kill(max(int(pid) for pid in children), signal.SIGKILL)  # the worker started last dies
        _, err = proc.communicate(timeout=120)  # never a hang
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "rlnas: error: rank 0: another process of the run stopped" in err or "rlnas: interrupted" in err, err[-3000:]
    assert (run / "checkpoint.pt").exists()  # what was saved stays
    status = json.loads((run / "status.json").read_text())["status"]
    assert status in ("failed", "interrupted"), status

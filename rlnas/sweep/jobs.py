"""What one job of a sweep needs to know about the others: how many share the machine, and its status file."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from rlnas.search.checkpoint import STATUS_FILE
from rlnas.utils import write_json_atomic
from rlnas.utils.rundir import LOCK_FILE, lock_run_dir

__all__ = ["LOCK_FILE", "STATUS_FILE", "lock_run_dir", "parallel_jobs", "threads_per_job", "write_status"]


def parallel_jobs() -> int:
    """How many jobs of the current Hydra sweep run at once on this machine.

    1 for a single run and for launchers that run one job at a time here (the
    basic launcher; SLURM jobs get their own nodes or CPU allocations). For the
    joblib launcher it is ``n_jobs`` with joblib's meaning of negative values
    (-1: one job per CPU, -2: all CPUs but one, ...).
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return 1
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or "joblib" not in str(hydra_cfg.launcher.get("_target_", "")).lower():
        return 1
    n_jobs = int(hydra_cfg.launcher.get("n_jobs") or 1)
    cpus = os.cpu_count() or 1
    return max(1, cpus + 1 + n_jobs) if n_jobs < 0 else n_jobs


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` parallel jobs so that together they use each core once.

    Oversubscribed cores (2 jobs x all threads on 2 cores) make every job several
    times slower than running them one after the other.
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, jobs))


#: The states a run writes into ``status.json``.
RUN_STATES = ("running", "completed", "failed", "interrupted")


def write_status(run_dir: str | Path, status: str, started: float, **fields: Any) -> None:
    """Writes ``status.json`` (atomically) in ``run_dir``.

    Args:
        run_dir: The job's run dir.
        status: ``running``, ``completed``, ``failed`` or ``interrupted``.
        started: ``time.time()`` when the job started.
        **fields: Extra entries (``best_reward``, ``error``, ...).
    """
    now = time.time()
    payload = {
        "status": status,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": round(now - started, 2),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **fields,
    }
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    path = Path(run_dir) / STATUS_FILE
    try:
        write_json_atomic(path, payload)
    except OSError:
        # A full disk has no room for a second copy, but rewriting the small file in
        # place usually fits in the blocks it frees: a final status beats an atomic one.
        if path.is_symlink():  # in place, but never through a link
            path.unlink()
        path.write_text(json.dumps(payload, indent=2) + "\n")

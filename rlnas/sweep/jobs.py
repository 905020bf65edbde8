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
from rlnas.utils.rundir import writable_dir

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


#: The lock file every run holds in its run dir for as long as it runs.
LOCK_FILE = ".rlnas.lock"
_held: dict[Path, int] = {}


class RunDirBusy(ValueError):
    """Another process holds the run dir; the message names its pid."""


def lock_run_dir(run_dir: str | Path) -> None:
    """Takes the run dir's exclusive lock for the rest of this process (one writer per run dir).

    The lock is an ``flock`` on ``.rlnas.lock``, released by the operating
    system when the process ends however it ends, so a killed run leaves no
    stale lock. Taking a lock this process already holds does nothing.

    Raises:
        RunDirBusy: When another process holds it (its pid named).
        ValueError: When the directory cannot be created or written.
    """
    path = Path(run_dir).expanduser().resolve()
    if path in _held:
        return
    if path.exists() and not path.is_dir():
        raise RunDirBusy(f"{path} is a file, not a run directory")
    try:
        import fcntl
    except ImportError:  # no flock on this platform: run unguarded
        return
    writable_dir(path, str(path))  # read-only, a file on the way, no permission
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:  # a full disk; a folder where the lock file goes
        if (path / LOCK_FILE).is_dir():
            raise ValueError(
                f"{path / LOCK_FILE} is a directory where the run's lock file goes; move it away"
            ) from None
        raise ValueError(f"{path}: cannot write the run's files there ({err.strerror or type(err).__name__})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunDirBusy(
            f"{path} is in use by another rlnas run (pid {holder}); wait for it to end or choose another directory"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[path] = fd

"""Hydra multirun sweeps: each job's threads and status (:mod:`.jobs`), and the sweep summary (:mod:`.summary`)."""

from rlnas.sweep.jobs import STATUS_FILE, parallel_jobs, threads_per_job, write_status
from rlnas.sweep.summary import JobRecord, read_sweep, summarize

__all__ = ["STATUS_FILE", "JobRecord", "parallel_jobs", "read_sweep", "summarize", "threads_per_job", "write_status"]

"""Fault drill: kill searches with SIGKILL at random moments, resume them, compare with an uninterrupted run.

    python tools/fault_drill.py --n 10
    python tools/fault_drill.py --n 5 -- controller=ppo search.epochs=5

A reference search runs once without interruption. Each trial starts the same
search in a fresh directory, kills it (SIGKILL: no handler runs) at a random
moment between writing its config and finishing — every third trial the moment a checkpoint is being
written — then continues it with ``python -m rlnas resume=DIR`` (restarting
from scratch if it died before writing its config) until it finishes. A trial
counts as identical when ``history.csv`` and ``best_arch.json`` match the
reference byte for byte. Trials reuse the reference's latency table, since
measured latencies differ from one measurement to the next.

Prints one line per trial and ``resumed identical: K/N``; exits 1 when K < N.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_tool, seed_arg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("history.csv", "best_arch.json")


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "rlnas", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, what: str) -> None:
    """Waits for ``proc``; a search that failed ends the drill in one line (its own last line)."""
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{what} exited with {proc.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}")


def wait_for_search(proc: subprocess.Popen, run_dir: Path) -> float:
    """Waits until the run wrote its config (start-up is over); returns the time that took."""
    began = time.monotonic()
    while proc.poll() is None and not (run_dir / "config.yaml").exists():
        time.sleep(0.005)
    return time.monotonic() - began


def kill_at(proc: subprocess.Popen, run_dir: Path, delay: float | None, during_write: bool) -> str:
    """SIGKILLs ``proc`` ``delay`` s into its search, or while a checkpoint is being written."""
    tmp = run_dir / "checkpoint.pt.tmp"
    wait_for_search(proc, run_dir)
    began = time.monotonic()
    while proc.poll() is None:
        elapsed = time.monotonic() - began
        if (during_write and tmp.exists()) or (delay is not None and elapsed >= delay):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            where = "during a checkpoint write" if during_write else f"{elapsed:.2f} s into the search"
            return f"killed {where}"
        time.sleep(0.0005 if during_write else 0.01)
    proc.communicate()
    return "finished before the kill"


def same_outputs(a: Path, b: Path) -> bool:
    return all(
        (a / f).is_file() and (b / f).is_file() and (a / f).read_bytes() == (b / f).read_bytes() for f in COMPARED
    )


#: The file that marks a folder as the drill's own (its run dirs are deleted before each start).
DRILL_MARK = ".fault_drill"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="trials (one random kill each)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the kill moments")
    parser.add_argument("--out", type=Path, default=None, help="keep the run dirs here (default: a temporary dir)")
    parser.add_argument("overrides", nargs="*", help="more search overrides (default: a 6-epoch smoke search)")
    opts = parser.parse_args()
    if opts.n < 1:
        parser.error(f"--n must be >= 1, got {opts.n}")
    overrides = ["+experiment=smoke", "search.epochs=6", "search.supernet_steps=10", *opts.overrides]
    root = opts.out or Path(tempfile.mkdtemp(prefix="rlnas-drill-"))
    # The drill deletes its run dirs before each start: only in a folder it made itself.
    if root.exists() and (not root.is_dir() or any(root.iterdir()) and not (root / DRILL_MARK).is_file()):
        parser.error(f"--out {root} is not empty and no earlier drill made it; name a new or empty folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / DRILL_MARK).write_text("run dirs of tools/fault_drill.py; it deletes and rewrites them\n")
    rng = np.random.default_rng(opts.seed)

    reference = root / "reference"
    shutil.rmtree(reference, ignore_errors=True)
    proc = start([*overrides, f"hydra.run.dir={reference}"])
    startup = wait_for_search(proc, reference)
    began = time.monotonic()
    while proc.poll() is None and not (reference / "best_arch.json").exists():
        time.sleep(0.005)
    span = time.monotonic() - began  # kills land between the config and the last output
    finish(proc, "the reference run")
    print(f"reference: {startup:.1f} s start-up, {span:.1f} s search, in {reference}")
    search_args = [*overrides, f"costs.latency_table={reference / 'latency_lut.json'}"]

    identical = 0
    for trial in range(opts.n):
        run_dir = root / f"trial{trial:02d}"
        shutil.rmtree(run_dir, ignore_errors=True)
        during_write = trial % 3 == 2
        delay = None if during_write else float(rng.uniform(0.0, span))
        event = kill_at(start([*search_args, f"hydra.run.dir={run_dir}"]), run_dir, delay, during_write)
        if event == "finished before the kill" or (run_dir / "best_arch.json").exists():
            resumes = 0  # nothing to resume: the outputs were complete
            event += " (outputs already complete)" if event.startswith("killed") else ""
        elif (run_dir / "config.yaml").is_file():
            finish(start([f"resume={run_dir}"]), f"trial {trial}: resume")
            resumes = 1
        else:  # died before writing anything a resume could use: start again
            shutil.rmtree(run_dir, ignore_errors=True)
            finish(start([*search_args, f"hydra.run.dir={run_dir}"]), f"trial {trial}: restart")
            resumes = 0
        ok = same_outputs(reference, run_dir)
        identical += ok
        print(f"trial {trial}: {event}; {resumes} resume(s); outputs {'identical' if ok else 'DIFFERENT'}", flush=True)
    print(f"resumed identical: {identical}/{opts.n}")
    return 0 if identical == opts.n else 1


if __name__ == "__main__":
    run_tool(main)

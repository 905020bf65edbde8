"""Summarises a Hydra multirun sweep of ``python -m rlnas -m ...``: a table and plots across its jobs.

Usage::

    python tools/summarize_sweep.py outputs/multirun/2026-11-24/10-00-00 [--out DIR] [--no-plots]

Writes ``sweep_summary.md`` and ``sweep_summary.csv`` (one row per job: the
overrides that set it apart, status, best reward, metrics, costs, wall time, the
error of a failed job) and ``sweep_rewards.png`` / ``sweep_pareto.png`` (reward
curves from each job's TensorBoard events; every job's Pareto front, per task).
Failed, killed or unfinished jobs are listed with their status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.sweep import summarize  # noqa: E402
from rlnas.utils.errors import tolerant_stdout  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    tolerant_stdout("summarize_sweep")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", help="the sweep's folder (hydra.sweep.dir), e.g. outputs/multirun/DATE/TIME")
    parser.add_argument("--out", default=None, help="where to write the table and plots (default: the sweep dir)")
    parser.add_argument("--no-plots", action="store_true", help="write the tables only")
    args = parser.parse_args(argv)
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        message = f"--out {args.out} is a file; name a folder for the table and plots"
        print(f"summarize_sweep: error: {message}", file=sys.stderr)
        return 2
    try:
        written = summarize(args.sweep_dir, args.out, plots=not args.no_plots)
    except FileNotFoundError as err:
        print(f"summarize_sweep: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --out a file, a folder that cannot be written
        print(f"summarize_sweep: error: {err.filename or args.out}: {err.strerror}", file=sys.stderr)
        return 2
    print(Path(written[1]).read_text())
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

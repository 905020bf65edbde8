"""Throughput of one search on 1 vs N processes (``torchrun``), measured side by side.

Runs the same search (same global batch, so the same steps) in one process and
under ``torchrun --nproc_per_node=N``, alternating the two ``--repeats`` times
so machine noise hits both alike, and prints the search's own wall time
(``summary.json``: from the first epoch to the outputs, start-up excluded),
supernet samples per second and the ratio. Further rows: the same with
BatchNorm synchronised across ranks (``distributed.sync_batchnorm=true``), and
the per-rank batch kept (N times the global batch: weak scaling, samples per
second).

    python tools/bench_distributed.py --procs 2 --repeats 2 -- search.epochs=4
    python tools/bench_distributed.py --procs 2 --device cuda --out docs/distributed

One process gets all the threads the N processes share (``--threads``, by
default this machine's cores), so the comparison is of the same hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import refuse_keys_of_options, run_tool

from rlnas.utils import write_text_atomic
from rlnas.utils.rundir import writable_dir

ROOT = Path(__file__).resolve().parents[1]


def search_seconds(procs: int, threads: int, overrides: list[str], run_dir: Path) -> float:
    """Runs one search; returns the search's wall time from its summary."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // procs)), "PYTHONUNBUFFERED": "1"}
    args = ["-m", "rlnas", *overrides, f"threads={max(1, threads // procs)}", f"hydra.run.dir={run_dir}"]
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", *args]
    else:
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"bench_distributed: {' '.join(cmd)} failed:\n{tail}")
    return float(json.loads((run_dir / "summary.json").read_text())["seconds"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=2, help="processes of the distributed runs")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each setting")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads in all")
    parser.add_argument("--batch", type=int, default=128, help="global batch of the equal-steps comparison")
    parser.add_argument("--out", type=Path, default=None, help="also write bench.json and bench.md here")
    parser.add_argument("overrides", nargs="*", help="overrides of every run (after --)")
    args = parser.parse_args(argv)
    # --batch 0 was named as search.batch_size; --repeats 0 printed a table of NaN; --threads 0 ran on torch's default
    for option in ("batch", "repeats", "threads"):
        if getattr(args, option) < 1:
            raise SystemExit(f"bench_distributed: --{option} must be >= 1, got {getattr(args, option)}")
    if args.procs < 2 or args.batch % args.procs:
        raise SystemExit(f"bench_distributed: --procs must be >= 2 and divide --batch {args.batch}, got {args.procs}")
    refuse_keys_of_options(
        args.overrides,
        {"search.batch_size": "--batch", "threads": "--threads", "hydra.run.dir": "the tool (temporary dirs)"},
    )
    if args.out:  # before the runs: a file in the way found at the end would lose their minutes
        try:
            writable_dir(args.out, f"--out {args.out}", "bench.json and bench.md")
        except ValueError as err:
            raise SystemExit(f"bench_distributed: {err}") from None
    base = [
        "+experiment=smoke",
        "search.epochs=4",
        "search.supernet_steps=40",
        "search.controller_steps=4",
        "search.archs_per_step=20",
        "search.val_batch_size=128",
        "search.random_baseline=0",
        *args.overrides,
    ]
    per_rank = args.batch // args.procs
    n = args.procs
    settings = {  # label -> (processes, per-rank batch, samples per supernet step, extra overrides)
        "1 process": (1, args.batch, args.batch, []),
        f"{n} processes, same global batch": (n, per_rank, args.batch, []),
        f"{n} processes, same global batch, sync BN": (n, per_rank, args.batch, ["distributed.sync_batchnorm=true"]),
        f"{n} processes, {n}x global batch": (n, args.batch, args.batch * n, []),
    }
    epochs = 0
    times: dict[str, list[float]] = {label: [] for label in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (label, (procs, batch, _, extra)) in enumerate(settings.items()):
                run_dir = Path(tmp) / f"{r}_{i}"
                overrides = [*base, f"search.batch_size={batch}", *extra]
                times[label].append(search_seconds(procs, args.threads, overrides, run_dir))
                epochs = int(json.loads((run_dir / "summary.json").read_text())["epochs"])
                print(f"  {label}: {times[label][-1]:.1f} s", file=sys.stderr)
    supernet_steps = int([o for o in base if o.startswith("search.supernet_steps=")][-1].split("=", 1)[1])
    reference = float(np.median(times["1 process"]))
    rows = []
    for label, (procs, batch, samples, _) in settings.items():
        t = float(np.median(times[label]))
        rate = samples * supernet_steps * epochs / t
        rows.append(
            {
                "setting": label,
                "processes": procs,
                "batch_per_rank": batch,
                "seconds": round(t, 2),
                "supernet_samples_per_s": round(rate, 1),
                "speed_vs_1": round(reference / t, 2),
                "samples_per_s_vs_1": round(rate / (args.batch * supernet_steps * epochs / reference), 2),
            }
        )
    header = (
        "| setting | processes | batch / rank | search s (median) | samples/s | time ratio (1 proc / this) "
        "| samples/s ratio |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {r['setting']} | {r['processes']} | {r['batch_per_rank']} | {r['seconds']:.1f} | "
        f"{r['supernet_samples_per_s']:.0f} | {r['speed_vs_1']:.2f} | {r['samples_per_s_vs_1']:.2f} |"
        for r in rows
    ]
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"threads": args.threads, "repeats": args.repeats, "overrides": base, "rows": rows, "times": times}
        write_text_atomic(args.out / "bench.json", json.dumps(meta, indent=2))
        write_text_atomic(args.out / "bench.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    run_tool(main)

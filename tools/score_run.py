"""How good is a finished run's supernet? The found architecture against random ones.

Scores the run's best architecture (``best_arch.json``) and ``--archs``
uniformly random architectures on the whole validation split with the run's
shared weights, and prints every task metric for both (mean ± std, min and
max for the random ones): how far the search moved above what weight sharing
gives any architecture.

    .venv/bin/python tools/score_run.py --run-dir outputs/runs/DATE/TIME
    .venv/bin/python tools/score_run.py --run-dir outputs/runs/DATE/TIME --archs 50 --out scores.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import check_out_file, load_run, run_tool, seed_arg  # noqa: E402

from rlnas.utils import parse_json, write_text_atomic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="a finished search run (supernet.pt, best_arch.json)")
    parser.add_argument("--archs", type=int, default=20, help="uniformly random architectures to score")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the random architectures")
    parser.add_argument("--out", help="also write the scores as JSON here")
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    best_file = run_dir / "best_arch.json"
    if not best_file.is_file():
        raise SystemExit(f"--run-dir {run_dir}: no best_arch.json there (the search has not finished)")
    if args.archs < 1:
        raise SystemExit(f"--archs must be >= 1, got {args.archs}")
    if args.out:  # best_arch.json given as --out was overwritten by the scores
        check_out_file(Path(args.out), "--out", ("run_dir", "best", "random"))
    with tempfile.TemporaryDirectory() as tmp:
        search = load_run(run_dir, tmp)
        best = tuple(parse_json(best_file.read_text())["arch"])
        rng = np.random.default_rng(args.seed)
        archs = [search.space.sample(rng) for _ in range(args.archs)]
        best_metrics = search.evaluator.evaluate_full(best).metrics
        random_metrics = [search.evaluator.evaluate_full(a).metrics for a in tqdm(archs, desc="random archs")]
    names = list(best_metrics)
    table = {name: np.array([m[name] for m in random_metrics]) for name in names}
    print(f"\n{run_dir}: {len(archs)} random architectures vs the best, whole validation split, shared weights")
    print(f"{'metric':<12} {'best':>8} {'random mean ± std':>20} {'min':>8} {'max':>8}")
    for name in names:
        v = table[name]
        print(
            f"{name:<12} {best_metrics[name]:8.4f} {v.mean():11.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:6.4f} "
            f"{v.min():8.4f} {v.max():8.4f}"
        )
    better = {name: float((table[name] < best_metrics[name]).mean()) for name in names}
    print(
        "share of random architectures below the best: "
        + ", ".join(f"{name} {share:.0%}" for name, share in better.items())
    )
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(
            out,
            json.dumps(
                {
                    "run_dir": str(run_dir),
                    "best": {"arch": list(best), "metrics": best_metrics},
                    "random": [{"arch": list(a), "metrics": m} for a, m in zip(archs, random_metrics)],
                },
                indent=2,
            ),
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    run_tool(main)

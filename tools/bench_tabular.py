"""Architectures per second against a tabular benchmark: through the Gymnasium env and through the search loop.

The env path is what an external RL agent sees: reset, one step per decision
with its action mask, the table lookup on the last step. The loop path is
``python -m rlnas +benchmark=NAME controller=random``.

    python tools/bench_tabular.py --benchmark nb201_cifar10 --archs 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.utils import write_text_atomic
from tools._common import check_out_file, load_config, run_tool  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="nb201_cifar10")
    parser.add_argument("--archs", type=int, default=50_000)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.archs < 1:
        parser.error(f"--archs must be >= 1, got {args.archs}")
    if args.json:
        check_out_file(args.json, "--json", ("benchmark", "archs", "env_archs_per_s"))

    from rlnas.env import ArchitectureEnv
    from rlnas.search.budget import build_budget_search

    cfg = load_config(
        [
            f"+benchmark={args.benchmark}",
            "controller=random",
            f"benchmark.evaluations={args.archs}",
            "benchmark.archs_per_step=100",
        ]
    )
    search = build_budget_search(cfg, None, progress=False)
    env = ArchitectureEnv(search.space, search.evaluator)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(args.archs):
        env.reset()
        done = False
        while not done:
            allowed = np.flatnonzero(env.action_masks())
            _, _, done, _, _ = env.step(int(allowed[rng.integers(len(allowed))]))
    env_rate = args.archs / (time.perf_counter() - start)
    # The loop's budget counts distinct architectures: half the space at most, so that random
    # search is not timed hunting for the last unseen ones of a small table.
    search.evaluations = min(args.archs, max(1, search.space.size // 2))
    start = time.perf_counter()
    result = search.run()
    seconds = time.perf_counter() - start
    loop_rate = result.proposals / seconds
    figures = {
        "benchmark": args.benchmark,
        "archs": args.archs,
        "env_archs_per_s": round(env_rate),
        "loop_archs_per_s": round(loop_rate),
        "loop_distinct": result.distinct,
    }
    print(
        f"| path | architectures / s |\n|---|---|\n| Gymnasium env, random masked actions | {env_rate:,.0f} |\n"
        f"| search loop, controller=random ({result.distinct:,} distinct of {result.proposals:,} proposed) | "
        f"{loop_rate:,.0f} |"
    )
    if args.json:
        write_text_atomic(args.json, json.dumps(figures, indent=2))


if __name__ == "__main__":
    run_tool(main)

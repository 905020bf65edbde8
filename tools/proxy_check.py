"""How well does a zero-cost proxy rank architectures of a published benchmark table?

Draws ``--archs`` cells uniformly from the NAS-Bench-201 space (the network
the table was made with: 5 cells per stage, widths 16/32/64, a CIFAR-10 head),
scores each untrained network with SynFlow (no data: an all-ones 3x32x32
input) and ranks them against the table's accuracy, beside the parameter
count as the simplest baseline. A check of :mod:`rlnas.evaluators.proxies` on
a table the project does not tune on.

    .venv/bin/python tools/proxy_check.py                # 200 cells, about a minute
    .venv/bin/python tools/proxy_check.py --archs 1000 benchmark.path=/data/nb201.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_config, run_tool, seed_arg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (benchmark.path=... for your copy)")
    parser.add_argument("--archs", type=int, default=200, help="cells drawn uniformly")
    parser.add_argument("--cells", type=int, default=5, help="cells per stage (NAS-Bench-201: 5)")
    parser.add_argument("--seed", type=seed_arg, default=0)
    args = parser.parse_args()
    if args.archs < 4:
        raise SystemExit(f"--archs {args.archs}: need >= 4 cells to rank")
    if args.cells < 1:
        parser.error(f"--cells must be >= 1, got {args.cells}")
    import torch
    from tqdm import tqdm

    from rlnas.benchmarks import TabularBenchmark
    from rlnas.data.base import DataError
    from rlnas.evaluators.proxies import synflow
    from rlnas.spaces import NB201Space
    from rlnas.supernet import build_child
    from rlnas.tasks import Network
    from rlnas.tasks.classification import ClassificationHead

    cfg = load_config(["+benchmark=nb201_cifar10", *args.overrides], check=True)
    try:
        space = NB201Space(cells_per_stage=args.cells)
    except ValueError as err:  # the supernet would not fit: named by the option that sized it
        raise SystemExit(f"proxy_check.py: --cells {args.cells}: {err}") from None
    b = cfg.benchmark
    try:
        table = TabularBenchmark(space, b.path, b.key_template, b.metric, b.key_column, env_var=b.env_var)
    except DataError as err:
        raise SystemExit(f"proxy_check.py: {err}") from None
    rng = np.random.default_rng(args.seed)
    archs = [tuple(int(rng.integers(n)) for n in space.num_choices) for _ in range(args.archs)]
    start = time.perf_counter()
    scores, params, truth = [], [], []
    for arch in tqdm(archs, desc="synflow", unit="cell", disable=None):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(args.seed)
            child = build_child(space, list(arch), 3)
            network = Network(child, ClassificationHead(child.out_channels[-1], 10))
        scores.append(synflow(network, (3, 32, 32)))
        params.append(sum(p.numel() for p in network.parameters()))
        truth.append(table.evaluate(arch).metrics[b.metric])
    seconds = time.perf_counter() - start
    print(f"{args.archs} NAS-Bench-201 cells ({args.cells} per stage), {b.metric}; {seconds:.0f} s")
    print("| proxy | Kendall tau | Spearman rho |")
    print("|---|---|---|")
    for name, values in (("SynFlow (untrained, no data)", scores), ("parameter count", params)):
        print(f"| {name} | {stats.kendalltau(values, truth)[0]:.3f} | {stats.spearmanr(values, truth)[0]:.3f} |")


if __name__ == "__main__":
    run_tool(main)

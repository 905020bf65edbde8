"""Do shared weights rank architectures the way standalone training does?

Takes a finished search run (its ``supernet.pt`` and ``config.yaml``), or runs
the configured search first. Scores >= 20 random architectures on the whole
validation split with the shared weights, trains the same architectures
standalone from scratch for a short fixed budget, and reports Kendall's tau
and Spearman's rho (scipy.stats) between the two rankings.

    .venv/bin/python tools/rank_correlation.py --run-dir outputs/runs/DATE/TIME
    .venv/bin/python tools/rank_correlation.py --archs 20 --steps 300     # runs a search first
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_config, load_run  # noqa: E402

from rlnas.search.builder import build_search  # noqa: E402
from rlnas.supernet import build_child  # noqa: E402
from rlnas.tasks import Network  # noqa: E402


def train_standalone(search, arch, steps: int, seed: int) -> float:
    """Validation reward metric of ``arch`` trained alone (SGD, cosine, the search's batch size)."""
    torch.manual_seed(seed)
    data, task, s = search.data, search.task, search.settings
    child = build_child(search.space, arch, data.in_channels, track_running_stats=True)
    model = Network(child, task.build_head(child.out_channels, data)).to(data.train.x.device)
    opt = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9, nesterov=True, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator(data.train.x.device).manual_seed(seed)
    model.train()
    for _ in range(steps):
        x, y = data.train.batch(s.batch_size, gen)
        loss = task.loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        outputs = [model(x) for x, _ in data.val.chunks(512)]
    return task.metrics(outputs, [y for _, y in data.val.chunks(512)])[task.reward_metric]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the search run first (without --run-dir)")
    parser.add_argument("--run-dir", help="a finished run to take the supernet from")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=300, help="standalone training steps per architecture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/rank_correlation.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run_dir:
            search = load_run(args.run_dir, tmp)
        else:
            cfg = load_config(args.overrides)
            search = build_search(cfg, tmp, progress=False)
            start = time.perf_counter()
            search.run()
            print(f"search: {time.perf_counter() - start:.0f} s")
    metric = search.task.reward_metric
    rng = np.random.default_rng(args.seed)
    archs = list(dict.fromkeys(search.space.sample(rng) for _ in range(args.archs)))
    rows = []
    print(f"{'arch':<64} {'shared':>7} {'alone':>7}")
    for i, arch in enumerate(archs):
        shared = search.evaluator.evaluate_full(arch).metrics[metric]
        alone = train_standalone(search, arch, args.steps, args.seed + i)
        rows.append({"arch": list(arch), "shared": shared, "standalone": alone})
        print(f"{search.space.describe(arch)[:64]:<64} {shared:7.4f} {alone:7.4f}")
    shared, alone = [r["shared"] for r in rows], [r["standalone"] for r in rows]
    tau, tau_p = stats.kendalltau(shared, alone)
    rho, rho_p = stats.spearmanr(shared, alone)
    print(f"\n4. ranking fidelity over {len(rows)} archs ({metric}, standalone {args.steps} steps): "
          f"Kendall tau {tau:.3f} (p={tau_p:.3g}), Spearman rho {rho:.3f} (p={rho_p:.3g})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"kendall_tau": tau, "spearman_rho": rho, "steps": args.steps, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

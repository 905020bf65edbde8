"""How much does the architecture matter on a task? The spread of standalone accuracy over random architectures.

Draws ``--archs`` architectures uniformly from the configured space, trains
each one standalone from scratch ``--seeds`` times with the ground-truth
recipe (:func:`rlnas.evaluators.standalone.ground_truth`: the retrain recipe,
``--epochs`` epochs, tested on the split no search sees) and reports the 10th,
50th and 90th percentile of the per-architecture means, the spread between the
10th and 90th, the best and the seed-to-seed standard deviation. A search can
only show its worth where that spread is well above the seed noise.

Results are cached per architecture and seed in ``--out/cache.json`` (keyed by
task, space, data split and epochs), so more architectures or seeds train only
what is new; ``--jobs`` trainings run at once, one torch thread each.

    python tools/spread_study.py --archs 30 --out docs/mnist1d/spread +task=mnist1d
    python tools/spread_study.py --archs 30 --out docs/mnist1d/spread --readme README.md +task=mnist1d
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools._common import load_config  # noqa: E402
from tools.rank_study import standalone_key  # noqa: E402


def _train(job: tuple[str, tuple[int, ...], int, int]) -> tuple[tuple[int, ...], int, float]:
    """One standalone training in a worker process: (arch, seed, test metric)."""
    import torch

    from rlnas.evaluators.standalone import ground_truth

    torch.set_num_threads(1)
    cfg_yaml, arch, seed, epochs = job
    result = ground_truth(OmegaConf.create(cfg_yaml), arch, seeds=1, epochs=epochs, device="cpu", first_seed=seed)
    return arch, seed, float(result["values"][0])


def measure(overrides: list[str], archs: int, seeds: int, epochs: int, out: Path, jobs: int,
            sample_seed: int = 1234) -> dict:
    """Trains what the cache lacks; returns the per-architecture results and their summary."""
    from hydra.utils import instantiate

    cfg = load_config(overrides)
    space = instantiate(cfg.space, _convert_="all")
    rng = np.random.default_rng(sample_seed)
    drawn = list(dict.fromkeys(tuple(space.sample(rng)) for _ in range(archs * 4)))[:archs]
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cache.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    key = standalone_key(cfg, epochs)
    table = cache.setdefault(key, {})
    todo = [(a, s) for a in drawn for s in range(seeds) if str(s) not in table.get(",".join(map(str, a)), {})]
    print(f"{len(drawn)} architectures x {seeds} seeds: {len(todo)} trainings to run ({jobs} at once)", flush=True)
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, (arch, seed, value) in enumerate(pool.map(_train, [(cfg_yaml, a, s, epochs) for a, s in todo]), 1):
            table.setdefault(",".join(map(str, arch)), {})[str(seed)] = value
            cache_path.write_text(json.dumps(cache))  # after each training: a stopped study loses one at most
            print(f"  {i}/{len(todo)}: {space.describe(arch)}: {value:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    values = np.array([[table[",".join(map(str, a))][str(s)] for s in range(seeds)] for a in drawn])
    means = values.mean(axis=1)
    p10, p50, p90 = (float(v) for v in np.percentile(means, [10, 50, 90]))
    summary = {"archs": len(drawn), "seeds": seeds, "epochs": epochs, "p10": p10, "median": p50, "p90": p90,
               "spread_p10_p90": p90 - p10, "best": float(means.max()), "worst": float(means.min()),
               "seed_std": float(values.std(axis=1, ddof=1).mean()) if seeds > 1 else float("nan"),
               "overrides": overrides}
    per_arch = [{"arch": list(a), "description": space.describe(a), "values": v.tolist(), "mean": float(m)}
                for a, v, m in zip(drawn, values, means)]
    return {"summary": summary, "archs": per_arch}


def markdown(result: dict, title: str) -> str:
    s = result["summary"]
    noise = "—" if not np.isfinite(s["seed_std"]) else f"{s['seed_std']:.4f}"
    return (f"{title}: {s['archs']} uniformly drawn architectures, {s['seeds']} standalone seed(s) each, "
            f"{s['epochs']} epochs, test split\n\n"
            "| 10th pct | median | 90th pct | spread (90th − 10th) | best | worst | seed-to-seed std |\n"
            "|---|---|---|---|---|---|---|\n"
            f"| {s['p10']:.4f} | {s['median']:.4f} | {s['p90']:.4f} | {s['spread_p10_p90']:.4f} | "
            f"{s['best']:.4f} | {s['worst']:.4f} | {noise} |\n")


def plot(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(result["archs"], key=lambda r: r["mean"])
    means = np.array([r["mean"] for r in rows])
    lows = np.array([min(r["values"]) for r in rows])
    highs = np.array([max(r["values"]) for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    x = np.arange(1, len(rows) + 1)
    ax.errorbar(x, means, yerr=[means - lows, highs - means], fmt="o", ms=3, capsize=2)
    s = result["summary"]
    for value, name in ((s["p10"], "10th pct"), (s["median"], "median"), (s["p90"], "90th pct")):
        ax.axhline(value, ls=":", lw=0.8, c="k")
        ax.text(0.5, value, f" {name} {value:.3f}", va="bottom", fontsize=7)
    ax.set_xlabel("architecture (sorted by mean standalone test accuracy)")
    ax.set_ylabel("standalone test accuracy (seed range)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides naming the task, space and data")
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each standalone training")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--out", type=Path, default=Path("outputs/spread"))
    parser.add_argument("--readme", type=Path, default=None,
                        help="also write the table into this file between '<!-- study:OUT -->' and "
                             "'<!-- /study:OUT -->' (OUT: the --out folder's name)")
    args = parser.parse_args(argv)
    for name in ("archs", "seeds", "epochs", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    result = measure(args.overrides, args.archs, args.seeds, args.epochs, args.out, args.jobs)
    title = " ".join(args.overrides) or "default task"
    (args.out / "spread.json").write_text(json.dumps(result, indent=2))
    text = markdown(result, title)
    (args.out / "spread.md").write_text(text)
    plot(result, args.out / "spread.png", title)
    if args.readme is not None:
        from tools.compare_controllers import update_readme

        update_readme(args.readme, args.out.name, text)
    print(text)
    print(f"wrote {args.out}/spread.json, spread.md, spread.png")


if __name__ == "__main__":
    main()

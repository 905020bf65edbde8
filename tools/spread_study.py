"""How much does the architecture matter on a task? The spread of standalone accuracy over random architectures.

Draws ``--archs`` architectures uniformly from the configured space, trains
each one standalone from scratch ``--seeds`` times with the ground-truth
recipe (:func:`rlnas.evaluators.standalone.ground_truth`: the retrain recipe,
``--epochs`` epochs, tested on the split no search sees) and reports the 10th,
50th and 90th percentile of the per-architecture means, the spread between the
10th and 90th, the best and the seed-to-seed standard deviation. A search can
only show its worth where that spread is well above the seed noise.

Results are cached per architecture and seed (keyed by task, space, data
split and epochs) in the format of ``tools/rank_study.py``, which draws the
same architectures: ``--cache`` at a ranking study's ``standalone.json`` shares
the trainings. More architectures or seeds train only what is new; ``--jobs``
architectures train at once, one torch thread each.

    python tools/spread_study.py --archs 30 --out docs/mnist1d/spread +task=mnist1d
    python tools/spread_study.py --archs 50 --seeds 3 --out docs/mnist1d/spread \\
        --cache docs/mnist1d/ranking/standalone.json --readme docs/results.md +task=mnist1d
    python tools/spread_study.py --archs 30 --seeds 2 --out docs/cluttered_digits/spread \\
        --readme docs/results.md --block spread_cluttered +task=cluttered_digits
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.utils import save_figure, write_text_atomic
from tools._common import job_map, load_config, run_tool, standalone_recipe_of  # noqa: E402
from tools.rank_study import STANDALONE_FIELDS, standalone_key, standalone_tables  # noqa: E402


def _train(job: tuple[str, tuple[int, ...], int, int, int]) -> tuple[tuple[int, ...], dict]:
    """The missing seeds of one architecture, in a worker process: its :func:`ground_truth` result."""
    import torch

    from rlnas.evaluators.standalone import ground_truth

    torch.set_num_threads(1)
    cfg_yaml, arch, first, seeds, epochs = job
    return arch, ground_truth(
        OmegaConf.create(cfg_yaml), arch, seeds=seeds - first, epochs=epochs, device="cpu", first_seed=first
    )


def measure(
    overrides: list[str], archs: int, seeds: int, epochs: int, cache: Path, jobs: int, sample_seed: int = 1234
) -> dict:
    """Trains what the cache lacks; returns the per-architecture results and their summary.

    The cache is ``tools/rank_study.py``'s (same architectures for the same
    ``sample_seed``, same format), so a ranking study on the task reuses these trainings.
    """
    from hydra.utils import instantiate

    from rlnas.utils import write_json_atomic

    cfg = load_config(overrides, needs_task=True, check=True)
    space = instantiate(cfg.space, _convert_="all")
    rng = np.random.default_rng(sample_seed)
    drawn: list[tuple[int, ...]] = []
    for _ in range(100 * archs):  # the drawing of tools/rank_study.py
        if len(drawn) == archs:
            break
        arch = tuple(space.sample(rng))
        if arch not in drawn:
            drawn.append(arch)
    cache.parent.mkdir(parents=True, exist_ok=True)
    stored, tables = standalone_tables(cache, standalone_key(cfg, epochs), standalone_recipe_of(cfg, epochs))

    def done(arch: tuple[int, ...]) -> int:
        return min(len(t.get(str(list(arch)), [])) for t in tables.values())

    todo = [(a, done(a)) for a in drawn if done(a) < seeds]
    print(
        f"{len(drawn)} architectures x {seeds} seeds: {sum(seeds - f for _, f in todo)} trainings to run "
        f"({jobs} architectures at once)",
        flush=True,
    )
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    start = time.perf_counter()
    work = [(cfg_yaml, a, first, seeds, epochs) for a, first in todo]
    with job_map(jobs) as run_all:
        runs = run_all(_train, work)
        for i, ((arch, result), (_, first)) in enumerate(zip(runs, todo), 1):
            for field, result_key in STANDALONE_FIELDS.items():
                tables[field][str(list(arch))] = tables[field].get(str(list(arch)), [])[:first] + result[result_key]
            write_json_atomic(cache, stored)  # after each architecture: a stopped study loses little
            print(
                f"  {i}/{len(todo)}: {space.describe(arch)}: {np.mean(result['values']):.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    values = np.array([tables["test"][str(list(a))][:seeds] for a in drawn])
    val_first = np.array([tables["val"][str(list(a))][0] for a in drawn])
    means = values.mean(axis=1)
    p10, p50, p90 = (float(v) for v in np.percentile(means, [10, 50, 90]))
    summary = {
        "archs": len(drawn),
        "seeds": seeds,
        "epochs": epochs,
        "p10": p10,
        "median": p50,
        "p90": p90,
        "spread_p10_p90": p90 - p10,
        "best": float(means.max()),
        "worst": float(means.min()),
        "seed_std": float(values.std(axis=1, ddof=1).mean()) if seeds > 1 else float("nan"),
        "overrides": overrides,
    }
    per_arch = [
        {"arch": list(a), "description": space.describe(a), "values": v.tolist(), "mean": float(m)}
        for a, v, m in zip(drawn, values, means)
    ]
    return {"summary": summary, "archs": per_arch, "best_of": best_of_n(val_first, means)}


def best_of_n(
    val: np.ndarray, test: np.ndarray, sizes: tuple[int, ...] = (1, 2, 5, 10, 20), draws: int = 4000, seed: int = 0
) -> list[dict]:
    """Random search without weight sharing: N architectures trained once, the best by validation kept.

    For each N, ``draws`` sets of N distinct architectures are drawn from the
    study's pool; each set's pick is the one with the best validation metric of
    its first training, and what it is worth is its test mean over the study's
    seeds. With a search's wall time T and one training's t, N = T / t is what
    the same compute buys without a supernet.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for n in (k for k in sizes if k <= len(val)):
        picks = [
            test[idx[np.argmax(val[idx])]] for idx in (rng.choice(len(val), n, replace=False) for _ in range(draws))
        ]
        rows.append({"n": n, "mean": float(np.mean(picks)), "std": float(np.std(picks))})
    return rows


def markdown(result: dict, title: str) -> str:
    s = result["summary"]
    noise = "—" if not np.isfinite(s["seed_std"]) else f"{s['seed_std']:.4f}"
    text = (
        f"{title}: {s['archs']} uniformly drawn architectures, {s['seeds']} standalone seed(s) each, "
        f"{s['epochs']} epochs, test split\n\n"
        "| 10th pct | median | 90th pct | spread (90th − 10th) | best | worst | seed-to-seed std |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {s['p10']:.4f} | {s['median']:.4f} | {s['p90']:.4f} | {s['spread_p10_p90']:.4f} | "
        f"{s['best']:.4f} | {s['worst']:.4f} | {noise} |\n"
    )
    if result.get("best_of"):
        text += (
            "\nRandom search without weight sharing (N architectures trained once, the best by validation "
            "kept; its test mean, over 4,000 draws from the pool):\n\n"
            "| N | " + " | ".join(str(r["n"]) for r in result["best_of"]) + " |\n"
            "|---|" + "---|" * len(result["best_of"]) + "\n"
            "| test | " + " | ".join(f"{r['mean']:.4f} ± {r['std']:.4f}" for r in result["best_of"]) + " |\n"
        )
    return text


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
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides naming the task, space and data")
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each standalone training")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--out", type=Path, default=Path("outputs/spread"))
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="standalone results (default: OUT/standalone.json); tools/rank_study.py's "
        "OUT/standalone.json shares them with a ranking study of the same task",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also write the table into this file between '<!-- study:BLOCK -->' and '<!-- /study:BLOCK -->'",
    )
    parser.add_argument("--block", default=None, help="the block's name in --readme (default: the --out folder's name)")
    args = parser.parse_args(argv)
    for name in ("archs", "seeds", "epochs", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.readme is not None:
        from tools.compare_controllers import check_readme

        check_readme(args.readme, args.block or args.out.name)
    args.out.mkdir(parents=True, exist_ok=True)
    result = measure(
        args.overrides, args.archs, args.seeds, args.epochs, args.cache or args.out / "standalone.json", args.jobs
    )
    title = " ".join(args.overrides) or "default task"
    write_text_atomic(args.out / "spread.json", json.dumps(result, indent=2))
    text = markdown(result, title)
    write_text_atomic(args.out / "spread.md", text)
    plot(result, args.out / "spread.png", title)
    if args.readme is not None:
        from tools.compare_controllers import update_readme

        update_readme(args.readme, args.block or args.out.name, text)
    print(text)
    print(f"wrote {args.out}/spread.json, spread.md, spread.png")


if __name__ == "__main__":
    run_tool(main)

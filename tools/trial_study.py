"""Trial searches compared by ground truth, and the speed-up of concurrent trials.

Each controller searches ``--seeds`` times with ``+trials=NAME`` (``--trials``; every
candidate trained on its own on Ray Tune, ``--concurrent`` at a time, ASHA);
each pick is then trained standalone ``--truth-seeds`` times with the retrain
recipe for ``--truth-epochs`` and tested on the split no search saw. Runs that
finished are reused (their ``best_arch.json``), so the study can be stopped
and started again. Writes ``table.md``, ``table.json`` and ``curves.png``
(best validation reward so far vs trials) to ``--out``.

``--finalists K`` instead looks into the stored searches: the K best trials
of each (by validation reward, among those trained fully) are trained
standalone ``--truth-seeds`` times and tested, and the table says what each
search's K finalists are worth by ground truth: their mean, the one a
re-evaluation on the validation split would pick (best mean validation
accuracy over those trainings) and the best of them (what no selection rule
can beat). Whether a controller's candidates are better than random
search's, or only its pick is not, shows there. Cached per run in
``finalists.json``; writes ``finalists.md`` and ``finalists.json`` to ``--out``.

``--speedup N`` instead runs one random search of N trials (every trial trained
fully) with 1 and then with 2 trials at a time, one after the other in this
process, and prints the wall-time ratio.

Examples::

    python tools/trial_study.py --task mnist1d --controllers random enas evolution --seeds 5 \\
        --out docs/mnist1d/trials --readme docs/results.md -- data_seed=0
    python tools/trial_study.py --task mnist1d --trials joint --out docs/mnist1d/trials_hparams \\
        --readme docs/results.md --block trials_hparams -- data_seed=0
    python tools/trial_study.py --task mnist1d --trials joint --controllers random enas evolution maskable_ppo \\
        --finalists 5 --out docs/mnist1d/trials_hparams --readme docs/results.md --block trials_finalists
    python tools/trial_study.py --task mnist1d --speedup 20 --out docs/mnist1d/trials --readme README.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.utils import save_figure, write_json_atomic, write_text_atomic
from tools._common import (  # noqa: E402
    check_stored_config,
    load_config,
    read_json,
    refuse_keys_of_options,
    run_tool,
    standalone_recipe_of,
)
from tools.compare_controllers import ALL, check_readme, holm, update_readme, welch_p  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def search(
    task: str, controller: str, seed: int, run_dir: Path, overrides: list[str], trials: str = "default"
) -> float:
    """One trial search in its own process (its own local Ray); returns its wall time in seconds.

    A finished search in ``run_dir`` is reused when the config it was made with
    is the one this study composes now, in what a trial search reads.
    """
    args = [f"+task={task}", f"+trials={trials}", f"controller={controller}", f"seed={seed}", "ground_truth.random=0"]
    if (run_dir / "best_arch.json").is_file():
        try:
            check_stored_config(run_dir, load_config([*args, *overrides]), view=trial_view)
        except ValueError as err:
            raise SystemExit(f"trial_study.py: error: {err}") from None
        return float(json.loads((run_dir / "summary.json").read_text())["seconds"])
    if (run_dir / "config.yaml").is_file():  # a study stopped in the middle of this search: continue it
        args = [f"resume={run_dir}"]
    else:
        args += [*overrides, f"hydra.run.dir={run_dir}"]
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "rlnas", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _, stderr = child.communicate()
    except KeyboardInterrupt:
        # The search stops as on Ctrl-C (its trials in flight ended, its state kept); run again to continue it.
        child.send_signal(signal.SIGTERM)
        try:
            child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
        raise
    if child.returncode == 130:
        raise KeyboardInterrupt
    if child.returncode != 0:
        raise SystemExit(f"trial_study.py: {controller} seed {seed} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started


def trial_view(cfg: Any) -> dict[str, Any]:
    """What a trial search reads of a config, resolved: all of it but ``search:``, of which only the training
    recipe's values (its nulls come from there; the supernet's settings do not touch a trial), and ``trials:``
    as the settings it makes (``grace_period: null`` is the 5 it stands for)."""
    from dataclasses import asdict

    from rlnas.search.checkpoint import config_fingerprint
    from rlnas.trials.settings import trial_settings

    tree = json.loads(config_fingerprint(cfg))
    tree.pop("search", None)
    tree["recipe"] = standalone_recipe_of(cfg, 1)
    tree["trials"] = json.loads(json.dumps(asdict(trial_settings(cfg)), default=str))
    return tree


def truth(run_dir: Path, seeds: int, epochs: int) -> dict:
    """The pick of ``run_dir`` trained standalone ``seeds`` times and tested (cached in ground_truth.json)."""
    cache = run_dir / "ground_truth.json"
    cached = read_json(cache)
    if cached is not None:
        return cached
    from rlnas.evaluators.standalone import ground_truth
    from rlnas.utils.trust import load_run_config

    cfg = load_run_config(run_dir / "config.yaml")
    best = json.loads((run_dir / "best_arch.json").read_text())
    arch, settings = best["arch"], best.get("train")
    result = {"arch": arch, "train": settings, **ground_truth(cfg, arch, seeds, epochs, "cpu", settings=settings)}
    write_text_atomic(cache, json.dumps(result, indent=2))
    return result


def _given(overrides: list[str]) -> str:
    """The study's own overrides as a table's title names them (budget and concurrency are said apart)."""
    return " ".join(o for o in overrides if not o.startswith(("trials.budget=", "trials.concurrent=")))


def finalists(run_dir: Path, k: int, seeds: int, epochs: int) -> list[dict]:
    """The ``k`` best fully trained trials of ``run_dir``, each trained standalone ``seeds`` times (cached).

    Returns:
        Per finalist, best first: ``index``, ``reward`` (its trial's), ``arch`` and ``train`` (the
        architecture and its training settings), ``test`` and ``val`` (one value per training).
    """
    cache = run_dir / "finalists.json"
    cached = read_json(cache)
    if cached is not None and cached["k"] >= k and (cached["seeds"], cached["epochs"]) == (seeds, epochs):
        return cached["candidates"][:k]
    import torch

    from rlnas.evaluators.standalone import ground_truth
    from rlnas.spaces.training import TrainingSpace
    from rlnas.tasks.training import search_parts
    from rlnas.trials.trainable import trial_space
    from rlnas.utils.trust import load_run_config

    cfg = load_run_config(run_dir / "config.yaml")
    space = trial_space(cfg)
    with (run_dir / "trials.jsonl").open() as f:
        records = [json.loads(line) for line in f if line.strip()]
    # The pick rule's order (rlnas.trials.run.pick): best reward, the earlier trial on a tie.
    top = sorted((r for r in records if r["status"] == "completed"), key=lambda r: (-r["reward"], r["index"]))[:k]
    base_space = space.base if isinstance(space, TrainingSpace) else space
    _, task, data = search_parts(cfg, torch.device("cpu"))
    candidates = []
    for record in top:
        arch = tuple(record["arch"])
        base, settings = space.split(arch) if isinstance(space, TrainingSpace) else (arch, {})
        found = ground_truth(cfg, base, seeds, epochs, "cpu", parts=(base_space, task, data), settings=settings)
        candidates.append(
            {
                "index": record["index"],
                "reward": record["reward"],
                "arch": list(base),
                "train": settings,
                "test": found["values"],
                "val": found["val_values"],
            }
        )
    write_text_atomic(cache, json.dumps({"k": k, "seeds": seeds, "epochs": epochs, "candidates": candidates}, indent=2))
    return candidates


def claim_runs(out: Path, task: str, trials: str, overrides: list[str]) -> None:
    """Keeps ``out/runs`` to one study: another task, trials config or overrides there is refused.

    Runs are reused by name (controller and seed), so a study with other
    settings would otherwise continue or reuse these searches and mix two
    studies in one table. The settings are kept in ``runs/study.json``.
    """
    marker = out / "runs" / "study.json"
    given = {"task": task, "trials": trials, "overrides": overrides}
    stored = read_json(marker)
    if stored is None:
        table = read_json(out / "table.json")  # a study stored before the marker was written
        if table is not None:
            stored = {
                "task": table["args"]["task"],
                "trials": table["args"].get("trials") or "default",
                "overrides": table["overrides"],
            }
    if stored is not None and stored != given:

        def said(s: dict) -> str:
            return " ".join([f"+task={s['task']}", f"+trials={s['trials']}", *s["overrides"]])

        raise SystemExit(
            f"trial_study.py: error: {out} holds the runs of another study ({said(stored)}), not of "
            f"{said(given)}; give another --out, or that study's settings to continue it"
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps(given, indent=2) + "\n")


def finalist_study(args: argparse.Namespace, overrides: list[str]) -> None:
    """What the stored searches' top ``--finalists`` are worth by ground truth (see the module docstring)."""
    out = Path(args.out)
    rows = []
    for controller in args.controllers:
        kinds: dict[str, list[float]] = {"pick": [], "mean": [], "repick": [], "best": []}
        for seed in range(args.seeds):
            run_dir = out / "runs" / f"{controller}_seed{seed}"
            if not (run_dir / "best_arch.json").is_file():
                raise SystemExit(f"trial_study.py: {run_dir} holds no finished search; run the study first")
            print(f"{controller} seed {seed}: finalists ...", flush=True)
            found = finalists(run_dir, args.finalists, args.truth_seeds, args.truth_epochs)
            tests = [float(np.mean(c["test"])) for c in found]
            kinds["pick"].append(tests[0])
            kinds["mean"].append(float(np.mean(tests)))
            kinds["repick"].append(tests[int(np.argmax([np.mean(c["val"]) for c in found]))])
            kinds["best"].append(max(tests))
        rows.append({"controller": controller, **kinds})
    reference = next(r for r in rows if r["controller"] == "random")
    tests = [(r, kind) for r in rows if r is not reference for kind in ("mean", "repick", "best")]
    pvalues = [welch_p(r[kind], reference[kind]) for r, kind in tests]
    for (row, kind), p, adj in zip(tests, pvalues, holm(pvalues)):
        row[f"p_{kind}"], row[f"p_{kind}_holm"] = p, adj
    write_text_atomic(out / "finalists.json", json.dumps({"args": vars(args), "rows": rows}, indent=2))
    k = args.finalists
    given = _given(overrides)

    def cell(row: dict, kind: str) -> str:
        values = row[kind]
        text = f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.4f}"
        if f"p_{kind}" in row and np.isfinite(row[f"p_{kind}"]):
            text += f" (p {row[f'p_{kind}']:.2g}, Holm {row[f'p_{kind}_holm']:.2g})"
        return text

    lines = [
        f"+task={args.task} +trials={args.trials}{' ' + given if given else ''}: the {k} best fully trained "
        f"trials of each of {args.seeds} searches per controller, each trained standalone {args.truth_seeds} "
        f"times ({args.truth_epochs} epochs); test split",
        "",
        f"| controller | the pick | mean of the {k} | re-picked by validation | best of the {k} |",
        "|---|---|---|---|---|",
        *(
            f"| {r['controller']} | {cell(r, 'pick')} | {cell(r, 'mean')} | {cell(r, 'repick')} | {cell(r, 'best')} |"
            for r in rows
        ),
        "",
        f"Re-picked: the finalist with the best mean validation accuracy over its {args.truth_seeds} trainings. "
        "Welch p-values (two-sided) against random search, Holm-adjusted over the table's tests.",
        "",
    ]
    text = "\n".join(lines)
    write_text_atomic(out / "finalists.md", text)
    print(text)
    if args.readme:
        update_readme(Path(args.readme), args.block, text)


def first_and_last(run_dir: Path, n: int = 20) -> tuple[float, float]:
    """Mean reward (at the fidelity each reached) of the first and the last ``n`` trials proposed.

    What the controller learnt shows here whatever the pick: a policy that
    moved proposes better candidates late than early; random search does not.
    """
    with (run_dir / "trials.jsonl").open() as f:
        records = sorted((json.loads(line) for line in f if line.strip()), key=lambda r: r["index"])
    rewards = [float(r["reward"]) for r in records if r["reward"] is not None]
    return float(np.mean(rewards[:n])), float(np.mean(rewards[-n:]))


def curve(run_dir: Path) -> list[float]:
    """Best validation reward so far after each trial (in the order they finished)."""
    with (run_dir / "history.csv").open() as f:
        return [float(row["best_so_far"]) for row in csv.DictReader(f)]


def study(args: argparse.Namespace, overrides: list[str]) -> None:
    out = Path(args.out)
    rows, curves = [], {}
    for controller in args.controllers:
        values, picks, walls, trial_s, counts, early_late = [], [], [], [], [], []
        for seed in range(args.seeds):
            run_dir = out / "runs" / f"{controller}_seed{seed}"
            print(f"{controller} seed {seed} ...", flush=True)
            search(args.task, controller, seed, run_dir, overrides, args.trials)
            summary = json.loads((run_dir / "summary.json").read_text())
            found = truth(run_dir, args.truth_seeds, args.truth_epochs)
            values.append(found["mean"])
            picks.append(json.loads((run_dir / "best_arch.json").read_text())["reward"])
            walls.append(summary["seconds"])
            trial_s.append(summary["mean_trial_seconds"])
            counts.append([summary[f"trials_{k}"] for k in ("completed", "stopped", "failed")])
            early_late.append(first_and_last(run_dir))
            curves.setdefault(controller, []).append(curve(run_dir))
        rows.append(
            {
                "controller": controller,
                "truth": values,
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "pick_val": float(np.mean(picks)),
                "wall_s": float(np.mean(walls)),
                "trial_s": float(np.mean(trial_s)),
                "completed_stopped_failed": np.mean(counts, axis=0).tolist(),
                "first_last_20": np.mean(early_late, axis=0).tolist(),
            }
        )
    reference = next(r for r in rows if r["controller"] == "random")
    pvalues = [welch_p(r["truth"], reference["truth"]) if r is not reference else float("nan") for r in rows]
    for row, p, adj in zip(rows, pvalues, holm(pvalues)):
        row["p_vs_random"], row["p_vs_random_holm"] = p, adj
    write_json_atomic(out / "table.json", {"overrides": overrides, "args": vars(args), "rows": rows})
    text = markdown(rows, args, overrides)
    write_text_atomic(out / "table.md", text)
    plot(curves, out / "curves.png", args)
    print(text)
    if args.readme:
        update_readme(Path(args.readme), args.block, text)


def markdown(rows: list[dict], args: argparse.Namespace, overrides: list[str]) -> str:
    given = _given(overrides)
    lines = [
        f"+task={args.task} +trials={args.trials}{' ' + given if given else ''}: {args.seeds} searches per controller, "
        f"{args.budget} trials each, "
        f"{args.concurrent} at a time; ground truth = the pick trained standalone {args.truth_seeds} times "
        f"({args.truth_epochs} epochs), test split",
        "",
        "| controller | ground truth (test) | p vs random (Holm) | pick's val reward | mean reward, first 20 → "
        "last 20 trials | trials trained fully / stopped early / failed | s per trial | wall time per search |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = "—" if not np.isfinite(r["p_vs_random"]) else f"{r['p_vs_random']:.2g} ({r['p_vs_random_holm']:.2g})"
        c = r["completed_stopped_failed"]
        lines.append(
            f"| {r['controller']} | {r['mean']:.4f} ± {r['std']:.4f} | {p} | {r['pick_val']:.4f} | "
            f"{r['first_last_20'][0]:.3f} → {r['first_last_20'][1]:.3f} | "
            f"{c[0]:.1f} / {c[1]:.1f} / {c[2]:.1f} | {r['trial_s']:.1f} | {r['wall_s'] / 60:.1f} min |"
        )
    lines += [
        "",
        "Welch p-values (two-sided) against random search, Holm-adjusted over the table's tests. Mean reward: "
        "validation reward at the epoch each trial reached (ASHA stops the weaker ones early), trials in the "
        "order they were proposed.",
        "",
    ]
    return "\n".join(lines)


def plot(curves: dict[str, list[list[float]]], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for controller, runs in curves.items():
        n = min(len(r) for r in runs)
        values = np.array([r[:n] for r in runs])
        mean, std = values.mean(axis=0), values.std(axis=0)
        x = np.arange(1, n + 1)
        ax.plot(x, mean, label=controller)
        ax.fill_between(x, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("trials finished")
    ax.set_ylabel("best validation reward so far")
    ax.set_title(f"{args.task}: trial searches, {args.seeds} seeds (mean ± std)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def speedup(args: argparse.Namespace, overrides: list[str]) -> None:
    """One random search of N fully trained trials with 1, then 2 trials at a time: the wall-time ratio."""
    out = Path(args.out) / "speedup"
    walls = {}
    for concurrent in (1, 2):
        run_dir = out / "runs" / f"concurrent{concurrent}"
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        walls[concurrent] = search(
            args.task,
            "random",
            0,
            run_dir,
            [*overrides, f"trials.budget={args.speedup}", "trials.scheduler=none", f"trials.concurrent={concurrent}"],
            args.trials,
        )
    ratio = walls[1] / walls[2]
    line = (
        f"{args.speedup} trials of {args.task} trained fully, one after the other in one run of this tool "
        f"({os.cpu_count()} CPUs): 1 at a time {walls[1]:.0f} s, 2 at a time {walls[2]:.0f} s, speed-up {ratio:.2f}x"
    )
    write_text_atomic(out / "speedup.txt", line + "\n")
    print(line)
    if args.readme:
        update_readme(Path(args.readme), "trials-speedup", line + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--trials", default="default", help="the trials config (conf/trials/NAME.yaml), e.g. joint")
    parser.add_argument("--controllers", nargs="+", default=["random", "enas", "evolution"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--truth-seeds", type=int, default=3)
    parser.add_argument("--truth-epochs", type=int, default=20)
    parser.add_argument("--out", default="docs/mnist1d/trials")
    parser.add_argument(
        "--readme", default=None, help="a file with a <!-- study:trials --> (or, --speedup, trials-speedup) block"
    )
    parser.add_argument("--block", default="trials", help="the --readme block the table goes to")
    parser.add_argument("--speedup", type=int, default=0, help="trials of the speed-up measurement (0: the study)")
    parser.add_argument(
        "--finalists", type=int, default=0, help="the stored searches' K best trials by ground truth (0: the study)"
    )
    args = parser.parse_args(argv)
    for option in ("seeds", "budget", "concurrent", "truth_seeds", "truth_epochs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    for option in ("speedup", "finalists"):
        if getattr(args, option) < 0:
            parser.error(f"--{option} must be >= 0, got {getattr(args, option)}")
    if args.speedup and args.finalists:
        parser.error("--speedup and --finalists are separate measurements; give one")
    if not (ROOT / "conf" / "trials" / f"{args.trials}.yaml").is_file():
        parser.error(f"--trials {args.trials}: no conf/trials/{args.trials}.yaml")
    unknown = [c for c in args.controllers if c not in ALL]
    if unknown:
        parser.error(f"--controllers {unknown[0]} is unknown; allowed: {ALL} (a trial search has no supernet to train)")
    if "random" not in args.controllers and not args.speedup:
        parser.error("--controllers must include random (the reference)")
    if args.readme:
        check_readme(Path(args.readme), "trials-speedup" if args.speedup else args.block)
    options = {"seed": "--seeds", "trials.budget": "--budget", "trials.concurrent": "--concurrent"}
    options.update({"hydra.run.dir": "--out", "task": "--task", "trials": "--trials", "controller": "--controllers"})
    refuse_keys_of_options(overrides, options)
    overrides = [*overrides, f"trials.budget={args.budget}", f"trials.concurrent={args.concurrent}"]
    from rlnas.config import check_overrides, validate_config
    from rlnas.trials.run import check_training_settings

    for i, controller in enumerate(args.controllers):  # a bad task or setting stopped the first search, in two lines
        run = [f"+task={args.task}", f"+trials={args.trials}", f"controller={controller}", *overrides]
        try:
            check_overrides(run)
            cfg = load_config(run)
            validate_config(cfg)
            if i == 0:  # the task and its training settings are every controller's
                check_training_settings(cfg)
        except ValueError as err:
            parser.error(str(err))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.speedup:
        speedup(args, overrides)
        return
    claim_runs(Path(args.out), args.task, args.trials, overrides)
    if args.finalists:
        finalist_study(args, overrides)
    else:
        study(args, overrides)


if __name__ == "__main__":
    run_tool(main)

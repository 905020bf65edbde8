"""Do shared weights rank architectures the way standalone training does, and how well could they?

Draws ``--archs`` architectures uniformly from the configured space, trains
each one standalone from scratch ``--seeds`` times (the ground-truth recipe of
:mod:`rlnas.evaluators.standalone`: test split the search never sees) and
caches those results, since they do not depend on the supernet. Then runs the
search given by the overrides (or loads ``--run-dir``) and scores the same
architectures on the whole validation split with its shared weights, once
with the statistics of the scored images (the supernet's BatchNorm keeps no
running statistics) and once per ``--calibrate`` size with per-architecture
BatchNorm statistics from that many training images.

Reported per supernet variant (``--label``; earlier variants in ``--out`` are
kept, re-ranked against the current standalone mean, and shown beside it):

- noise ceiling: Kendall tau between two standalone seeds (mean over pairs);
  no scorer can be expected to agree with one training run better than a
  second training run does;
- Kendall tau and Spearman rho of the supernet's scores against the
  standalone mean;
- top-10 % precision: of the supernet's best 10 %, the share that is in the
  standalone best 10 % (ties at the boundary count as in), and the mean
  standalone metric of the supernet's best 10 % (what retraining them gives);
- the validation ceiling: the same standalone networks scored on the
  validation split, where a search scores, ranked against the test mean;
- every scoring also ranked together with SynFlow of the untrained network
  (:mod:`rlnas.evaluators.proxies`, the search's ``final_proxy``), and SynFlow alone.

    .venv/bin/python tools/rank_study.py --label default
    .venv/bin/python tools/rank_study.py --label warmup15 search.warmup_epochs=15
    .venv/bin/python tools/rank_study.py --label mine --run-dir outputs/runs/DATE/TIME
    .venv/bin/python tools/rank_study.py --label fewshot@0 --few-shot 0
    .venv/bin/python tools/rank_study.py --label finetune@0 --finetune 40 --loss --run-dir outputs/runs/DATE/TIME
    .venv/bin/python tools/rank_study.py --label swa@3 --average-epochs 10 --loss seed=3 data_seed=0
    .venv/bin/python tools/rank_study.py --report-only data_seed=0    # re-rank what is stored, no search

``--loss`` also ranks by the validation loss; ``--average-epochs N`` also
scores with the weights averaged over the last N epochs of the search;
``--few-shot D`` also scores a few-shot split (Zhao et al., 2021) of the
trained supernet on decision ``D`` beside a one-shot control given as many
extra training steps; ``--finetune K`` also scores each architecture after K
steps of training on its own path from the shared weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import check_supernet_run, load_config, load_run, read_json, run_tool, standalone_recipe_of  # noqa: E402

from rlnas.utils import save_figure, write_text_atomic


def standalone_key(cfg: Any, epochs: int) -> str:
    """Identifies the standalone results: task, data split, space and recipe (not the search settings)."""
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("task", "space")}
    from rlnas.utils import data_seed

    parts.update(seed=data_seed(cfg), epochs=epochs)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


#: What the standalone cache holds per architecture and seed: the result of ground_truth it comes from.
STANDALONE_FIELDS = {"test": "values", "val": "val_values", "val_loss": "val_losses"}


def standalone_tables(
    cache: Path, key: str, recipe: dict[str, Any] | None = None
) -> tuple[dict, dict[str, dict[str, list[float]]]]:
    """The standalone cache, and in it the tables of one study (field -> arch -> per-seed values; new ones empty).

    ``recipe`` (:func:`tools._common.standalone_recipe_of`; not in
    :func:`standalone_key`, its nulls come from ``search:``) is kept beside the
    tables; a cache written before it was kept takes the one given.

    Raises:
        SystemExit: Naming the file, when it is not a cache of this format, or
            when its results were trained with another recipe (it is left as it is).
    """
    from rlnas.search.checkpoint import first_difference
    from rlnas.utils import is_number

    stored = read_json(cache, {})
    refuse = f"{Path(sys.argv[0]).name}: error: {cache}: not a standalone cache of these tools"
    if not isinstance(stored, dict):
        raise SystemExit(f"{refuse} (a JSON object); move it away or name another file")
    if recipe is not None:
        kept = stored.setdefault(f"{key}/recipe", recipe)
        found = first_difference(kept, recipe) if isinstance(kept, dict) else ("recipe", kept, recipe)
        if found:
            setting, was, now = found
            raise SystemExit(
                f"{Path(sys.argv[0]).name}: error: {cache}: its standalone runs of this study were trained with "
                f"train.{setting}={was!r}, the recipe is now {now!r} (a default changed since); move it away or "
                "name another file"
            )
    tables = {f: stored.setdefault(key if f == "test" else f"{key}/{f}", {}) for f in STANDALONE_FIELDS}
    for table in tables.values():
        rows = table.values() if isinstance(table, dict) else [None]
        if not all(isinstance(v, list) and all(is_number(x) for x in v) for v in rows):
            what = f"architecture -> per-seed numbers under {key!r}"
            raise SystemExit(f"{refuse} ({what}); move it away or name another file")
    return stored, tables


def standalone_results(cfg: Any, archs: list[tuple[int, ...]], seeds: int, epochs: int, cache: Path) -> dict:
    """field -> arch -> values of seeds 0 .. seeds-1 (test metric; val metric and loss of the same networks).

    The cache holds each architecture's per-seed results in seed order, one
    table per field (``STANDALONE_FIELDS``), so a study with more seeds trains
    only the new ones; it is saved after each arch.
    """
    from tqdm import tqdm

    from rlnas.evaluators.standalone import ground_truth
    from rlnas.utils import write_json_atomic

    stored, tables = standalone_tables(cache, standalone_key(cfg, epochs), standalone_recipe_of(cfg, epochs))

    def done(arch: tuple[int, ...]) -> int:  # seeds every field has
        return min(len(t.get(str(list(arch)), [])) for t in tables.values())

    todo = [a for a in archs if done(a) < seeds]
    print(f"standalone: {sum(seeds - done(a) for a in todo)} trainings to run, the rest cached")
    for arch in tqdm(todo, desc="standalone", unit="arch", disable=None):
        first = done(arch)
        new = ground_truth(cfg, arch, seeds=seeds - first, epochs=epochs, device="cpu", first_seed=first)
        for field, result_key in STANDALONE_FIELDS.items():
            tables[field][str(list(arch))] = tables[field].get(str(list(arch)), [])[:first] + new[result_key]
        write_json_atomic(cache, stored)
    return {f: {a: t[str(list(a))][:seeds] for a in archs} for f, t in tables.items()}


def top_precision(scores: np.ndarray, truth: np.ndarray, fraction: float = 0.1) -> float:
    """Share of the ``fraction`` best by ``scores`` that are among the ``fraction`` best by ``truth``."""
    k = max(1, round(fraction * len(scores)))
    chosen = np.argsort(-scores, kind="stable")[:k]
    threshold = np.sort(truth)[::-1][k - 1]
    return float(np.mean(truth[chosen] >= threshold))


def noise_ceiling(values: np.ndarray) -> float:
    """Mean Kendall tau between two standalone seeds, over all pairs of seeds (columns of ``values``)."""
    n = values.shape[1]
    taus = [stats.kendalltau(values[:, i], values[:, j])[0] for i in range(n) for j in range(i + 1, n)]
    return float(np.nanmean(taus))


def mean_ceiling(tau_pair: float, seeds: int) -> float:
    """Kendall tau a noise-free ranking can expect against the mean of ``seeds`` standalone runs.

    The seed-vs-seed tau bounds agreement with *one* run; the mean of several
    runs is less noisy. Under a normal model of seed noise, tau converts to a
    correlation r = sin(pi tau / 2) (Greiner's relation, Kendall 1948), the mean
    of k runs has reliability R = k r / (1 + (k - 1) r) (Spearman-Brown), a
    noise-free score correlates with it as sqrt(R), and that converts back to
    tau = 2 / pi * arcsin(sqrt(R)). An estimate, reported beside the pairwise figure.
    """
    r = math.sin(math.pi * max(0.0, tau_pair) / 2)
    reliability = seeds * r / (1 + (seeds - 1) * r) if r > 0 else 0.0
    return 2 / math.pi * math.asin(math.sqrt(reliability))


def held_out_check(values: np.ndarray) -> tuple[float, float]:
    """(measured, predicted) Kendall tau of one run against the mean of the other runs.

    Checks the normal model behind :func:`mean_ceiling` on the data itself:
    measured over every held-out run, predicted from the pairwise tau as the
    correlation sqrt(r * R_{k-1}) of one run with an independent (k-1)-run mean.
    """
    k = values.shape[1]
    measured = float(
        np.nanmean([stats.kendalltau(values[:, i], np.delete(values, i, axis=1).mean(1))[0] for i in range(k)])
    )
    r = math.sin(math.pi * max(0.0, noise_ceiling(values)) / 2)
    rest = (k - 1) * r / (1 + (k - 2) * r) if r > 0 else 0.0
    return measured, 2 / math.pi * math.asin(math.sqrt(r * rest))


def top_truth(scores: np.ndarray, truth: np.ndarray, fraction: float = 0.1) -> float:
    """Mean truth of the ``fraction`` best by ``scores``: what retraining the scorer's favourites gives."""
    k = max(1, round(fraction * len(scores)))
    return float(np.mean(truth[np.argsort(-scores, kind="stable")[:k]]))


def fidelity(scores: list[float], truth: np.ndarray) -> dict[str, float]:
    s = np.asarray(scores, dtype=float)
    return {
        "kendall_tau": float(stats.kendalltau(s, truth)[0]),
        "spearman_rho": float(stats.spearmanr(s, truth)[0]),
        "top10_precision": top_precision(s, truth),
        "top10_truth": top_truth(s, truth),
    }


def modes_of(variants: list[dict]) -> list[str]:
    """Every scoring of a variant's runs, in the order they first appear (later runs may add some)."""
    return list(dict.fromkeys(m for v in variants for m in v["fidelity"]))


def report(study: dict[str, Any], out: Path) -> str:
    """Markdown table of every stored variant, and ranking.png (one panel per variant's best scorer)."""
    ceiling = study["noise_ceiling"]
    k = study["seeds"]
    ceiling_mean = mean_ceiling(ceiling, k)
    lines = [
        f"{study['archs']} architectures drawn uniformly, each trained standalone {k} times "
        f"({study['epochs']} epochs, {study['metric']} on the test split). Noise ceiling, Kendall tau of one "
        f"standalone run against another: **{ceiling:.3f}**; what a noise-free ranking can expect against the "
        f"mean of {k} runs (Spearman-Brown estimate): **{ceiling_mean:.3f}** (the model checked on the data: one "
        f"run against the mean of the others, tau {study['held_out'][0]:.3f} measured, {study['held_out'][1]:.3f} "
        "predicted). Scores are ranked against the mean.",
        "",
    ]
    val = study.get("val_ceiling")
    if val:
        metric = study["metric"]
        lines += [
            f"A supernet scores on the validation split, not on the test split. The same standalone networks "
            f"scored there (the mean of their {k} runs) rank the architectures against the test mean with Kendall "
            f"tau **{val[metric]['kendall_tau']:.3f}** by {metric} and **{val['-loss']['kendall_tau']:.3f}** by "
            f"-loss (Spearman rho {val[metric]['spearman_rho']:.3f} and {val['-loss']['spearman_rho']:.3f}): what "
            f"a ranker that scores by validation {metric} can expect at best, below the noise-free "
            f"{ceiling_mean:.3f}. The column 'of the val ceiling' is tau divided by the first of these.",
            "",
        ]
    lines += [
        f"| supernet | runs | scored with | Kendall tau | / ceiling of the {k}-run mean | of the val ceiling | "
        f"Spearman rho | top-10 % precision | standalone {study['metric']} of the top 10 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def of_val(tau: float) -> str:
        ceiling_val = val[study["metric"]]["kendall_tau"] if val else 0.0
        return f"{tau / ceiling_val:.2f}" if ceiling_val > 0 else "n/a"

    if "synflow" in study:
        f = fidelity(study["synflow"], np.asarray(study["standalone"], dtype=float).mean(1))
        lines.append(
            f"| none (untrained standalone network) | 1 | SynFlow alone | {f['kendall_tau']:.3f} | "
            f"{f['kendall_tau'] / ceiling_mean:.2f} | {of_val(f['kendall_tau'])} | {f['spearman_rho']:.3f} | "
            f"{f['top10_precision']:.2f} | {f['top10_truth']:.4f} |"
        )
    # Labels NAME@SEED are runs of one variant: mean ± std over them.
    groups: dict[str, list[dict]] = {}
    for label, variant in study["variants"].items():
        groups.setdefault(label.split("@")[0], []).append(variant)

    def cell(values: list[float], digits: int) -> str:
        if len(values) == 1:
            return f"{values[0]:.{digits}f}"
        return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"

    for name, variants in groups.items():
        for mode in modes_of(variants):
            fs = [v["fidelity"][mode] for v in variants if mode in v["fidelity"]]
            taus = [f["kendall_tau"] for f in fs]
            of_ceiling = f"{np.mean(taus) / ceiling_mean:.2f}" if ceiling_mean > 0 else "n/a"
            lines.append(
                f"| {name} | {len(fs)} | {mode} | {cell(taus, 3)} | {of_ceiling} | "
                f"{of_val(float(np.mean(taus)))} | "
                f"{cell([f['spearman_rho'] for f in fs], 3)} | {cell([f['top10_precision'] for f in fs], 2)} | "
                f"{cell([f['top10_truth'] for f in fs], 4)} |"
            )
    gains, top, best = proxy_gains(study), proxy_gains(study, "top10_precision"), proxy_gains(study, "top10_truth")
    if len(gains) >= 2:

        def p(x: list[float]) -> float:
            return stats.wilcoxon(x).pvalue if np.any(np.asarray(x) != 0) else 1.0

        lines += [
            "",
            f"Ranked together with SynFlow (`+ synflow`, the search's `final_proxy`) against the same scores "
            f"alone, over {len(gains)} supernets (each the mean over its scorings): Kendall tau "
            f"{np.mean(gains):+.3f} (higher in {sum(g > 0 for g in gains)}, Wilcoxon p = {p(gains):.2g}), "
            f"top-10 % precision {np.mean(top):+.3f} (higher in {sum(g > 0 for g in top)}, lower in "
            f"{sum(g < 0 for g in top)}, p = {p(top):.2g}), standalone {study['metric']} of the top 10 % "
            f"{np.mean(best):+.4f} (higher in {sum(g > 0 for g in best)}, lower in "
            f"{sum(g < 0 for g in best)}, p = {p(best):.2g}).",
        ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(out / "ranking.md", text)
    plot(study, out / "ranking.png")
    return text


def proxy_gains(study: dict[str, Any], measure: str = "kendall_tau") -> list[float]:
    """Per supernet run: mean ``measure`` of its ``+ synflow`` scorings minus that of the same scorings alone."""
    gains = []
    for variant in study["variants"].values():
        fid = variant["fidelity"]
        pairs = [(fid[f"{m} + synflow"][measure], fid[m][measure]) for m in fid if f"{m} + synflow" in fid]
        if pairs:
            gains.append(float(np.mean([a - b for a, b in pairs])))
    return gains


def plot(study: dict[str, Any], path: Path) -> None:
    """One panel per supernet variant: standalone rank against supernet rank (its first run, best scoring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = np.asarray(study["standalone"], dtype=float).mean(1)
    truth_rank = stats.rankdata(-truth)
    groups: dict[str, list[dict]] = {}
    for label, variant in study["variants"].items():
        groups.setdefault(label.split("@")[0], []).append(variant)
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 4.2 * rows), dpi=110, squeeze=False)
    ceiling = mean_ceiling(study["noise_ceiling"], study["seeds"])
    n = len(truth)
    for ax, (name, variants) in zip(axes.flat, groups.items()):
        # The scoring every run of the variant has (runs may add more), best on average.
        modes = [m for m in modes_of(variants) if all(m in v["fidelity"] for v in variants)]
        mode = max(modes, key=lambda m: np.mean([v["fidelity"][m]["kendall_tau"] for v in variants]))
        taus = [v["fidelity"][mode]["kendall_tau"] for v in variants]
        rank = stats.rankdata(-np.asarray(with_proxy(variants[0]["scores"], study.get("synflow"))[mode]))
        top = truth_rank <= max(1, round(0.1 * n))
        ax.scatter(rank[~top], truth_rank[~top], s=14, alpha=0.7, label="others")
        ax.scatter(rank[top], truth_rank[top], s=22, color="tab:red", label="standalone top 10 %")
        ax.plot([1, n], [1, n], color="0.6", lw=0.8, ls="--")
        ax.set_title(
            f"{name}\n{mode}: tau {np.mean(taus):.2f} over {len(taus)} run(s), ceiling {ceiling:.2f}", fontsize=8
        )
        ax.set_xlabel("rank by the supernet (val)")
        ax.set_ylabel(f"rank standalone ({study['metric']}, test, mean of {study['seeds']})")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def check_args(args: argparse.Namespace) -> list[int]:
    """Refuses settings no study can use before the standalone trainings (hours); returns the --calibrate counts.

    Raises:
        SystemExit: One line naming the option.
    """
    if args.finetune < 0:
        raise SystemExit(f"--finetune {args.finetune}: expected a number of steps >= 0")
    if args.average_epochs < 0:
        raise SystemExit(f"--average-epochs {args.average_epochs}: expected a number of epochs >= 0")
    if args.average_epochs and args.run_dir:
        raise SystemExit(
            "--average-epochs needs the search to run here (the weights of its last epochs); drop --run-dir"
        )
    if args.archs < 4 or args.seeds < 2:
        raise SystemExit(f"--archs {args.archs} / --seeds {args.seeds}: need >= 4 archs and >= 2 seeds for a ceiling")
    for flag, value in (("--epochs", args.epochs), ("--few-shot-epochs", args.few_shot_epochs)):
        if value < 1:  # checked before the standalone trainings, which take hours
            raise SystemExit(f"{flag} {value}: expected a number of epochs >= 1")
    try:
        calibrate = [int(n) for n in args.calibrate.split(",") if n.strip()]
    except ValueError:
        raise SystemExit(f"--calibrate {args.calibrate!r}: expected comma-separated image counts") from None
    if any(n < 1 for n in calibrate):
        raise SystemExit(
            f"--calibrate {args.calibrate!r}: image counts must be >= 1 (batch statistics are always scored)"
        )
    if args.run_dir:  # a trial search's run dir was found after the standalone trainings, hours in
        check_supernet_run(args.run_dir)
    if args.report_only and not read_json(Path(args.out) / "study.json", {}).get("variants"):
        raise SystemExit(f"--report-only: no study in {Path(args.out) / 'study.json'} to report")
    return calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the search (without --run-dir)")
    parser.add_argument("--run-dir", help="a finished run to take the supernet from instead of searching")
    parser.add_argument(
        "--label",
        default="default",
        help="name of this supernet variant in the report; NAME@SEED labels are averaged per NAME",
    )
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument(
        "--seeds", type=int, default=10, help="standalone trainings per architecture (seeds 0..N-1; cached per seed)"
    )
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each standalone training")
    parser.add_argument(
        "--calibrate",
        default="256,1024",
        help="comma-separated training image counts for per-architecture BatchNorm "
        "statistics (one scoring each; empty: none)",
    )
    parser.add_argument(
        "--loss",
        action="store_true",
        help="also score each statistics mode by the negative validation loss (the task's loss)",
    )
    parser.add_argument(
        "--average-epochs",
        type=int,
        default=0,
        metavar="N",
        help="also score with the supernet's weights averaged over the ends of its last N epochs "
        "(stochastic weight averaging, Izmailov et al., 2018; needs a search, not --run-dir)",
    )
    parser.add_argument(
        "--few-shot",
        type=int,
        default=None,
        metavar="DECISION",
        help="also score a few-shot split of the trained supernet on this decision (its index) "
        "and a one-shot control trained as many extra steps",
    )
    parser.add_argument("--few-shot-epochs", type=int, default=5, help="extra epochs of each sub-supernet")
    parser.add_argument(
        "--finetune",
        type=int,
        default=0,
        metavar="STEPS",
        help="also score each architecture after STEPS steps of training on its own path, "
        "starting from the shared weights (a copy per architecture)",
    )
    parser.add_argument("--sample-seed", type=int, default=1234)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="no search: re-rank the stored variants against the standalone results and rewrite the report",
    )
    parser.add_argument("--out", default="outputs/rank_study")
    args = parser.parse_args()
    calibrate = check_args(args)
    from hydra.utils import instantiate

    from rlnas.utils import write_json_atomic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from rlnas.utils.trust import load_run_config

    cfg = (
        load_run_config(Path(args.run_dir) / "config.yaml")
        if args.run_dir
        else load_config(args.overrides, needs_task=True, check=True)
    )
    space = instantiate(cfg.space, _convert_="all")
    if args.few_shot is not None and not 0 <= args.few_shot < len(space):
        raise SystemExit(f"--few-shot {args.few_shot}: the space has decisions 0..{len(space) - 1}")
    rng = np.random.default_rng(args.sample_seed)
    archs: list[tuple[int, ...]] = []
    for _ in range(100 * args.archs):
        if len(archs) == args.archs:
            break
        arch = tuple(space.sample(rng))
        if arch not in archs:
            archs.append(arch)

    start = time.perf_counter()
    results = standalone_results(cfg, archs, args.seeds, args.epochs, out / "standalone.json")
    truth_values, val_values, val_losses = (
        np.asarray([results[f][a] for a in archs], dtype=float) for f in ("test", "val", "val_loss")
    )
    print(f"standalone: {time.perf_counter() - start:.0f} s")

    path = out / "study.json"
    study = read_json(path, {})
    if args.report_only:
        if not study.get("variants"):
            raise SystemExit(f"--report-only: no study in {path} to report")
        metric = study["metric"]
    else:
        scores, seconds, metric = supernet_scores(args, cfg, archs, calibrate)
    if study.get("archs_list") != [list(a) for a in archs] or study.get("epochs") != args.epochs:
        if args.report_only:
            raise SystemExit(
                f"--report-only: {path} holds another sample of architectures or recipe "
                "(give the --archs, --epochs, --sample-seed and overrides it was made with)"
            )
        study = {"variants": {}}  # another sample or recipe: earlier variants are not comparable
    truth = truth_values.mean(1)
    study.update(
        metric=metric,
        archs=len(archs),
        seeds=args.seeds,
        epochs=args.epochs,
        archs_list=[list(a) for a in archs],
        standalone=truth_values.tolist(),
        noise_ceiling=noise_ceiling(truth_values),
        held_out=held_out_check(truth_values),
        # The standalone runs themselves, scored where a search scores: the best a ranker on that split can expect.
        val_ceiling={metric: fidelity(val_values.mean(1), truth), "-loss": fidelity(-val_losses.mean(1), truth)},
    )
    if not args.report_only:
        study["variants"][args.label] = {
            "overrides": list(args.overrides),
            "run_dir": args.run_dir,
            "seconds": seconds,
            "scores": scores,
        }
    study["synflow"] = synflow_scores(cfg, archs)
    for variant in study["variants"].values():  # against the current truth (more seeds change it)
        variant["fidelity"] = {
            m: fidelity(s, truth) for m, s in with_proxy(variant["scores"], study["synflow"]).items()
        }
    write_json_atomic(path, study)
    print(report(study, out))
    print(f"wrote {out / 'ranking.md'}, {out / 'ranking.png'}, {path}")


def synflow_scores(cfg: Any, archs: list[tuple[int, ...]]) -> list[float]:
    """SynFlow of each architecture's untrained standalone network (what ``search.final_proxy`` ranks with)."""
    import torch

    from rlnas.evaluators.proxies import arch_synflow
    from rlnas.tasks.training import search_parts

    space, task, data = search_parts(cfg, torch.device("cpu"))
    return [arch_synflow(space, task, data, a) for a in archs]


def with_proxy(scores: dict[str, list[float]], proxy: list[float] | None) -> dict[str, list[float]]:
    """Every scoring, each also ranked together with the proxy (if any) as the search's final choice does."""
    from rlnas.evaluators.proxies import proxy_adjusted

    out = dict(scores)
    if proxy is None:
        return out
    for mode, values in scores.items():
        if not mode.startswith("few-shot"):  # NaN for the archs a sub-supernet does not hold
            out[f"{mode} + synflow"] = proxy_adjusted(values, proxy)
    return out


def supernet_scores(args: argparse.Namespace, cfg: Any, archs: list[tuple[int, ...]], calibrate: list[int]):
    """Runs the search (or loads ``--run-dir``) and scores ``archs`` on its supernet in every requested way.

    Returns:
        (scoring name -> one score per arch, seconds of the search or None for a loaded run, the metric's name).
    """
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if args.run_dir:
            search = load_run(args.run_dir, tmp)
            averaged = None
        else:
            search, averaged = build_and_run(cfg, tmp, args.average_epochs)
        seconds = time.perf_counter() - start
    evaluator, metric = search.evaluator, search.task.reward_metric
    scores: dict[str, list[float]] = {}

    def score(mode: str, images: int) -> None:
        """Scores every arch with the evaluator's model, BatchNorm calibrated on ``images`` (0: batch statistics)."""
        calibrate_on(search, images)
        with torch.no_grad():
            scores[mode] = [evaluator.evaluate_full(a).metrics[metric] for a in archs]
            if args.loss:
                scores[f"{mode}, -loss"] = [-validation_loss(search, a) for a in archs]

    for mode, n in [("batch statistics", 0)] + [(f"BN calibrated ({n} train images)", n) for n in calibrate]:
        score(mode, n)
    images = calibrate[0] if calibrate else 256  # the extra scorings below calibrate on the first count
    if averaged is not None:
        original, evaluator.model = evaluator.model, averaged
        try:
            score(f"weights averaged over the last {args.average_epochs} epochs, BN calibrated ({images})", images)
        finally:
            evaluator.model = original
    if args.few_shot is not None:
        start = time.perf_counter()
        scores.update(few_shot_scores(search, archs, args.few_shot, args.few_shot_epochs, images))
        print(f"few-shot and control: {time.perf_counter() - start:.0f} s")
    if args.finetune:
        start = time.perf_counter()
        scores.update(finetuned_scores(search, archs, args.finetune, images, args.loss))
        print(f"fine-tuning: {time.perf_counter() - start:.0f} s")
    return scores, (None if args.run_dir else seconds), metric


def validation_loss(search: Any, arch: tuple[int, ...], chunk_size: int = 512) -> float:
    """The task's loss of ``arch`` over the whole validation split, scored as the evaluator scores it."""
    from rlnas.evaluators.standalone import split_loss

    evaluator = search.evaluator
    evaluator.model.eval()
    with evaluator._statistics(arch, minibatch=False):
        return split_loss(lambda x: evaluator.model(x, list(arch)), search.task, evaluator.split, chunk_size)


def extra_training(search: Any, model: Any, steps: int, fixed: dict[int, int] | None, seed: int) -> None:
    """``steps`` more supernet steps on ``model``, paths drawn uniformly with the decisions in ``fixed`` held.

    SGD with Nesterov momentum and a cosine schedule from lr/5 to lr_min, the
    search's batch size, weight decay and gradient bound: the same recipe for a
    few-shot sub-supernet, the one-shot control that gets as many steps, and
    one architecture fine-tuned on its own path (every decision held).
    """
    import torch

    from rlnas.search.final import train_paths

    rng = np.random.default_rng(seed)

    def path() -> list[int]:
        arch = list(search.space.sample(rng))
        for decision, choice in (fixed or {}).items():
            arch[decision] = choice
        return arch

    generator = torch.Generator(search.device).manual_seed(seed)
    train_paths(model, search.task, search.data, search.settings, steps, path, generator)


def few_shot_scores(search: Any, archs: list[tuple[int, ...]], decision: int, epochs: int, images: int) -> dict:
    """Scores of a few-shot split on ``decision`` (Zhao et al., 2021) and of the one-shot control.

    The trained supernet is copied once per choice of ``decision``; copy k
    trains ``epochs`` more epochs on paths with that choice only and scores the
    architectures that have it. The control trains one copy as many steps in
    all (choices x epochs) on every path. Both scored BN-calibrated.
    """
    import copy

    import torch

    evaluator, metric = search.evaluator, search.task.reward_metric
    calibrate_on(search, images)
    steps = epochs * search.settings.supernet_steps
    choices = int(search.space.num_choices[decision])
    original = evaluator.model
    out: dict[str, list[float]] = {}
    try:
        control = copy.deepcopy(original)
        extra_training(search, control, steps * choices, None, seed=7)
        evaluator.model = control
        with torch.no_grad():
            out[f"one-shot + {epochs * choices} more epochs (control), BN calibrated ({images})"] = [
                evaluator.evaluate_full(a).metrics[metric] for a in archs
            ]
        few: list[float] = [float("nan")] * len(archs)
        for k in range(choices):
            sub = copy.deepcopy(original)
            extra_training(search, sub, steps, {decision: k}, seed=7 + k)
            evaluator.model = sub
            with torch.no_grad():
                for i, a in enumerate(archs):
                    if a[decision] == k:
                        few[i] = evaluator.evaluate_full(a).metrics[metric]
        out[
            f"few-shot on {search.space.decisions[decision].name} ({choices} x {epochs} more epochs), "
            f"BN calibrated ({images})"
        ] = few
    finally:
        evaluator.model = original
    return out


def calibrate_on(search: Any, images: int) -> None:
    """BatchNorm statistics of every following score from ``images`` fixed training images (0: batch statistics)."""
    from rlnas.evaluators.supernet import calibration_inputs

    search.evaluator.set_calibration(calibration_inputs(search.data.train, images, 0) if images else None)


def finetuned_scores(search: Any, archs: list[tuple[int, ...]], steps: int, images: int, loss: bool) -> dict:
    """Scores after ``steps`` of training each architecture alone, from the shared weights (one copy each).

    Weight inheritance then fine-tuning, as Once-for-All (Cai et al., 2020)
    does before deploying a sub-network: if the shared weights rank badly
    because they serve every path at once, a short training of the path alone
    should undo it. BN-calibrated on ``images`` training images.
    """
    import copy

    import torch

    evaluator, metric = search.evaluator, search.task.reward_metric
    calibrate_on(search, images)
    mode = f"each fine-tuned {steps} steps on its own path, BN calibrated ({images})"
    out: dict[str, list[float]] = {mode: []}
    if loss:
        out[f"{mode}, -loss"] = []
    original = evaluator.model
    try:
        for i, arch in enumerate(archs):
            evaluator.model = copy.deepcopy(original)
            extra_training(search, evaluator.model, steps, dict(enumerate(arch)), seed=100 + i)
            with torch.no_grad():
                out[mode].append(evaluator.evaluate_full(arch).metrics[metric])
                if loss:
                    out[f"{mode}, -loss"].append(-validation_loss(search, arch))
    finally:
        evaluator.model = original
    return out


def build_and_run(cfg: Any, run_dir: str, average_epochs: int = 0):
    """Runs the configured search in ``run_dir``; returns it (its supernet trained) and the averaged supernet.

    With ``average_epochs`` N > 0, a copy of the supernet holds the mean of its
    weights at the ends of the last N epochs (None otherwise).
    """
    from torch.optim.swa_utils import AveragedModel

    from rlnas.search.builder import build_search
    from rlnas.search.loop import Callback

    search = build_search(cfg, run_dir, progress=False)
    averaged: AveragedModel | None = None
    if average_epochs:

        class Average(Callback):
            def on_epoch_end(self, search: Any, stats: Any) -> None:
                nonlocal averaged
                if stats.epoch < search.settings.epochs - average_epochs:
                    return
                if averaged is None:
                    averaged = AveragedModel(search.model)  # a copy, averaging nothing yet
                averaged.update_parameters(search.model)  # equal weights: the running mean of the epochs' ends

        search.callbacks.append(Average())
    search.run()
    return search, averaged.module if averaged is not None else None


if __name__ == "__main__":
    run_tool(main)

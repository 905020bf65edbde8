"""Compare controllers at the same evaluation budget over several seeds.

Runs every controller (random search is always one) for every seed, either
against a benchmark that answers at once (``--benchmark nb201_cifar10``,
``--benchmark toy``) or as whole weight-sharing searches on a task
(``--task classification``), and writes to ``--out``:

* ``curves.csv.gz``: reward and best-so-far reward per evaluation, per run (gzipped CSV: 100 seeds of
  9 controllers at 300 evaluations are 10 MB of text);
* ``curves.png``: mean +- std of the best-so-far reward vs evaluations;
* ``table.md`` / ``table.json``: the best found at each budget, mean +- std,
  with Welch's t-test (two-sided) against random search and, for benchmarks,
  the regret to the optimum.

Whole searches keep their run dirs under ``--out/runs``; a finished one
(``result.json``: its settings and results, its curves read from the run's
``history.csv``) is reused when the same study is started again, also from a
fresh clone where the runs under docs/ are committed, so a long study stopped
half-way loses only the searches it had not finished and the tables are
written again in seconds. A run dir from a study with other settings is
refused, never read as this one's.

Examples::

    python tools/compare_controllers.py --benchmark nb201_cifar10 --seeds 20 --budgets 100 300
    python tools/compare_controllers.py --benchmark toy --seeds 5 --budgets 500 1500
    python tools/compare_controllers.py --task classification --seeds 5 \\
        --controllers enas ppo evolution -- search.epochs=8
    python tools/compare_controllers.py --task detection --seeds 5 --controllers enas --reference enas \\
        --variant enas_warm enas controller.init_from=outputs/runs/DATE/TIME -- search.epochs=6
    python tools/compare_controllers.py --replot docs/nb201 [--readme docs/results.md]  # redraw

``--variant LABEL CONTROLLER OVERRIDE...`` adds a run of CONTROLLER with extra
overrides under its own label (e.g. a warm-started controller next to the same
one started cold); what every run must share to be compared (``seed``,
``task.*``, ``benchmark.*`` but ``archs_per_step`` and ``requery``, ``hydra.*``)
is refused there: give it to every run after ``--``. ``--reference`` names the
runs the Welch tests compare against (random search by default).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.utils import is_number, save_figure, write_json_atomic, write_text_atomic  # noqa: E402
from tools._common import (  # noqa: E402
    check_stored_config,
    job_map,
    load_config,
    read_json,
    refuse_keys_of_options,
    run_tool,
)

ALL = ["random", "grid", "tpe", "evolution", "local_search", "enas", "ppo", "maskable_ppo", "recurrent_ppo"]
#: Controllers that learn by gradient through a supernet: whole searches (--task) only.
DIFFERENTIABLE = ["darts", "gdas"]
#: Published NAS-Bench-201 CIFAR-10 test accuracy (%) of searches at a fixed time
#: budget, mean +- std over 500 runs (Dong & Yang, ICLR 2020, Table 5). They belong
#: to that data: keyed by the table file's sha256 (as listed in shared/benchmarks/README.md)
#: and the metric column, so a run on another table or metric never shows them.
PUBLISHED = {
    ("d98cf8e24ab01829bf178d6fc1d97cdb1ce3b624629e5a42400d069959f6c2ea", "cifar10_test_acc"): {
        "random": (93.70, 0.36),
        "evolution": (93.92, 0.30),
        "enas": (93.85, 0.37),
    },
}
PUBLISHED_NAMES = {"random": "random search", "evolution": "REA", "enas": "REINFORCE"}


def table_identity(evaluator) -> dict:
    """What a benchmark run actually read: the evaluator's name, table file, its sha256 and the metric."""
    import hashlib

    path = getattr(evaluator, "path", None)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path is not None else None
    return {
        "name": getattr(evaluator, "name", type(evaluator).__name__),
        "path": str(path) if path else None,
        "sha256": digest,
        "metric": evaluator.reward_metric,
    }


def published_for(identity: dict | None) -> dict:
    """Published figures for exactly this table and metric ({} for any other)."""
    if not identity:
        return {}
    return PUBLISHED.get((identity.get("sha256"), identity.get("metric")), {})


def run_benchmark(name: str, controller: str, seed: int, budget: int, overrides: list[str]) -> dict:
    """One budgeted search against a benchmark; rewards, best-so-far and the pick's reported metric per evaluation.

    The budget counts distinct architectures (repeats are free); on a noisy table the pick (best mean reward)
    is reported by the table's report column (e.g. test accuracy), not by the reward that chose it.
    """
    from rlnas.search.budget import build_budget_search

    cfg = load_config(
        [
            f"+benchmark={name}",
            f"controller={controller}",
            f"seed={seed}",
            f"benchmark.evaluations={budget}",
            *overrides,
        ]
    )
    search = build_budget_search(cfg, None, progress=False)
    result = search.run()
    evaluator = search.evaluator
    metric = getattr(evaluator, "report_metric", evaluator.reward_metric)
    best_metric = [search.seen[pick][0][0].metrics[metric] for pick in result.picks]
    shares = [s["policy_share"] for s in result.controller_stats if "policy_share" in s]
    scale = getattr(evaluator, "metric_scale", 1.0)
    return {
        "rewards": result.rewards,
        "best_so_far": result.best_so_far,
        "best_metric": best_metric,
        "final": best_metric[-1],
        "metric": metric,
        "scale": scale,
        "seconds": result.seconds,
        "optimum": evaluator.optimum(),
        "identity": table_identity(evaluator),
        "distinct": result.distinct,
        "proposals": result.proposals,
        "policy_share": shares[-1] if shares else float("nan"),
    }


def run_task(
    task: str,
    controller: str,
    seed: int,
    out: Path,
    overrides: list[str],
    label: str | None = None,
    truth_seeds: int = 3,
    truth_epochs: int = 20,
) -> dict:
    """One whole weight-sharing search; curves from its minibatch rewards, final = the selected arch re-scored,
    ground truth = the selected arch trained standalone (``truth_seeds`` times) and tested on the unseen split."""
    from rlnas.search.builder import build_search
    from rlnas.utils import atomic_file

    run_dir = out / "runs" / f"{label or controller}_seed{seed}"
    key = run_key(task, controller, seed, overrides, truth_seeds, truth_epochs)
    cfg = load_config([f"+task={task}", f"controller={controller}", f"seed={seed}", *overrides])
    stored = stored_run(run_dir, key, cfg)
    if stored is not None:
        return stored
    if run_dir.exists():  # this study's search, stopped half-way: it starts again
        import shutil

        shutil.rmtree(run_dir)
    search = build_search(cfg, run_dir, progress=False)
    result = search.run()
    metric = search.evaluator.reward_metric
    truth = {}
    if truth_seeds > 0:
        from rlnas.evaluators.standalone import ground_truth

        truth = ground_truth(cfg, result.best.arch, truth_seeds, truth_epochs, str(cfg.device))
        write_text_atomic(
            run_dir / "ground_truth.json", json.dumps({"arch": list(result.best.arch), **truth}, indent=2)
        )
    found = {
        "truth": truth.get("mean", float("nan")),
        "truth_seeds": truth.get("values", []),
        "final": result.best.evaluation.metrics[metric],
        "final_reward": result.best.reward,
        "metric": metric,
        "last_epoch": result.last_epoch_mean_reward,
        "scale": 1.0,
        "seconds": result.seconds,
        "optimum": float("nan"),
    }
    # The curves are the run's history.csv, kept beside it; result.json holds the rest (small enough to commit).
    with atomic_file(run_dir / "result.json") as f:  # NaN kept as NaN: this tool reads it back
        json.dump({"key": key, "result": found}, f)
    return {**found, **history_curves(run_dir, metric)}


def history_curves(run_dir: Path, metric: str) -> dict[str, list[float]]:
    """A whole search's curves from its ``history.csv``: each minibatch reward, the best so far, and the metric of
    that best (``rewards``, ``best_so_far``, ``best_metric``)."""
    with (run_dir / "history.csv").open(newline="") as f:
        rows = [(float(row["reward"]), float(row[metric])) for row in csv.DictReader(f)]
    best, best_metric, best_reward, current = [], [], -np.inf, float("nan")
    for reward, value in rows:
        if reward > best_reward:
            best_reward, current = reward, value
        best.append(best_reward)
        best_metric.append(current)
    return {"rewards": [r for r, _ in rows], "best_so_far": best, "best_metric": best_metric}


def run_key(task: str, controller: str, seed: int, overrides: list[str], truth_seeds: int, truth_epochs: int) -> dict:
    """What a whole search's result depends on (the torch threads it ran with aside)."""
    kept = [o for o in overrides if not o.startswith("threads=")]
    return {
        "task": task,
        "controller": controller,
        "seed": seed,
        "overrides": kept,
        "truth": [truth_seeds, truth_epochs],
    }


def stored_run(run_dir: Path, key: dict, cfg: Any = None) -> dict | None:
    """The result a finished whole search left in ``run_dir/result.json``; None when it has none.

    A finished run is reused by a study started again with the same settings
    (these searches take minutes each, and a long study stopped half-way keeps
    what it finished). ``cfg``, the config the study composes for it now, is
    checked against the run's own ``config.yaml``: a default changed since the
    run was made (a task's supernet steps, a controller's learning rate) is not
    in the study's overrides, yet the run is not this study's any more.

    Raises:
        ValueError: When the run there was made with other settings (another
            study's, or this one's under other defaults).
    """
    path = run_dir / "result.json"
    stored = read_json(path)
    if stored is None:
        return None
    found = stored.get("result") if isinstance(stored, dict) else None
    if not (isinstance(found, dict) and isinstance(stored.get("key"), dict) and _is_result(found)):
        raise ValueError(f"{path}: not a result this tool wrote (key, result); move it away or give another --out")
    if stored["key"] != key:
        was = stored["key"]
        overrides = was.get("overrides") if isinstance(was.get("overrides"), list) else []
        said = " ".join([f"+task={was.get('task')}", f"controller={was.get('controller')}", *map(str, overrides)])
        raise ValueError(f"{run_dir} holds a run of another study ({said}); give another --out")
    if cfg is not None:
        check_stored_config(run_dir, cfg)
    if "rewards" in found:  # written before the curves were read from history.csv
        return found
    try:
        return {**found, **history_curves(run_dir, found["metric"])}
    except (OSError, KeyError, ValueError) as err:
        why = f"{type(err).__name__}: {err}"
        raise ValueError(f"{run_dir / 'history.csv'}: not the history of this run ({why})") from None


def _is_result(found: dict) -> bool:
    """Whether ``found`` has the fields :func:`run_task` writes, numbers where numbers belong."""
    numbers = ("truth", "final", "final_reward", "last_epoch", "seconds")
    return (
        all(is_number(found.get(name)) for name in numbers)
        and isinstance(found.get("metric"), str)
        and isinstance(found.get("truth_seeds"), list)
        and all(is_number(v) for v in found["truth_seeds"])
    )


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch t-test p-value; NaN where the test is undefined.

    Undefined: a group with fewer than two values, or no variance in either
    group (every run of both found the same value, or two constants apart):
    then no p-value is honest, and 0 would claim a certainty the data lack.
    One constant group beside a varying one is a defined test.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan")

    def constant(x: np.ndarray) -> bool:  # equal up to float noise (percent tables scaled back and forth)
        return bool(np.ptp(x) <= 1e-9 * max(1.0, float(np.abs(x).max())))

    if constant(a) and constant(b):
        return float("nan")
    # Snap float noise in a constant group to exact equality, or scipy reports a precision loss.
    a, b = (np.full_like(a, a.mean()) if constant(a) else a), (np.full_like(b, b.mean()) if constant(b) else b)
    import warnings

    with warnings.catch_warnings():
        # scipy warns of "catastrophic cancellation" for an exactly constant group too; the
        # test is defined there (the other group's variance), and undefined cases are handled above.
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


#: The strongest simple baselines: a controller worth choosing must not lose to them.
RIVALS = ("evolution", "local_search")


def _row(
    controller: str, budget: int | str, values_of, runs: dict[str, list[dict]], reference: str, rivals: list[str]
) -> dict:
    """Mean ± std of ``values_of(runs[controller])`` with Welch p against ``reference`` (and each rival)."""
    values = values_of(runs[controller])
    row = {
        "controller": controller,
        "budget": budget,
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),  # one seed has no spread
        "n": len(values),
        "p_vs_random": float("nan") if controller == reference else welch_p(values, values_of(runs[reference])),
        "seconds": float(np.mean([r["seconds"] for r in runs[controller]])),
    }
    for rival in rivals:
        row[f"p_vs_{rival}"] = float("nan") if controller == rival else welch_p(values, values_of(runs[rival]))
    for key in ("distinct", "policy_share"):
        found = [r[key] for r in runs[controller] if key in r]
        if key == "distinct" and isinstance(budget, int):
            # Each run is one search of the largest budget read at every smaller one: at budget 50 it had
            # evaluated min(50, its count) distinct architectures, not the whole run's (300 was shown).
            found = [min(budget, v) for v in found]
        if found and np.any(np.isfinite(found)):
            row[key] = float(np.nanmean(found))
    return row


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (Holm, 1979): family-wise error control over all of them.

    The i-th smallest of m defined p-values becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``;
    undefined ones (NaN) stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    defined = np.flatnonzero(np.isfinite(p))
    m = len(defined)
    order = defined[np.argsort(p[defined], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def correct(rows: list[dict]) -> list[dict]:
    """Adds Holm-adjusted p-values (``*_holm``) over every test in the table: one family per table."""
    keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k.startswith("p_vs_") and not k.endswith("_holm")]
    cells = [(i, k) for i, r in enumerate(rows) for k in keys if k in r]
    adjusted = holm([rows[i][k] for i, k in cells])
    for (i, k), value in zip(cells, adjusted):
        rows[i][f"{k}_holm"] = value
    return rows


def summarise(
    runs: dict[str, list[dict]],
    budgets: list[int],
    identity: dict | None = None,
    reference: str = "random",
    rivals: tuple[str, ...] = RIVALS,
) -> list[dict]:
    """Rows of the table: best metric at each budget per controller, Welch p vs ``reference``.

    Args:
        identity: :func:`table_identity` of the benchmark runs (``None`` for whole searches); published
            figures are added only for the exact table and metric they were measured on.
    """
    published_figures = published_for(identity)
    rivals = [r for r in rivals if r in runs and r != reference]
    rows = []
    for controller, results in runs.items():
        scale = results[0]["scale"]
        for budget in budgets:

            def at(rs: list[dict], budget: int = budget, scale: float = scale) -> list[float]:
                return [r["best_metric"][min(budget, len(r["best_metric"])) - 1] / scale for r in rs]

            row = _row(controller, budget, at, runs, reference, rivals)
            optimum = results[0]["optimum"] / scale
            if np.isfinite(optimum):
                # A negative scale: a lower-is-better column, whose optimum is its lowest value.
                gap = (optimum - row["mean"]) * (1.0 if scale > 0 else -1.0)
                row["regret"] = max(0.0, float(gap))  # 0, not -1e-15, at the optimum
                row["optimum"] = float(optimum)
            published = published_figures.get(controller)
            if published:
                row["published"] = f"{published[0]:.2f} ± {published[1]:.2f} ({PUBLISHED_NAMES[controller]})"
            rows.append(row)
        # Whole searches also report the ground truth of the selected architecture (trained
        # standalone, tested on the split the search never saw: the headline), the same
        # architecture re-scored on the full validation split with the shared weights, and
        # the mean reward of what the controller sampled last.
        for key, label in (
            ("truth", "ground truth (standalone, test)"),
            ("final", "final (full val)"),
            ("last_epoch", "last-epoch mean reward"),
        ):
            if "last_epoch" not in results[0]:  # benchmark runs have none of these
                continue
            if key == "truth" and not np.isfinite(results[0].get("truth", float("nan"))):
                continue
            rows.append(_row(controller, label, lambda rs, key=key: [r[key] for r in rs], runs, reference, rivals))
    return correct(rows)


def _p(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.2g}"


def _spread(mean: float, std: float) -> str:
    """Mean ± std with the float noise of identical runs (1e-14) shown as the 0 it is; one seed's mean alone."""
    if not np.isfinite(std):
        return f"{mean:.4g} (1 seed)"
    return f"{mean:.4g} ± {0 if std <= 1e-9 * max(1.0, abs(mean)) else float(f'{std:.2g}'):g}"


def _rivals(rows: list[dict], reference: str) -> list[str]:
    """The labels the rows were also tested against, besides ``reference``."""
    keys = dict.fromkeys(k[5:] for r in rows for k in r if k.startswith("p_vs_") and not k.endswith("_holm"))
    return [k for k in keys if k != "random"]


def _pv(row: dict, against: str) -> str:
    """The Holm-adjusted p-value against ``against`` (the raw one for tables written before the correction)."""
    key = f"p_vs_{against}"
    return _p(row.get(f"{key}_holm", row.get(key, float("nan"))))


def _family(rows: list[dict]) -> str:
    m = sum(1 for r in rows for k, v in r.items() if k.endswith("_holm") and np.isfinite(v))
    return (
        (f"Welch p-values (two-sided), Holm-adjusted over the table's {m} tests; — where a test is undefined.")
        if m
        else "Welch p-values (two-sided); — where a test is undefined."
    )


def markdown(rows: list[dict], metric: str, title: str, reference: str = "random") -> str:
    has_regret = any("regret" in r for r in rows)
    has_pub = any("published" in r for r in rows)
    rivals = _rivals(rows, reference)
    has_distinct = any("distinct" in r for r in rows)
    has_share = any("policy_share" in r for r in rows)
    head = ["controller", "budget", f"best {metric} (mean ± std)", f"p vs {reference}"]
    head += [f"p vs {r}" for r in rivals]
    head += ["regret"] if has_regret else []
    head += ["published"] if has_pub else []
    head += ["distinct archs / run"] if has_distinct else []
    head += ["policy's share of proposals (whole run)"] if has_share else []
    head += ["s / run"]
    lines = [f"## {title}", "", _family(rows), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["controller"], str(r["budget"]), _spread(r["mean"], r["std"]), _pv(r, "random")]
        cells += [_pv(r, rival) for rival in rivals]
        cells += [f"{max(0.0, r['regret']):.4f}" if "regret" in r else ""] if has_regret else []
        cells += [r.get("published", "")] if has_pub else []
        cells += [f"{r['distinct']:.0f}" if "distinct" in r else ""] if has_distinct else []
        cells += [f"{r['policy_share']:.2f}" if "policy_share" in r else ""] if has_share else []
        cells += [f"{r['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pivot(rows: list[dict], budgets: list, reference: str = "random") -> str:
    """One line per controller, the budgets side by side: what the README shows.

    Cells hold mean ± std, then the Holm-adjusted Welch p-values against
    ``reference`` and each rival (evolution, local search); "—" where a test
    is undefined (the group itself, or no variance in either).
    """
    by = {(r["controller"], r["budget"]): r for r in rows}
    controllers = list(dict.fromkeys(r["controller"] for r in rows))
    rivals = _rivals(rows, reference)
    has_pub = any("published" in r for r in rows)
    head = ["controller"]
    for b in budgets:
        name = f"{b} evals" if isinstance(b, int) else str(b)
        head += [name, f"p vs {reference}"] + [f"p vs {r}" for r in rivals]
    head += ["published"] if has_pub else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in controllers:
        cells = [c]
        for b in budgets:
            r = by[(c, b)]
            cells += [_spread(r["mean"], r["std"]), _pv(r, "random")]
            cells += [_pv(r, rival) for rival in rivals]
        cells += [next((by[(c, b)].get("published", "") for b in budgets), "")] if has_pub else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + "\n" + _family(rows) + "\n"


def check_readme(readme: Path, key: str) -> str:
    """The text of ``readme``, which must hold the ``KEY`` block; checked before a study, not after its hours.

    Raises:
        SystemExit: Naming the file: missing, or without the block.
    """
    begin, end = f"<!-- study:{key} -->", f"<!-- /study:{key} -->"
    tool = Path(sys.argv[0]).name
    if not readme.is_file():
        raise SystemExit(f"{tool}: error: --readme {readme}: no such file")
    try:
        content = readme.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SystemExit(f"{tool}: error: --readme {readme}: not UTF-8 text (name a Markdown file)") from None
    if begin not in content or end not in content:
        raise SystemExit(f"{tool}: error: --readme {readme}: no '{begin}' ... '{end}' block to replace")
    return content


def update_readme(readme: Path, key: str, text: str) -> None:
    """Replaces what stands between ``<!-- study:KEY -->`` and ``<!-- /study:KEY -->`` in ``readme``."""
    begin, end = f"<!-- study:{key} -->", f"<!-- /study:{key} -->"
    content = check_readme(readme, key)
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_text_atomic(readme, f"{head}{begin}\n{text}{end}{tail}")


def plot(runs: dict[str, list[dict]], path: Path, metric: str, title: str, optimum: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    # The y range follows the curves after the first tenth of the budget: the first few
    # evaluations span the whole table and would flatten the part worth comparing. Limits are
    # found with the better end up (sign -1: a lower-is-better column, negative metric_scale).
    sign = 1.0 if next(iter(runs.values()))[0]["scale"] > 0 else -1.0
    lows, highs, finals = {}, [], {}
    lines = {}
    for controller, results in runs.items():
        scale = results[0]["scale"]
        n = min(len(r["best_metric"]) for r in results)
        curves = np.array([r["best_metric"][:n] for r in results]) / scale
        mean, std = curves.mean(0), curves.std(0)
        x = np.arange(1, n + 1)
        (lines[controller],) = ax.plot(
            x,
            mean,
            label=controller,
            lw=1.6 if controller != "random" else 2.2,
            ls="--" if controller == "random" else "-",
        )
        ax.fill_between(x, mean - std, mean + std, alpha=0.12)
        start = max(n // 10 - 1, 0)
        lows[controller] = sign * float(mean[start])
        finals[controller] = float(mean[-1])
        highs.append(float((sign * mean + std)[start:].max()))
    # Grid enumeration in order can sit far below the rest; it is not allowed to
    # squash the others, and its label says where it ended when it is off scale.
    scaled = {c: v for c, v in lows.items() if c != "grid"} or lows
    lo = min(scaled.values())
    if "grid" in finals and sign * finals["grid"] < lo:
        lines["grid"].set_label(f"grid (off scale, ends at {finals['grid']:.4g})")
    if optimum is not None and np.isfinite(optimum):
        ax.axhline(optimum, c="k", lw=0.8, ls=":", label=f"optimum {optimum:.4g}")
        highs.append(sign * float(optimum))
    hi = max(highs)
    pad = 0.08 * (hi - lo) if hi > lo else 1.0
    ax.set_ylim(*sorted((sign * (lo - pad), sign * (hi + pad))))
    ax.set_xlabel("architectures evaluated")
    ax.set_ylabel(f"best {metric} so far (mean ± std over seeds)")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="lower right" if sign > 0 else "upper right")
    fig.tight_layout()
    save_figure(fig, path)


def replot(out: Path, readme: Path | None = None) -> None:
    """Redraws ``out/curves.png`` and rewrites ``table.md`` (and the ``readme`` block) from an earlier comparison.

    The distinct architectures at each budget are counted again from the curves (tables written before
    that count was per budget showed each run's whole count in every row).
    """
    found = [p for p in (out / "curves.csv.gz", out / "curves.csv") if p.is_file()]
    if not found or not (out / "table.json").is_file():
        raise SystemExit(f"--replot {out}: needs curves.csv.gz and table.json from an earlier comparison")
    table = json.loads((out / "table.json").read_text())
    # Strict JSON holds an undefined p-value or a one-seed spread as null: NaN again here.
    table["rows"] = [{k: math.nan if v is None else v for k, v in row.items()} for row in table["rows"]]
    runs: dict[str, dict[int, list[float]]] = {}
    with gzip.open(found[0], "rt") if found[0].suffix == ".gz" else found[0].open() as f:
        for row in csv.DictReader(f):
            runs.setdefault(row["controller"], {}).setdefault(int(row["seed"]), []).append(float(row["best_metric"]))
    curves = {c: [{"best_metric": v, "scale": 1.0} for _, v in sorted(seeds.items())] for c, seeds in runs.items()}
    for row in table["rows"]:  # a run's curve has one point per distinct architecture it evaluated
        if "distinct" in row and isinstance(row["budget"], int) and row["controller"] in curves:
            row["distinct"] = float(
                np.mean([min(row["budget"], len(c["best_metric"])) for c in curves[row["controller"]]])
            )
    write_json_atomic(out / "table.json", table)  # strict JSON: an undefined p-value is null
    optimum = table["rows"][0].get("optimum") if table["rows"] else None
    optimum = float(optimum) if optimum is not None and np.isfinite(float(optimum)) else None
    plot(curves, out / "curves.png", table.get("metric", "metric"), table["title"], optimum)
    reference = table.get("reference", "random")
    write_text_atomic(
        out / "table.md", markdown(table["rows"], table.get("metric", "metric"), table["title"], reference)
    )
    if readme is not None:
        key = table.get("block") or out.name
        _write_readme(readme, key, table["title"], table.get("metric", "metric"), table["rows"], reference)
    print(f"wrote {out}/curves.png and table.md" + (f", and its block in {readme}" if readme else ""))


def _write_readme(readme: Path, key: str, title: str, metric: str, rows: list[dict], reference: str) -> None:
    # Whole searches: the ground truth and the other named rows first, the evaluation budget last.
    budgets = list(dict.fromkeys(r["budget"] for r in rows))
    budgets = [b for b in budgets if not isinstance(b, int)] + [b for b in budgets if isinstance(b, int)]
    update_readme(readme, key, f"{title}; best {metric} found, mean ± std:\n\n" + pivot(rows, budgets, reference))


def _one_run(
    job: tuple[str, str, int, list[str]], args: argparse.Namespace, name: str, out: Path, budgets: list[int] | None
) -> dict:
    """One (label, controller, seed) run of the comparison; a top-level function, so worker processes can run it."""
    label, controller, seed, overrides = job
    if budgets is not None:
        return run_benchmark(name, controller, seed, max(budgets), overrides)
    return run_task(name, controller, seed, out, overrides, label, args.truth_seeds, args.truth_epochs)


#: Settings a variant may not change alone: what every run must share to be compared (a variant with
#: ``benchmark.evaluations=10`` was tabulated at the shared budget after 10 evaluations).
SHARED_SETTINGS = ("seed", "data_seed", "hydra", "benchmark", "task", "ground_truth", "trials.budget")
#: Benchmark settings that are a search's behaviour, not the table's: a variant may change them.
VARIANT_BENCHMARK_SETTINGS = ("benchmark.archs_per_step", "benchmark.requery")


def _shared_setting(override: str) -> bool:
    """Whether a variant's ``override`` sets something every run of a comparison must share."""
    key = override.split("=", 1)[0].lstrip("+~").strip()
    if key in VARIANT_BENCHMARK_SETTINGS:
        return False
    return any(key == s or key.startswith(s + ".") for s in SHARED_SETTINGS)


def _check_plan(
    parser: argparse.ArgumentParser, plan: list[tuple[str, str, list[str]]], args: argparse.Namespace
) -> None:
    """Checks every run's config before the first run starts: a variant's bad value stopped the comparison
    only when its turn came, in the controller's own words."""
    from rlnas.config import ConfigError, validate_config

    where = f"+benchmark={args.benchmark}" if args.benchmark else f"+task={args.task}"
    for label, controller, extra in plan:
        try:
            validate_config(load_config([where, f"controller={controller}", *args.overrides, *extra]))
        except ConfigError as err:
            parser.error(f"{label}: {err}")


def main(argv: list[str] | None = None) -> None:  # noqa: C901 - one check per command-line argument
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["--replot"]:
        if len(given) not in (2, 4) or (len(given) == 4 and given[2] != "--readme"):
            raise SystemExit("usage: compare_controllers.py --replot DIR [--readme FILE.md]")
        return replot(Path(given[1]), Path(given[3]) if len(given) == 4 else None)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--benchmark", help="benchmark config name (conf/benchmark/NAME.yaml)")
    where.add_argument("--task", help="task config name: whole weight-sharing searches")
    parser.add_argument(
        "--controllers",
        nargs="+",
        default=ALL,
        metavar="CONTROLLER",
        help=f"default: {' '.join(ALL)}; {' and '.join(DIFFERENTIABLE)} with --task only; also a controller "
        "config of your own in --config-dir (controller/NAME.yaml)",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=None,
        help="evaluation budgets to tabulate (benchmarks; default: the config's evaluations)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/compare/<name>)")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="LABEL CONTROLLER OVERRIDE",
        help="an extra run: LABEL, the controller, then overrides of its own (repeatable)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs at once, in worker processes with one torch thread each (default 1)"
    )
    parser.add_argument("--reference", default="random", help="label the Welch tests compare against")
    parser.add_argument(
        "--rivals",
        nargs="*",
        default=None,
        metavar="LABEL",
        help=f"more labels every run is tested against, where they ran (default: {' '.join(RIVALS)})",
    )
    parser.add_argument(
        "--truth-seeds",
        type=int,
        default=None,
        help="--task: standalone trainings of each final pick for its ground truth (default 3; 0: none)",
    )
    parser.add_argument(
        "--truth-epochs", type=int, default=None, help="--task: epochs of each standalone training (default 20)"
    )
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="also write the table (budgets side by side) into this file, between "
        "'<!-- study:BLOCK -->' and '<!-- /study:BLOCK -->'",
    )
    parser.add_argument("--block", default=None, help="the --readme block's name (default: the --out folder's name)")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="a config dir of your own (benchmark/, space/, ... YAMLs) beside the package's",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. search.epochs=8")
    args = parser.parse_args(argv)
    truth = [f"--{o.replace('_', '-')}" for o in ("truth_seeds", "truth_epochs") if getattr(args, o) is not None]
    if args.benchmark and truth:  # they were ignored: a table's report column is the ground truth
        parser.error(f"{truth[0]} trains each pick standalone, with --task; a --benchmark table holds its ground truth")
    args.truth_seeds = 3 if args.truth_seeds is None else args.truth_seeds
    args.truth_epochs = 20 if args.truth_epochs is None else args.truth_epochs
    for option in ("seeds", "jobs", "truth_epochs"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    if args.truth_seeds < 0:
        parser.error(f"--truth-seeds must be >= 0 (0: none), got {args.truth_seeds}")
    if args.budgets is not None and min(args.budgets) < 1:
        parser.error(f"--budgets must be >= 1, got {min(args.budgets)}")
    options = {"seed": "--seeds", "hydra.run.dir": "--out"}
    if args.benchmark:
        options["benchmark.evaluations"] = "--budgets"
    else:
        options.update({"ground_truth.seeds": "--truth-seeds", "ground_truth.epochs": "--truth-epochs"})
    refuse_keys_of_options(args.overrides, options)
    known = ALL + DIFFERENTIABLE
    if args.config_dir is not None:
        args.overrides = [*args.overrides, f"hydra.searchpath=[file://{args.config_dir.resolve()}]"]
        # a controller of the user's own, beside the package's (compared as any other)
        from rlnas.config_groups import group_options

        known += [c for c in group_options("controller", args.config_dir) if c not in known]
    unknown = next((c for c in args.controllers if c not in known), None)
    if unknown is not None:
        parser.error(f"--controllers {unknown} is unknown; choose from {known}")
    # (label, controller, extra overrides); random search runs unless another reference is named.
    plan = [(c, c, []) for c in (["random"] if args.reference == "random" else []) + args.controllers]
    plan = list({label: (label, c, o) for label, c, o in plan}.values())
    for variant in args.variant:
        if len(variant) < 2 or variant[1] not in known:
            parser.error(
                f"--variant {' '.join(variant)}: needs LABEL CONTROLLER [OVERRIDE ...] with CONTROLLER in {known}"
            )
        label = variant[0]
        if not label.strip() or any(c in label for c in "|\n\r`"):  # a table row's name, and a Markdown cell
            parser.error(f"--variant {label!r}: a label must be a name without '|', '`' or line breaks")
        if fixed := next((o for o in variant[2:] if _shared_setting(o)), None):
            parser.error(
                f"--variant {label}: {fixed} would change what the runs are compared on (seeds, data, table, "
                "budget or output dirs); give every run the same setting after -- instead"
            )
        plan.append((label, variant[1], variant[2:]))
    if args.benchmark and any(c in DIFFERENTIABLE for _, c, _ in plan):
        parser.error(
            f"{' and '.join(DIFFERENTIABLE)} train through a supernet: compare them with --task, not --benchmark"
        )
    labels = [label for label, _, _ in plan]
    twice = next((label for label in labels if labels.count(label) > 1), None)
    if twice is not None:  # two runs under one label would share a table row
        parser.error(f"--variant {twice}: that label is taken by another run; choose another")
    if args.reference not in labels:
        parser.error(f"--reference {args.reference} is not among the runs {labels}")
    if args.rivals is None:
        args.rivals = list(RIVALS)  # tested against where they ran
    elif unknown := [r for r in args.rivals if r not in labels]:
        parser.error(f"--rivals {unknown[0]} is not among the runs {labels}")
    _check_plan(parser, plan, args)
    name = args.benchmark or args.task
    out = args.out or Path("outputs/compare") / name
    block = args.block or out.name
    if args.readme is not None:
        check_readme(args.readme, block)
    out.mkdir(parents=True, exist_ok=True)
    if args.benchmark:
        budget_cfg = int(load_config([f"+benchmark={name}", *args.overrides]).benchmark.evaluations)
        budgets = sorted(set(args.budgets or [budget_cfg]))  # a budget given twice made its rows twice
    runs: dict[str, list[dict]] = {}
    start = time.perf_counter()
    overrides = list(args.overrides)
    if args.jobs > 1 and not any(o.startswith("threads=") for o in overrides):
        overrides.append("threads=1")  # parallel runs share the cores instead of each taking all of them
    jobs = [
        (label, controller, seed, [*overrides, *extra])
        for label, controller, extra in plan
        for seed in range(args.seeds)
    ]
    if not args.benchmark:
        for label, controller, seed, job_overrides in jobs:
            run_dir = out / "runs" / f"{label}_seed{seed}"
            try:
                key = run_key(name, controller, seed, job_overrides, args.truth_seeds, args.truth_epochs)
                cfg = load_config([f"+task={name}", f"controller={controller}", f"seed={seed}", *job_overrides])
                stored_run(run_dir, key, cfg)
            except ValueError as err:
                parser.error(str(err))
    from functools import partial

    work = partial(_one_run, args=args, name=name, out=out, budgets=budgets if args.benchmark else None)
    with job_map(args.jobs) as run_all:
        for (label, _, seed, _), result in zip(jobs, run_all(work, jobs)):
            runs.setdefault(label, []).append(result)
            truth = f", ground truth {result['truth']:.4f}" if np.isfinite(result.get("truth", float("nan"))) else ""
            print(f"{label:>14} seed {seed}: best {result['final']:.4f}{truth} ({result['seconds']:.1f} s)", flush=True)
    if not args.benchmark:
        budgets = [min(len(r["best_metric"]) for rs in runs.values() for r in rs)]
    first = runs[args.reference][0]
    metric = first["metric"] + (" (%)" if first["scale"] == 0.01 else "")
    identity = first.get("identity")
    (out / "curves.csv").unlink(missing_ok=True)  # an earlier comparison's, in the plain format
    # mtime=0: the same curves give the same bytes, so a regenerated file changes only when its content does.
    with gzip.GzipFile(out / "curves.csv.gz", "wb", mtime=0) as raw, io.TextIOWrapper(raw, "utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["controller", "seed", "evaluation", "reward", "best_so_far", "best_metric"])
        for controller, results in runs.items():
            for seed, r in enumerate(results):
                for i, (rew, best, bm) in enumerate(zip(r["rewards"], r["best_so_far"], r["best_metric"]), start=1):
                    writer.writerow([controller, seed, i, f"{rew:.6g}", f"{best:.6g}", f"{bm / r['scale']:.6g}"])
    rows = summarise(runs, budgets, identity, args.reference, tuple(args.rivals))
    # Named after what was read, not the config's name: overriding benchmark.path or .metric shows up here.
    what = (
        f"{identity['name']} ({Path(identity['path']).name}, {identity['metric']})"
        if identity and identity["path"]
        else (identity["name"] if identity else name)
    )
    title = f"{what}: {args.seeds} seed{'s' if args.seeds != 1 else ''}, budgets {budgets}"
    write_text_atomic(out / "table.md", markdown(rows, metric, title, args.reference))
    write_json_atomic(
        out / "table.json",
        {
            "title": title,
            "metric": metric,
            "table": identity,
            "overrides": args.overrides,
            "variants": args.variant,
            "reference": args.reference,
            "block": block,
            "rows": rows,
        },
    )
    optimum = first["optimum"] / first["scale"] if np.isfinite(first["optimum"]) else None
    plot(runs, out / "curves.png", metric, title, optimum)
    if args.readme is not None:
        _write_readme(args.readme, block, title, metric, rows, args.reference)
    print(markdown(rows, metric, title, args.reference))
    print(f"wrote {out}/curves.csv.gz, curves.png, table.md, table.json in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    run_tool(main)

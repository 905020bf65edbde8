"""The summary of a Hydra multirun sweep: one row per job (table in Markdown and CSV) and plots across jobs.

A job is any folder under the sweep dir holding Hydra's ``.hydra/overrides.yaml``
or a ``status.json``. Whatever a job managed to write is used; a job that failed
or was killed shows up with that status and takes nothing else down.
"""

from __future__ import annotations

import csv
import math
import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlnas.sweep.jobs import RUN_STATES, STATUS_FILE
from rlnas.utils import atomic_file, is_number, parse_json, parse_yaml, save_figure

#: Cost columns of the table, in this order, when any job reports them.
COST_COLUMNS = ("params", "size_mb", "latency_ms", "mflops")

#: Per kind of search: the TensorBoard scalar plotted, its x axis, its y axis and where the metrics come from.
CURVES = {
    "supernet": ("reward/mean", "epoch", "mean reward of the sampled archs", "shared weights"),
    "benchmark": ("reward/best_so_far", "distinct architectures evaluated", "best reward so far", "table"),
    "trials": ("trials/best_so_far", "trial", "best reward so far", "trained alone"),
}


@dataclass
class JobRecord:
    """What one sweep job left on disk.

    Attributes:
        name: The job's folder name (Hydra's ``NUM_override,override``).
        path: The job's run dir.
        overrides: The job's command-line overrides, as Hydra saved them.
        status: ``completed``, ``failed``, ``interrupted``, ``running``, ``killed`` (a
            ``running`` job whose process is gone), ``unreadable`` (a file not as a run writes it) or ``unknown``.
        task: The task's name (a benchmark run's: ``benchmark NAME``).
        reward: The best architecture's reward (``None`` unless completed).
        metrics: Its validation metrics (``val_accuracy``, ``val_map``, ...).
        costs: Its costs (``params``, ``latency_ms``, ...).
        wall_s: Seconds from the job's start to its end (or to its last status).
        error: The one-line error of a failed job.
        description: The best architecture, as the space prints it.
    """

    name: str
    path: Path
    overrides: list[str]
    status: str
    task: str
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    wall_s: float | None = None
    error: str = ""
    description: str = ""
    #: ``supernet`` (weight sharing), ``benchmark`` (a table) or ``trials`` (each candidate trained alone).
    kind: str = "supernet"

    @property
    def num(self) -> int:
        """Hydra's job number (the folder name's prefix), for ordering."""
        head = self.name.split("_", 1)[0]
        return int(head) if head.isdigit() else 10**9


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        payload = parse_json(path.read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _process_gone(status: dict[str, Any]) -> bool:
    """Whether a ``running`` status was left by a process on this host that no longer exists."""
    if status.get("host") != socket.gethostname() or not isinstance(status.get("pid"), int):
        return False
    try:
        os.kill(status["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _numbers(values: Any, path: Path, key: str) -> dict[str, float]:
    """``key``'s names and numbers; ``null`` (a value the run could not measure) reads as NaN, shown blank.

    A run writes strict JSON (NaN and inf as ``null``), so a bare ``NaN`` or ``Infinity`` was written by
    someone else and is refused rather than shown as "nan".
    """
    if not isinstance(values, dict) or not all(v is None or is_number(v) for v in values.values()):
        raise ValueError(f"{path}: '{key}' must map names to numbers")
    bad = next((k for k, v in values.items() if v is not None and not math.isfinite(v)), None)
    if bad is not None:
        raise ValueError(f"{path}: '{key}' holds {values[bad]} for {bad!r}; a run writes no such number")
    return {str(k): math.nan if v is None else float(v) for k, v in values.items()}


def read_job(path: Path) -> JobRecord:
    """The :class:`JobRecord` of one job folder.

    A job whose files are not what a run writes (a tampered or foreign ``best_arch.json``,
    ``status.json`` or ``overrides.yaml``) is listed as ``unreadable``, its error naming the file.
    """
    try:
        return _read_job(path)
    except ValueError as err:
        return JobRecord(path.name, path, [], "unreadable", "", error=str(err))


def _read_job(path: Path) -> JobRecord:
    import yaml

    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides: list[str] = []
    if overrides_file.is_file():
        try:
            loaded = parse_yaml(overrides_file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{overrides_file}: not YAML ({type(err).__name__})") from None
        except ValueError as err:  # aliases, nesting too deep
            raise ValueError(f"{overrides_file}: not Hydra's list of overrides ({err})") from None
        if not isinstance(loaded, list) or not all(isinstance(o, str) for o in loaded):
            raise ValueError(f"{overrides_file}: not Hydra's list of overrides (key=value strings)")
        overrides = loaded
    task = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("task=")), "classification")
    status_file = path / STATUS_FILE
    status = _load_json(status_file)
    if status is None:
        if status_file.exists():  # a run writes it atomically: one that does not parse was edited or cut
            raise ValueError(f"{status_file}: not the JSON object a run writes")
        status = {}
    best = _load_json(path / "best_arch.json")
    state = status.get("status", "completed" if best else "unknown")
    if state not in (*RUN_STATES, "unknown"):
        raise ValueError(f"{status_file}: 'status' must be one of {list(RUN_STATES)}, got {state!r}"[:200])
    if state == "running" and best is None and _process_gone(status):
        state = "killed"
    wall_s = status.get("wall_s")
    if wall_s is not None and not is_number(wall_s):
        raise ValueError(f"{path / STATUS_FILE}: 'wall_s' must be a number of seconds, got {wall_s!r}"[:200])
    option = {o.lstrip("+").partition("=")[0]: o.partition("=")[2] for o in overrides}
    table = (best or {}).get("benchmark", option.get("benchmark"))
    if table is not None:
        kind, task = "benchmark", f"benchmark {table}"
    else:
        kind = "trials" if "trials" in option or (path / "trials.csv").is_file() else "supernet"
        task = str(best.get("task", task)) if best else task
    record = JobRecord(
        path.name, path, overrides, state, task, wall_s=wall_s, error=str(status.get("error", "")), kind=kind
    )
    if best is not None:
        where = path / "best_arch.json"
        if not is_number(best.get("reward")) or not math.isfinite(best["reward"]):
            raise ValueError(f"{where}: 'reward' must be a number, got {best.get('reward')!r}"[:200])
        record.reward = float(best["reward"])
        record.metrics = _numbers(best.get("metrics", {}), where, "metrics")
        record.costs = _numbers(best.get("costs", {}), where, "costs")
        record.description = str(best.get("description", ""))
    return record


def read_sweep(sweep_dir: str | Path) -> list[JobRecord]:
    """Every job under ``sweep_dir``, in Hydra's job order.

    Raises:
        FileNotFoundError: When ``sweep_dir`` does not exist, holds no job or is one run.
    """
    root = Path(sweep_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such sweep directory")
    dirs = {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")} | {p.parent for p in root.rglob(STATUS_FILE)}
    if (root / STATUS_FILE).is_file():  # it was summarised as a sweep of one job, into the run's own folder
        raise FileNotFoundError(
            f"{root}: a single run (it holds {STATUS_FILE}), not a sweep; pass the sweep's folder (hydra.sweep.dir)"
        )
    if not dirs:
        raise FileNotFoundError(f"{root}: no sweep jobs there (no .hydra/overrides.yaml or {STATUS_FILE} below it)")
    return sorted((read_job(d) for d in dirs), key=lambda r: (r.num, r.name))


def varying_overrides(jobs: list[JobRecord]) -> tuple[list[str], dict[str, list[str]]]:
    """The overrides shared by all jobs, and for each job the ones that set it apart."""
    common = set.intersection(*(set(j.overrides) for j in jobs)) if jobs else set()
    return sorted(common), {j.name: [o for o in j.overrides if o not in common] for j in jobs}


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def write_tables(jobs: list[JobRecord], out_dir: Path, sweep_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``sweep_summary.csv`` (every metric and cost as a column) and ``sweep_summary.md``.

    Args:
        jobs: The sweep's jobs, from ``read_sweep``.
        out_dir: Where to write the two files.
        sweep_dir: The sweep's folder, named in the Markdown title (``out_dir`` when not given).
    """
    common, varying = varying_overrides(jobs)
    metric_names = sorted({k for j in jobs for k in j.metrics})
    cost_names = [c for c in COST_COLUMNS if any(c in j.costs for j in jobs)]
    csv_path = out_dir / "sweep_summary.csv"
    with atomic_file(csv_path) as f:  # never through a symlink planted in the sweep dir
        writer = csv.writer(f)
        writer.writerow(
            ["job", "overrides", "status", "task", "reward", *metric_names, *cost_names, "wall_s", "error", "best_arch"]
        )
        for j in jobs:
            writer.writerow(
                [
                    j.name,
                    " ".join(varying[j.name]),
                    j.status,
                    j.task,
                    _fmt(j.reward, 6),
                    *(_fmt(j.metrics.get(m), 6) for m in metric_names),
                    *(j.costs.get(c, "") for c in cost_names),
                    _fmt(j.wall_s, 6),
                    j.error,
                    j.description,
                ]
            )
    lines = [
        f"# Sweep summary: {sweep_dir or out_dir}",
        "",
        f"{len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in Counter(j.status for j in jobs).items()) + ".",
        f"Overrides common to all jobs: `{' '.join(common) or '(none)'}`.",
        "",
        "| "
        + " | ".join(["job", "overrides", "status", "task", "reward", "metrics (val)", *cost_names, "wall s"])
        + " |",
        "|" + "---|" * (7 + len(cost_names)),
    ]
    for j in jobs:
        metrics = ", ".join(f"{k.removeprefix('val_')} {v:.3f}" for k, v in j.metrics.items())
        if j.status in ("failed", "unreadable") and j.error:
            metrics = f"error: {j.error}".replace("|", "\\|")
        cells = [
            str(j.num if j.num < 10**9 else j.name),
            f"`{' '.join(varying[j.name]) or '-'}`",
            j.status,
            j.task,
            "" if j.reward is None else f"{j.reward:.4f}",
            metrics,
            *(_fmt(j.costs.get(c)) for c in cost_names),
            _fmt(j.wall_s, 3),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    md_path = out_dir / "sweep_summary.md"
    with atomic_file(md_path) as f:
        f.write("\n".join(lines) + "\n")
    return csv_path, md_path


def reward_curve(job: JobRecord, tag: str | None = None) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of a scalar from the job's TensorBoard event files (empty when none).

    ``tag`` defaults to the job's kind's curve (:data:`CURVES`): the mean reward per epoch of a weight-sharing
    search, the best reward so far per evaluation of a benchmark run or per trial of a trial search.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tag = tag or CURVES[job.kind][0]

    log_dir = job.path / "tensorboard"
    if not log_dir.is_dir():
        return [], []
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return [], []
    # A resumed run logs an epoch again after its checkpoint: keep the last value per step.
    by_step = {e.step: e.value for e in events.Scalars(tag)}
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def _pareto_rows(job: JobRecord) -> tuple[str, str, list[tuple[float, float]]]:
    """``(metric, cost, [(cost, metric), ...])`` from the job's ``pareto.csv``."""
    path = job.path / "pareto.csv"
    if not path.is_file():
        return "", "", []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return "", "", []
    from rlnas.costs import COST_NAMES

    columns = [c for c in rows[0] if c not in ("arch", "reward")]
    metric = next((c for c in columns if c not in COST_NAMES), "reward")
    cost = "params" if "params" in columns else next((c for c in columns if c in COST_NAMES), "")
    if not cost:
        return metric, "", []
    return metric, cost, [(float(r[cost]), float(r[metric])) for r in rows]


def _label(varying: list[str]) -> str:
    return " ".join(o.lstrip("+") for o in varying) or "(all jobs alike)"


def plot_sweep(jobs: list[JobRecord], out_dir: Path) -> list[Path]:
    """``sweep_rewards.png`` (reward curves per task) and ``sweep_pareto.png`` (fronts of every job per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    _, varying = varying_overrides(jobs)
    # One panel per task and kind of search: their curves have different axes.
    tasks = sorted({(j.task, j.kind) for j in jobs})
    written = []
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for ax, (task, kind) in zip(axes[0], tasks):
        for j in (j for j in jobs if (j.task, j.kind) == (task, kind)):
            steps, values = reward_curve(j)
            if steps:
                ax.plot(steps, values, marker="o", ms=3, label=_label(varying[j.name]))
        _, x_label, y_label, _ = CURVES[kind]
        ax.set(title=f"{task}: {y_label}", xlabel=x_label, ylabel=y_label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if not ax.get_lines():
            ax.text(0.5, 0.5, "no curve logged (TensorBoard files missing)", ha="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out_dir / "sweep_rewards.png")
    save_figure(fig, written[-1], dpi=110)

    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.2), squeeze=False)
    for ax, (task, kind) in zip(axes[0], tasks):
        metric, cost, everything = "", "", []
        for j in (j for j in jobs if (j.task, j.kind) == (task, kind)):
            job_metric, job_cost, points = _pareto_rows(j)
            if points:
                metric, cost = job_metric, job_cost
                xs, ys = zip(*sorted(points))
                ax.step(xs, ys, where="post", marker="o", ms=4, alpha=0.8, label=_label(varying[j.name]))
                everything += points
        if everything:
            from rlnas.search.selection import pareto_front

            front = sorted(everything[i] for i in pareto_front([p[1] for p in everything], [p[0] for p in everything]))
            xs, ys = zip(*front)
            ax.step(xs, ys, where="post", color="black", lw=2, ls="--", label="front across jobs")
            ax.set_xscale("log")
            ax.legend(fontsize=7)
        ax.set(title=f"{task}: Pareto fronts", xlabel=cost or "cost", ylabel=f"val {metric} ({CURVES[kind][3]})")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(out_dir / "sweep_pareto.png")
    save_figure(fig, written[-1], dpi=110)
    return written


def summarize(sweep_dir: str | Path, out_dir: str | Path | None = None, plots: bool = True) -> list[Path]:
    """Writes the sweep's table (Markdown, CSV) and plots; returns the files written.

    Args:
        sweep_dir: The sweep's folder (``outputs/multirun/DATE/TIME``).
        out_dir: Where to write; the sweep dir by default.
        plots: Whether to draw the PNGs.
    """
    jobs = read_sweep(sweep_dir)
    out = Path(out_dir or sweep_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    written = list(write_tables(jobs, out, sweep_dir))
    if plots:
        written += plot_sweep(jobs, out)
    return written

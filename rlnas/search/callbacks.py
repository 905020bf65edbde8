"""Callbacks writing a search's outputs: TensorBoard, history.csv, best_arch.json, progress."""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rlnas.evaluators.base import Evaluation
from rlnas.search.loop import Callback, EpochStats, Search, SearchResult
from rlnas.search.selection import pareto_front
from rlnas.spaces.base import Arch
from rlnas.utils import atomic_file, save_atomic, save_figure, write_json_atomic
from rlnas.utils.timing import elapsed_and_eta

log = logging.getLogger("rlnas.search")


def arch_to_str(arch: Sequence[int]) -> str:
    return " ".join(str(a) for a in arch)


class TensorBoardLogger(Callback):
    """Scalars under ``reward/``, ``controller/``, ``supernet/``; config and best arch as text.

    Args:
        log_dir: Folder of the event files.
        hparams: Flat hyper-parameters logged at the start (text).
        compared: Those logged with the final metrics and costs (HPARAMS tab);
            all of ``hparams`` when not given.
        config_text: The resolved config, logged as text.
        image_every: Epochs between prediction previews.
        purge_step: On resume, the first epoch to log again (later events are dropped).
    """

    def __init__(
        self,
        log_dir: str | Path,
        hparams: dict[str, Any] | None = None,
        config_text: str = "",
        image_every: int = 5,
        purge_step: int | None = None,
        compared: dict[str, Any] | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run drops the events logged after its checkpoint (purge_step).
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self.image_every = image_every
        self.hparams = hparams or {}
        self.compared = self.hparams if compared is None else compared
        self.config_text = config_text

    def on_search_start(self, search: Search) -> None:
        if self.config_text:
            self.writer.add_text("config", "```\n" + self.config_text + "\n```", 0)
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.hparams.items())
        self.writer.add_text("hparams", "| key | value |\n|---|---|\n" + rows, 0)

    def on_epoch_end(self, search: Search, stats: EpochStats) -> None:
        w, step = self.writer, stats.epoch
        w.add_scalar("supernet/loss", stats.supernet_loss, step)
        if stats.train_metric is not None:
            w.add_scalar("supernet/train_accuracy", stats.train_metric, step)
        w.add_scalar("supernet/lr", stats.lr, step)
        if stats.rewards:
            w.add_scalar("reward/mean", float(np.mean(stats.rewards)), step)
            w.add_scalar("reward/max", float(np.max(stats.rewards)), step)
            w.add_scalar(f"supernet/val_{search.evaluator.reward_metric}", float(np.mean(stats.metric_values)), step)
        for key, value in stats.controller.items():
            w.add_scalar(f"controller/{key}", value, step)
        for name, values in stats.costs.items():
            w.add_scalar(f"cost/{name}", float(np.mean(values)), step)
        for name, value in stats.faults.items():
            w.add_scalar(f"faults/{name}", value, step)
        if stats.rewards:
            penalty = np.asarray(stats.rewards) - np.asarray(stats.metric_values)
            w.add_scalar("reward/penalty", float(penalty.mean()), step)
        w.add_scalar("charts/epoch_seconds", stats.seconds, step)
        if self.image_every and stats.rewards and (stats.epoch + 1) % self.image_every == 0:
            self._preview(search, step)
        if search.controller.differentiable and stats.controller:
            self._alphas(search, step)
        w.flush()

    def _alphas(self, search: Search, step: int) -> None:
        """A differentiable controller's softmax(alpha) per decision (heat map) and its derived architecture."""
        ctrl = search.controller
        self.writer.add_figure("controller/alphas", ctrl.figure(f"{ctrl.mode}: softmax(alpha), epoch {step}"), step)
        self.writer.add_text("controller/derived", search.space.describe(ctrl.derived()), step)

    @torch.no_grad()
    def _preview(self, search: Search, step: int) -> None:
        """Predictions of the epoch's best architecture on a few validation images."""
        best = max((row for row in search.history if row["epoch"] == step), key=lambda row: row["reward"])
        x, y = search.data.val.x[:8], search.data.val.y[:8]
        search.model.eval()
        images = search.task.preview(x, search.model(x, best["arch"]), y)
        if images is not None:
            self.writer.add_images("predictions/val", images, step, dataformats="NCHW")

    def on_search_end(self, search: Search, result: SearchResult) -> None:
        best = result.best
        self.writer.add_text("best_arch", search.space.describe(best.arch), result.epochs)
        final = {f"final/val_{k}": v for k, v in best.evaluation.metrics.items()}
        final["final/reward"] = best.reward
        final.update({f"final/{k}": v for k, v in best.proxy.items()})
        final.update({f"final/{k}": v for k, v in best.evaluation.costs.items()})
        hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.compared.items()}
        self.writer.add_hparams(hparams, final, run_name=".")
        figure = pareto_figure(search)
        if figure is not None:
            self.writer.add_figure("charts/pareto", figure, result.epochs)
        self.writer.close()


def pareto_points(search: Search) -> tuple[list[dict[str, Any]], list[int], str, str]:
    """Unique evaluated architectures, the Pareto-optimal ones (metric vs selection cost), and the axes."""
    metric, cost = search.evaluator.reward_metric, search.selection.cost
    best: dict[Arch, dict[str, Any]] = {}
    for row in search.history:  # keep each architecture's best minibatch score
        if cost in row and (row["arch"] not in best or row[metric] > best[row["arch"]][metric]):
            best[row["arch"]] = row
    rows = list(best.values())
    front = pareto_front([r[metric] for r in rows], [r[cost] for r in rows]) if rows else []
    return rows, front, metric, cost


def pareto_figure(search: Search):
    """A matplotlib scatter of every evaluated architecture with the Pareto front, or ``None``."""
    rows, front, metric, cost = pareto_points(search)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.scatter([r[cost] for r in rows], [r[metric] for r in rows], s=8, c="0.7", label="evaluated")
    pts = sorted((rows[i][cost], rows[i][metric]) for i in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", c="tab:red", ms=4, label="Pareto front")
    ax.set_xlabel(cost)
    ax.set_ylabel(f"validation {metric} (minibatch)")
    ax.set_title(f"{len(rows)} architectures, {len(front)} on the front")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


class HistoryWriter(Callback):
    """Appends every scored architecture to ``history.csv`` as it happens.

    At the start the file is rewritten from the search's history, so a resumed
    run drops the rows scored after its checkpoint and writes them again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None

    @staticmethod
    def _format(row: dict[str, Any]) -> dict[str, str]:
        return {
            "epoch": row["epoch"],
            "arch": arch_to_str(row["arch"]),
            **{k: f"{v:.6g}" for k, v in row.items() if k not in ("epoch", "arch")},
        }

    def on_search_start(self, search: Search) -> None:
        self._columns = None
        if search.history:
            self._write([self._format(row) for row in search.history])
        elif self.path.exists():
            self.path.unlink()

    def _write(self, rows: list[dict[str, str]]) -> None:
        if self._columns is None:
            self._columns = list(rows[0])
            with atomic_file(self.path) as f:
                writer = csv.DictWriter(f, self._columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self._columns, extrasaction="ignore").writerows(rows)

    def on_evaluation(
        self,
        search: Search,
        epoch: int,
        archs: Sequence[Arch],
        evaluations: Sequence[Evaluation],
        rewards: Sequence[float],
    ) -> None:
        self._write(
            [
                self._format({"epoch": epoch, "arch": arch, "reward": r, **ev.metrics, **ev.costs})
                for arch, ev, r in zip(archs, evaluations, rewards)
            ]
        )


class ProgressBar(Callback):
    """A tqdm bar over epochs showing loss and rewards; a log line per epoch where stderr is no terminal.

    Args:
        epochs: Epochs of the search.
        disable: True: nothing; False: the bar always; None: the bar on a
            terminal, else one line per epoch through logging (log files,
            nohup, CI and cluster jobs see progress too).
    """

    def __init__(self, epochs: int, disable: bool | None = None) -> None:
        self.epochs = epochs
        self.bar = tqdm(total=epochs, desc="search", unit="epoch", disable=disable, dynamic_ncols=True)
        self.lines = disable is None and self.bar.disable
        self.started = time.perf_counter()
        self.first_epoch = 0
        self.best = -math.inf

    def on_search_start(self, search: Search) -> None:
        self.started = time.perf_counter()
        self.first_epoch = search.start_epoch
        if search.start_epoch:  # resumed
            self.bar.update(search.start_epoch)

    def on_epoch_end(self, search: Search, stats: EpochStats) -> None:
        post = {"loss": f"{stats.supernet_loss:.3f}"}
        if stats.rewards:
            self.best = max(self.best, float(np.max(stats.rewards)))
            post.update({"reward": f"{np.mean(stats.rewards):.3f}", "max": f"{np.max(stats.rewards):.3f}"})
        else:
            post["phase"] = "warm-up"
        self.bar.set_postfix(post)
        self.bar.update(1)
        if self.lines:
            done = stats.epoch + 1
            best = f", best so far {self.best:.4f}" if math.isfinite(self.best) else ""
            log.info(
                "epoch %d/%d: %s%s, %s elapsed, ETA %s",
                done,
                self.epochs,
                ", ".join(f"{k} {v}" for k, v in post.items()),
                best,
                *elapsed_and_eta(self.started, done - self.first_epoch, self.epochs - done),
            )

    def on_search_end(self, search: Search, result: SearchResult) -> None:
        self.bar.close()


class OutputWriter(Callback):
    """Writes ``best_arch.json``, ``summary.json`` and the final weights to the run dir."""

    def __init__(self, run_dir: str | Path, extra: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.extra = extra or {}

    def on_search_end(self, search: Search, result: SearchResult) -> None:
        space = search.space
        best = result.best
        payload = {
            "arch": list(best.arch),
            "decoded": space.decode(best.arch),
            "description": space.describe(best.arch),
            "metrics": {f"val_{k}": v for k, v in best.evaluation.metrics.items()},
            "costs": dict(best.evaluation.costs),
            "reward": best.reward,
            **({"proxy": dict(best.proxy)} if best.proxy else {}),
            **self.extra,
        }
        if search.selection.rule == "top_k":
            payload["selected"] = [
                {
                    "arch": list(c.arch),
                    "description": space.describe(c.arch),
                    "reward": c.reward,
                    "metrics": {f"val_{k}": v for k, v in c.evaluation.metrics.items()},
                    "costs": c.evaluation.costs,
                    **({"proxy": dict(c.proxy)} if c.proxy else {}),
                }
                for c in result.selected
            ]
        self.write_pareto(search)
        summary = {
            "best_reward": best.reward,
            "last_epoch_mean_reward": result.last_epoch_mean_reward,
            "final_controller_mean_reward": result.controller_mean_reward,
            "final_random_mean_reward": result.random_mean_reward,
            "epochs": result.epochs,
            "seconds": round(result.seconds, 2),
            "evaluated_architectures": len(search.history),
            "processes": search.comm.world,  # ranks the (last) start ran on (torchrun)
            "top_candidates": [
                {"arch": list(c.arch), "reward": c.reward, "metrics": c.evaluation.metrics} for c in result.candidates
            ],
        }
        write_json_atomic(self.run_dir / "summary.json", summary)
        save_atomic(search.model.state_dict(), self.run_dir / "supernet.pt")
        search.controller.save(self.run_dir)
        # Last: its presence marks a finished run (a resume after a kill before it redoes the outputs).
        write_json_atomic(self.run_dir / "best_arch.json", payload)

    def write_pareto(self, search: Search) -> None:
        """``pareto.csv`` (the front, cheapest first) and ``pareto.png``."""
        rows, front, metric, cost = pareto_points(search)
        names = sorted({k for r in rows for k in r} - {"epoch", "arch", "reward"})
        with atomic_file(self.run_dir / "pareto.csv") as f:
            writer = csv.writer(f)
            writer.writerow(["arch", "reward", *names])
            for i in sorted(front, key=lambda i: rows[i][cost]):
                writer.writerow(
                    [
                        arch_to_str(rows[i]["arch"]),
                        f"{rows[i]['reward']:.6g}",
                        *(f"{rows[i].get(n, float('nan')):.6g}" for n in names),
                    ]
                )
        figure = pareto_figure(search)
        if figure is not None:
            save_figure(figure, self.run_dir / "pareto.png")

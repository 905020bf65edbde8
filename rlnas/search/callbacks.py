"""Callbacks writing a search's outputs: TensorBoard, history.csv, best_arch.json, progress."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from rlnas.evaluators.base import Evaluation
from rlnas.search.loop import Callback, EpochStats, Search, SearchResult
from rlnas.spaces.base import Arch


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON through a temporary file and ``os.replace`` (never half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def arch_to_str(arch: Sequence[int]) -> str:
    return " ".join(str(a) for a in arch)


class TensorBoardLogger(Callback):
    """Scalars under ``reward/``, ``controller/``, ``supernet/``; config and best arch as text.

    Args:
        log_dir: Folder of the event files.
        hparams: Flat hyper-parameters logged at the start (text) and with the
            final metrics (HPARAMS tab).
    """

    def __init__(
        self, log_dir: str | Path, hparams: dict[str, Any] | None = None, config_text: str = "", image_every: int = 5
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))
        self.image_every = image_every
        self.hparams = hparams or {}
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
            w.add_scalar("supernet/val_accuracy", float(np.mean(stats.metric_values)), step)
        for key, value in stats.controller.items():
            w.add_scalar(f"controller/{key}", value, step)
        w.add_scalar("charts/epoch_seconds", stats.seconds, step)
        if self.image_every and stats.rewards and (stats.epoch + 1) % self.image_every == 0:
            self._preview(search, step)
        w.flush()

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
        hparams = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in self.hparams.items()}
        self.writer.add_hparams(hparams, final, run_name=".")
        self.writer.close()


class HistoryWriter(Callback):
    """Appends every scored architecture to ``history.csv`` as it happens."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None

    def on_evaluation(
        self, search: Search, epoch: int, archs: Sequence[Arch], evaluations: Sequence[Evaluation], rewards: Sequence[float]
    ) -> None:
        rows = []
        for arch, ev, r in zip(archs, evaluations, rewards):
            rows.append({"epoch": epoch, "arch": arch_to_str(arch), "reward": f"{r:.6g}",
                         **{k: f"{v:.6g}" for k, v in {**ev.metrics, **ev.costs}.items()}})
        if self._columns is None:
            self._columns = list(rows[0])
            with self.path.open("w", newline="") as f:
                csv.DictWriter(f, self._columns).writeheader()
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self._columns, extrasaction="ignore").writerows(rows)


class ProgressBar(Callback):
    """A tqdm bar over epochs showing loss and rewards."""

    def __init__(self, epochs: int, disable: bool | None = None) -> None:
        self.bar = tqdm(total=epochs, desc="search", unit="epoch", disable=disable, dynamic_ncols=True)

    def on_epoch_end(self, search: Search, stats: EpochStats) -> None:
        post = {"loss": f"{stats.supernet_loss:.3f}"}
        if stats.rewards:
            post.update({"reward": f"{np.mean(stats.rewards):.3f}", "max": f"{np.max(stats.rewards):.3f}"})
        else:
            post["phase"] = "warm-up"
        self.bar.set_postfix(post)
        self.bar.update(1)

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
            **self.extra,
        }
        write_json_atomic(self.run_dir / "best_arch.json", payload)
        summary = {
            "best_reward": best.reward,
            "last_epoch_mean_reward": result.last_epoch_mean_reward,
            "final_controller_mean_reward": result.controller_mean_reward,
            "final_random_mean_reward": result.random_mean_reward,
            "epochs": result.epochs,
            "seconds": round(result.seconds, 2),
            "evaluated_architectures": len(search.history),
            "top_candidates": [
                {"arch": list(c.arch), "reward": c.reward, "metrics": c.evaluation.metrics} for c in result.candidates
            ],
        }
        write_json_atomic(self.run_dir / "summary.json", summary)
        torch.save(search.model.state_dict(), self.run_dir / "supernet.pt")
        torch.save(search.controller.state_dict(), self.run_dir / "controller.pt")

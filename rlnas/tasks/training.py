"""Standalone training: the recipe, a fresh child network of an architecture, its training and evaluation.

Shared by the deploy room (``rlnas.retrain``) and the ground-truth evaluators
(``rlnas.evaluators.standalone``, SynFlow in ``proxies``), which is why it
lives here, beside the tasks, and not in either of them.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from tqdm.auto import tqdm

from rlnas.data.base import DataSplits, Split, warn_batch_beyond_split
from rlnas.spaces.base import SearchSpace
from rlnas.supernet.registry import build_child
from rlnas.tasks.base import Network, Task
from rlnas.utils import data_seed, is_whole, section_values, timing
from rlnas.utils.trust import checked_instantiate

log = logging.getLogger(__name__)

#: Training settings a trial search may decide per candidate (``trials.hparams``) and a pick
#: carries to its retraining: the recipe's ...
RECIPE_HPARAMS = ("lr", "lr_min", "weight_decay", "batch_size", "momentum", "optimizer", "augment", "grad_clip")
#: ... and the task head's.
TASK_HPARAMS = ("dropout", "label_smoothing")


#: Largest float32: a recipe's numbers meet the weights (float32) in the optimiser's step.
FLOAT32_MAX = torch.finfo(torch.float32).max


def check_recipe_numbers(values: dict[str, Any], prefix: str = "train") -> None:
    """Refuses a non-number for a numeric :class:`Recipe` field (``train.lr=abc``), naming ``prefix.key``.

    Raises:
        ValueError: ``prefix.key='abc' must be a number``.
    """
    kinds = {f.name: f.type for f in dataclasses.fields(Recipe)}
    for key, value in values.items():
        numeric = kinds.get(key) in ("int", "float", int, float)
        if numeric and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{prefix}.{key}={value!r} must be a number")
        if numeric and value is not None and math.isfinite(value) and abs(value) > FLOAT32_MAX:
            # The optimiser steps in the weights' float32: lr=1e308 failed at the first step ("overflow").
            raise ValueError(f"{prefix}.{key}={value!r} is past float32's range (3.4e38), which training computes in")


def check_decay(lr: float, weight_decay: float, prefix: str) -> None:
    """Refuses a weight decay that, at the full learning rate, would flip or blow up every weight.

    Each step scales the weights by ``1 - lr * weight_decay`` (AdamW's decoupled decay,
    Loshchilov & Hutter, 2019; SGD's L2 term gives the same factor), so a product of 1 or
    more drives them through zero; the loss then turns NaN and the error would blame the
    learning rate alone.

    Raises:
        ValueError: ``prefix.weight_decay=... times prefix.lr=... must be < 1``.
    """
    if lr * weight_decay >= 1:
        raise ValueError(
            f"{prefix}.weight_decay={weight_decay:g} times {prefix}.lr={lr:g} is {lr * weight_decay:g}; "
            "it must be < 1 (each step scales the weights by 1 - lr * weight_decay)"
        )


@dataclass
class Recipe:
    """The training recipe (``train:`` with the search's values filled in)."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    lr_min: float
    momentum: float
    nesterov: bool
    weight_decay: float
    grad_clip: float
    augment: bool

    def __post_init__(self) -> None:
        check_recipe_numbers(dataclasses.asdict(self))
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not is_whole(value) or int(value) < 1:
                raise ValueError(f"train.{name} must be a whole number >= 1, got {value}")
            setattr(self, name, int(value))
        for name in ("nesterov", "augment"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"train.{name} must be true or false, got {getattr(self, name)!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"train.weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"train.momentum must be in [0, 1), got {self.momentum}")
        # A negative bound would flip every gradient (clip_grad_norm_ scales by bound / norm); 0 turns clipping off.
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(f"train.grad_clip must be a finite number >= 0 (0: no clipping), got {self.grad_clip}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"train.optimizer={self.optimizer!r} is unknown; allowed: ['sgd', 'adamw']")
        if not (math.isfinite(self.lr) and self.lr > 0 and 0 <= self.lr_min <= self.lr):
            raise ValueError(f"train.lr={self.lr} and train.lr_min={self.lr_min} need 0 <= lr_min <= lr, lr > 0")
        check_decay(self.lr, self.weight_decay, "train")
        if self.optimizer == "sgd" and self.nesterov and not self.momentum > 0:  # torch.optim.SGD refuses it mid-run
            raise ValueError(f"train.nesterov=true needs train.momentum > 0, got {self.momentum}")


def with_settings(recipe: Recipe, task: Task, settings: dict[str, Any] | None) -> tuple[Recipe, Task]:
    """``recipe`` and ``task`` with a candidate's training settings (a joint search's ``train/*`` decisions).

    The task is copied when a head setting (dropout, label smoothing) changes, so
    the caller's task is left as it was.

    Raises:
        ValueError: On a setting that is neither a recipe's nor a task head's, or a value the recipe refuses.
    """
    settings = dict(settings or {})
    # Any recipe field but its length (a trial search's trials.train may set nesterov, say); epochs stay the caller's.
    fields = [f.name for f in dataclasses.fields(Recipe) if f.name != "epochs"]
    unknown = sorted(set(settings) - set(fields) - set(TASK_HPARAMS))
    if unknown:
        raise ValueError(f"training setting {unknown[0]!r} is unknown; allowed: {[*fields, *TASK_HPARAMS]}")
    recipe = dataclasses.replace(recipe, **{k: v for k, v in settings.items() if k in fields})
    head = {k: v for k, v in settings.items() if k in TASK_HPARAMS}
    if head:
        missing = sorted(set(head) - set(vars(task)))
        if missing:
            raise ValueError(f"training setting {missing[0]!r} does not apply to the {task.name} task")
        task = copy.copy(task)
        for name, value in head.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) < 1:
                raise ValueError(f"training setting {name}={value!r} must be a fraction in [0, 1)")
            setattr(task, name, float(value))
    return recipe, task


def make_recipe(train_cfg: DictConfig, search_cfg: DictConfig) -> Recipe:
    """``train:`` values, with nulls taken from the search run's ``search:``."""
    given = section_values(train_cfg, Recipe, "train")
    values = {k: (v if v is not None else search_cfg.get(k)) for k, v in given.items()}
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"train.{missing[0]} is null and the search config has no search.{missing[0]}")
    return Recipe(**values)


def search_parts(search_cfg: DictConfig, device: torch.device) -> tuple[Any, Task, DataSplits]:
    """The search's space, task and data split on ``device``.

    The search's data seed fixes the split, so the test split is the one the search never saw.
    """
    space = checked_instantiate(search_cfg.space, SearchSpace, "space")
    task: Task = checked_instantiate(search_cfg.task, Task, "task")
    return space, task, task.load_data(seed=data_seed(search_cfg)).to(device)


def standalone_network(space: Any, task: Task, data: DataSplits, arch: Sequence[int]) -> Network:
    """A fresh standalone child of ``arch`` with the task's head, on the data's device."""
    child = build_child(space, list(arch), data.in_channels)
    return Network(child, task.build_head(child.out_channels, data)).to(data.train.x.device)


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, split: Split, batch_size: int = 256) -> dict[str, float]:
    """The task's metrics over a whole split."""
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    for x, y in split.chunks(batch_size):
        outputs.append(model(x))
        targets.append(y)
    model.train(was_training)
    return task.metrics(outputs, targets)


def train(
    network: nn.Module,
    task: Task,
    data: DataSplits,
    recipe: Recipe,
    seed: int,
    epochs: int | None = None,
    lr_scale: float = 1.0,
    desc: str = "retrain",
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> list[dict[str, float]]:
    """Trains ``network`` in place on the train split; returns per-epoch loss and val metric.

    Args:
        on_epoch: Called after each epoch with its number (from 1) and the
            network (in train mode; put it back there when it scores): a trial
            reports its fidelity there, and an early stop raises there.

    Raises:
        FloatingPointError: When the loss becomes NaN or infinite (the step is named).
    """
    epochs = epochs or recipe.epochs
    device = data.train.x.device
    steps_per_epoch = math.ceil(len(data.train) / recipe.batch_size)
    warn_batch_beyond_split("the training batch size", recipe.batch_size, len(data.train))
    lr = recipe.lr * lr_scale
    if recipe.optimizer == "adamw":
        optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            network.parameters(),
            lr=lr,
            momentum=recipe.momentum,
            nesterov=recipe.nesterov,
            weight_decay=recipe.weight_decay,
        )
    # Cosine annealing per step (Loshchilov & Hutter, 2017), as in the search.
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * steps_per_epoch, eta_min=min(recipe.lr_min, lr)
    )
    generator = torch.Generator(device).manual_seed(seed)
    history = []
    network.train()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=None, dynamic_ncols=True)
    # The bar is off where stderr is no terminal (a log file, nohup, a cluster job): a line now and then
    # instead, so an hour of retraining is not silent; a training of seconds prints none.
    lines = timing.ProgressLines(on=bar.disable)
    for epoch in bar:
        order = torch.randperm(len(data.train), device=device, generator=generator)
        total = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            x, y = data.train.x[idx], data.train.y[idx]
            if recipe.augment:
                x, y = task.augment(x, y, generator)
            loss = task.loss(network(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip:
                nn.utils.clip_grad_norm_(network.parameters(), recipe.grad_clip)
            optimizer.step()
            scheduler.step()
            total += loss.detach()
        mean_loss = float(total) / steps_per_epoch  # one host sync per epoch
        if not math.isfinite(mean_loss):
            raise FloatingPointError(
                f"{desc}: loss is {mean_loss} in epoch {epoch + 1}; lower train.lr (now {lr:g}) or set train.grad_clip"
            )
        row = {"epoch": epoch + 1, "loss": mean_loss}
        if epoch + 1 == epochs or (epoch + 1) % max(1, epochs // 6) == 0:
            row[f"val_{task.reward_metric}"] = evaluate(network, task, data.val)[task.reward_metric]
        history.append(row)
        shown = {k: f"{v:.3f}" for k, v in row.items() if k.startswith("val_")}
        bar.set_postfix(loss=f"{mean_loss:.3f}", **shown)
        if lines.due():
            log.info(
                "%s: epoch %d/%d, loss %.3f%s, %s elapsed, ETA %s",
                desc,
                epoch + 1,
                epochs,
                mean_loss,
                "".join(f", {k} {v}" for k, v in shown.items()),
                *lines.elapsed_and_eta(epoch + 1, epochs - epoch - 1),
            )
        if on_epoch is not None:
            on_epoch(epoch + 1, network)
            network.train()
    network.eval()
    return history

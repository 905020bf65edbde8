"""Ground truth for a found architecture: train it alone, test it on the split the search never saw.

A search's own scores come from the supernet it trained on its own samples and
from the validation split it selected on; both favour the search. What a user
gets is the standalone network, so searches are compared by this instead: the
architecture is built as a plain child network, trained from scratch with the
retrain recipe (``conf/retrain.yaml``'s ``train:``, shorter) for several
seeds, and scored on the test split of the search's own data split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rlnas.utils import conf_dir

if TYPE_CHECKING:
    from rlnas.tasks.training import Recipe

#: The retrain config whose ``train:`` recipe the ground truth shortens.
RETRAIN_CONFIG = conf_dir() / "retrain.yaml"


def standalone_recipe(search_cfg: DictConfig, epochs: int) -> Recipe:
    """The retrain recipe (``conf/retrain.yaml``'s ``train:``) for ``epochs`` epochs, as a search trained with it.

    A trial search trains its candidates with ``trials.train`` over that recipe,
    so its trials and the ground truth of its picks use the same one; nulls take
    the search's ``search:`` values.

    Raises:
        ValueError: When a value cannot make a recipe.
    """
    from rlnas.tasks.training import make_recipe

    trials_train = OmegaConf.select(search_cfg, "trials.train") or {}
    train_cfg = OmegaConf.merge(OmegaConf.load(RETRAIN_CONFIG).train, trials_train, {"epochs": int(epochs)})
    return make_recipe(train_cfg, search_cfg.get("search") or OmegaConf.create())


def ground_truth(
    search_cfg: DictConfig,
    arch: Sequence[int],
    seeds: int = 3,
    epochs: int = 20,
    device: str = "auto",
    first_seed: int = 0,
    parts: tuple[Any, Any, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Test metric of ``arch`` trained standalone, once per seed.

    Args:
        search_cfg: The search's resolved config (task, space, data seed and ``search:`` recipe values).
        arch: The architecture (the space's tuple of ints).
        seeds: Independent trainings (initialisation and data order differ).
        epochs: Epochs of each training (the retrain recipe's other settings stay).
        device: ``auto``, ``cpu`` or ``cuda``.
        first_seed: Seed of the first training; the others follow (more seeds extend earlier results).
        parts: The search's ``(space, task, data)`` when already loaded (several architectures, one load).
        settings: The candidate's own training settings over the recipe (a joint search's
            ``best_arch.json`` ``train``: learning rate, batch size, dropout, ...).

    Returns:
        ``metric`` (the task's reward metric), ``mean``, ``std`` (ddof 1; 0 for one seed) and ``values``
        (test split); ``val_values`` and ``val_losses``: the same networks on the validation split, the
        split a search scores on (what a ranker that scores there can know at best).

    Raises:
        ValueError: When ``seeds`` or ``epochs`` is below 1.
    """
    from rlnas.data.base import require_test_split
    from rlnas.tasks.training import evaluate, search_parts, standalone_network, train, with_settings
    from rlnas.utils import resolve_device

    if seeds < 1 or epochs < 1 or first_seed < 0:
        raise ValueError(
            f"ground truth needs seeds >= 1, epochs >= 1 and first_seed >= 0, got seeds={seeds}, "
            f"epochs={epochs}, first_seed={first_seed}"
        )
    recipe = standalone_recipe(search_cfg, epochs)
    space, task, data = parts if parts is not None else search_parts(search_cfg, resolve_device(device))
    require_test_split(data, "the ground truth")
    recipe, task = with_settings(recipe, task, settings)
    values, val_values, val_losses = [], [], []
    for seed in range(first_seed, first_seed + seeds):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = standalone_network(space, task, data, arch)
        train(network, task, data, recipe, seed, desc=f"ground truth seed {seed}")
        values.append(float(evaluate(network, task, data.test)[task.reward_metric]))
        val_values.append(float(evaluate(network, task, data.val)[task.reward_metric]))
        val_losses.append(split_loss(network, task, data.val))  # train() leaves it in eval mode
    return {
        "metric": task.reward_metric,
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "values": values,
        "val_values": val_values,
        "val_losses": val_losses,
    }


@torch.no_grad()
def split_loss(forward: Callable[[torch.Tensor], Any], task: Any, split: Any, chunk_size: int = 256) -> float:
    """The task's training loss of ``forward`` (a network already in eval mode) over a whole split.

    Weighted by chunk size, so it is the loss of the split whatever the chunks.
    """
    total, count = 0.0, 0
    for x, y in split.chunks(chunk_size):
        total += float(task.loss(forward(x), y)) * len(x)
        count += len(x)
    return total / max(1, count)


def compare_with_random(
    search_cfg: DictConfig,
    pick: Sequence[int],
    randoms: Sequence[Sequence[int]],
    seeds: int = 1,
    epochs: int = 10,
    device: str = "auto",
    settings: Sequence[dict[str, Any] | None] | None = None,
    on_trained: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The found architecture against uniformly drawn ones, by ground truth (standalone, test split).

    What a user of a search wants to know: does the pick retrain better than
    what random search would have handed them? ``pick`` is trained ``seeds``
    times, each of ``randoms`` once (a draw of random search), all with the
    same recipe and data split as :func:`ground_truth`. In a joint search
    ``settings`` holds the training settings of the pick, then of each random
    draw (drawn with it), each applied over the recipe. ``on_trained(done,
    total)`` is called as the trainings finish (the pick's ``seeds`` count as
    many), for a progress line.

    Returns:
        ``metric``, ``epochs``, ``pick`` (its :func:`ground_truth` result) and ``random``
        (per architecture its arch and test value), with their ``random_mean`` and ``random_best``.
    """
    from rlnas.tasks.training import search_parts
    from rlnas.utils import resolve_device

    parts = search_parts(search_cfg, resolve_device(device))
    settings = list(settings) if settings is not None else [None] * (1 + len(randoms))
    if len(settings) != 1 + len(randoms):
        raise ValueError(f"settings: one per architecture ({1 + len(randoms)}) needed, got {len(settings)}")
    total = seeds + len(randoms)
    found = ground_truth(search_cfg, pick, seeds, epochs, device, parts=parts, settings=settings[0])
    if on_trained is not None:
        on_trained(seeds, total)
    drawn = []
    for done, (arch, extra) in enumerate(zip(randoms, settings[1:]), start=seeds + 1):
        value = ground_truth(search_cfg, arch, 1, epochs, device, parts=parts, settings=extra)["values"][0]
        drawn.append({"arch": [int(a) for a in arch], **({"train": dict(extra)} if extra else {}), "value": value})
        if on_trained is not None:
            on_trained(done, total)
    values = [d["value"] for d in drawn]
    return {
        "metric": found["metric"],
        "epochs": int(epochs),
        "pick": {"arch": [int(a) for a in pick], **({"train": dict(settings[0])} if settings[0] else {}), **found},
        "random": drawn,
        "random_mean": float(np.mean(values)) if values else float("nan"),
        "random_best": float(np.max(values)) if values else float("nan"),
    }

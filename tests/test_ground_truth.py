"""Ground truth: a found architecture trained standalone and tested on the split the search never saw."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rlnas.evaluators.standalone import ground_truth
from tools._common import load_config
from tools.compare_controllers import pivot, summarise


def test_ground_truth_trains_each_seed_and_tests_on_the_unseen_split():
    cfg = load_config(["+experiment=smoke"])
    from hydra.utils import instantiate

    space = instantiate(cfg.space, _convert_="all")
    arch = space.sample(np.random.default_rng(0))
    truth = ground_truth(cfg, arch, seeds=2, epochs=3, device="cpu")
    assert truth["metric"] == "accuracy" and len(truth["values"]) == 2
    assert all(0.3 < v <= 1.0 for v in truth["values"])  # 10 classes: chance is 0.1
    assert truth["mean"] == pytest.approx(np.mean(truth["values"]))
    assert truth["values"][0] != truth["values"][1] or truth["std"] == 0.0
    # The same networks on the validation split (where a search scores): a metric and the task's loss each.
    assert len(truth["val_values"]) == len(truth["val_losses"]) == 2
    assert all(0.3 < v <= 1.0 for v in truth["val_values"])
    assert all(0.0 < loss < 2.3 for loss in truth["val_losses"])  # below chance: -log(1/10)
    # Deterministic per seed: the same call gives the same figures.
    assert ground_truth(cfg, arch, seeds=1, epochs=3, device="cpu")["values"] == truth["values"][:1]
    # More seeds extend earlier results: seed 1 alone is the second training.
    assert ground_truth(cfg, arch, seeds=1, epochs=3, device="cpu", first_seed=1)["values"] == truth["values"][1:]


def test_a_joint_search_pick_is_trained_with_its_own_settings_over_the_trials_recipe(monkeypatch):
    """A trial search trained its pick with trials.train and the pick's train/* decisions: ground truth too."""
    import rlnas.tasks.training as training

    seen = []
    monkeypatch.setattr(training, "train", lambda net, task, data, recipe, seed, **kw: seen.append((recipe, task)))
    cfg = load_config(["+experiment=smoke", "+trials=default", "+trials.train.weight_decay=0.002"])
    ground_truth(cfg, [0] * 21, seeds=1, epochs=2, device="cpu", settings={"lr": 0.3, "batch_size": 16, "dropout": 0.4})
    recipe, task = seen[0]
    assert (recipe.epochs, recipe.lr, recipe.batch_size, recipe.weight_decay) == (2, 0.3, 16, 0.002)
    assert task.dropout == 0.4
    # Without settings: the recipe's own values and the task's own head.
    ground_truth(cfg, [0] * 21, seeds=1, epochs=2, device="cpu")
    recipe, task = seen[1]
    assert (recipe.lr, recipe.batch_size) == (cfg.search.lr, cfg.search.batch_size) and task.dropout == cfg.task.dropout


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lr_typo": 0.1}, "training setting 'lr_typo' is unknown"),
        ({"dropout": 1.5}, "training setting dropout=1.5 must be a fraction in \\[0, 1\\)"),
        ({"momentum": 0.0}, "train.nesterov=true needs train.momentum > 0"),
    ],
)
def test_unusable_training_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        ground_truth(load_config(["+experiment=smoke"]), [0] * 21, seeds=1, epochs=1, device="cpu", settings=settings)


@pytest.mark.parametrize("seeds, epochs, first", [(0, 3, 0), (2, 0, 0), (2, 3, -1)])
def test_ground_truth_refuses_empty_recipes(seeds, epochs, first):
    with pytest.raises(ValueError, match="seeds >= 1, epochs >= 1 and first_seed >= 0"):
        ground_truth(load_config(["+experiment=smoke"]), [0], seeds=seeds, epochs=epochs, first_seed=first)


def test_comparison_leads_with_ground_truth_for_whole_searches():
    def run(truth, final):
        return {
            "rewards": [0.5],
            "best_so_far": [0.5],
            "best_metric": [0.5],
            "truth": truth,
            "final": final,
            "last_epoch": 0.4,
            "scale": 1.0,
            "seconds": 1.0,
            "optimum": float("nan"),
        }

    runs = {
        "random": [run(0.90, 0.95), run(0.91, 0.96), run(0.92, 0.94)],
        "evolution": [run(0.95, 0.97), run(0.96, 0.96), run(0.97, 0.98)],
    }
    rows = summarise(runs, [1])
    truth = [r for r in rows if r["budget"] == "ground truth (standalone, test)"]
    assert [r["controller"] for r in truth] == ["random", "evolution"]
    assert truth[1]["mean"] == pytest.approx(0.96) and truth[1]["p_vs_random"] < 0.01
    table = pivot(rows, ["ground truth (standalone, test)", "final (full val)", 1])
    assert table.splitlines()[0].startswith("| controller | ground truth (standalone, test) | p vs random |")


def test_settings_the_run_would_not_read_are_refused():
    """ground_truth.seeds=3 on the digits (ground_truth.random: 0) ran the search and compared nothing;
    distributed.sync_batchnorm=true without torchrun ran one process, the setting unread."""
    from hydra import compose, initialize_config_dir

    from rlnas.config import CONF_DIR, ConfigError, check_unread_overrides

    def check(*overrides: str, torchrun: bool = False) -> None:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides))
        check_unread_overrides(cfg, list(overrides), torchrun=torchrun)

    with pytest.raises(ConfigError, match=re.escape("ground_truth.seeds=3: the ground-truth comparison runs only")):
        check("+task=classification", "ground_truth.seeds=3")
    with pytest.raises(ConfigError, match=re.escape("ground_truth.epochs=2: a benchmark run trains nothing")):
        check("+benchmark=toy", "ground_truth.epochs=2")
    check("+task=classification", "ground_truth.seeds=3", "ground_truth.random=4")
    check("+task=mnist1d", "ground_truth.epochs=2")  # its config compares with random architectures
    with pytest.raises(ConfigError, match=re.escape("distributed.sync_batchnorm=true: distributed.* settings apply")):
        check("+task=classification", "distributed.sync_batchnorm=true")
    check("+task=classification", "distributed.sync_batchnorm=true", torchrun=True)

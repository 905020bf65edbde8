"""Zero-cost proxies and the final choice that ranks with them (search.final_proxy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from rlnas.evaluators.proxies import arch_synflow, proxy_adjusted, synflow
from rlnas.search.builder import build_search
from rlnas.spaces import MacroSpace, NB201Space
from rlnas.supernet import build_child
from tests.conftest import ROOT


def test_the_combined_order_is_the_mean_of_both_ranks_and_keeps_the_measured_values():
    values = [0.9, 0.8, 0.7, 0.6]
    # ranks (higher better): values 4 3 2 1, proxy 1 4 3 2 -> sums 5 7 5 3
    adjusted = proxy_adjusted(values, [0.0, 3.0, 2.0, 1.0])
    assert adjusted == [0.8, 0.9, 0.7, 0.6]  # the tie at 5 keeps the measured order (0.9 before 0.7)
    assert sorted(adjusted) == sorted(values)  # only the order changes: penalties see the metric's own scale
    # A proxy that agrees changes nothing; a missing (NaN) proxy counts as the worst.
    assert proxy_adjusted(values, [4.0, 3.0, 2.0, 1.0]) == values
    assert proxy_adjusted([0.9, 0.8, 0.7], [float("nan"), 2.0, 1.0]) == [0.8, 0.9, 0.7]
    with pytest.raises(ValueError, match="3 values but 2 proxy scores"):
        proxy_adjusted([0.1, 0.2, 0.3], [1.0, 2.0])


def _head(child: torch.nn.Module) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.child, self.fc = child, torch.nn.Linear(child.out_channels[-1], 10)

        def forward(self, x):
            return self.fc(self.child(x)[-1].mean((2, 3)))

    return Net()


def test_synflow_needs_no_data_leaves_the_network_alone_and_marks_disconnected_cells_down():
    space = NB201Space()
    torch.manual_seed(0)
    conv = _head(build_child(space, [3] * 6, 3))  # every edge nor_conv_3x3
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    score = synflow(conv, (3, 8, 8))
    assert math.isfinite(score)
    assert synflow(conv, (3, 8, 8)) == score  # deterministic
    assert all(torch.equal(before[k], v) for k, v in conv.state_dict().items())  # scored on a copy
    assert conv.training and next(conv.parameters()).dtype == torch.float32
    # A cell of `none` edges cuts every path from the input: only the layers after it still count.
    assert synflow(_head(build_child(space, [0] * 6, 3)), (3, 8, 8)) < score - 10


def test_synflow_prefers_the_wider_network_of_the_same_shape():
    # SynFlow sums |theta * dR/dtheta| over every path: doubling the width multiplies the paths.
    narrow = _head(build_child(MacroSpace(num_layers=3, channels=[8, 16]), [0, 0, 0, 0, 0, 0], 1))
    wide = _head(build_child(MacroSpace(num_layers=3, channels=[16, 32]), [0, 0, 0, 0, 0, 0], 1))
    assert synflow(wide, (1, 8, 8)) > synflow(narrow, (1, 8, 8))


def _cfg(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["+task=classification", "+experiment=smoke", *overrides])


def test_the_final_choice_ranks_supernet_accuracy_together_with_synflow(tmp_path):
    search = build_search(
        _cfg("search.final_proxy=synflow", "search.top_k=4", "search.final_samples=4"), tmp_path, progress=False
    )
    result = search.run()
    candidates = result.candidates
    assert len(candidates) >= 3
    accuracy = [c.evaluation.metrics["accuracy"] for c in candidates]
    proxy = [c.proxy["synflow"] for c in candidates]
    assert proxy == [arch_synflow(search.space, search.task, search.data, c.arch) for c in candidates]
    # The reward (metric: accuracy alone) is the accuracy each candidate's combined rank gives it.
    assert [c.reward for c in candidates] == pytest.approx(proxy_adjusted(accuracy, proxy))
    assert result.best.reward == max(c.reward for c in candidates)
    written = json.loads((tmp_path / "best_arch.json").read_text())
    assert written["proxy"]["synflow"] == pytest.approx(result.best.proxy["synflow"])
    assert written["metrics"]["val_accuracy"] == pytest.approx(result.best.evaluation.metrics["accuracy"])
    assert np.isfinite(written["proxy"]["synflow"])


@pytest.mark.parametrize("track, tracked", [("[]", ("params",)), ("null", ("params", "size_mb", "size_int8_mb"))])
def test_an_empty_cost_list_tracks_only_what_the_selection_needs(tmp_path, track, tracked):
    """``costs.track=[]`` is a choice (no latency or size columns), not a request for the default list."""
    search = build_search(_cfg(f"costs.track={track}"), tmp_path, progress=False)
    assert search.evaluator.costs.track[: len(tracked)] == tracked
    assert (len(search.evaluator.costs.track) == 1) == (track == "[]")


def test_the_final_rescoring_can_train_each_candidate_alone_first_and_leaves_the_supernet_as_it_was(tmp_path):
    """search.final_finetune: weight inheritance and a short training of each final candidate's path."""
    search = build_search(
        _cfg(
            "search.final_finetune=10",
            "search.top_k=2",
            "search.final_samples=1",
            "costs.track=[]",
            "search.random_baseline=0",
        ),
        tmp_path,
        progress=False,
    )
    result = search.run()
    shared = {k: v.clone() for k, v in search.model.state_dict().items()}
    arch = result.best.arch
    tuned = search.finetuned_evaluation(arch, 1).metrics
    assert search.finetuned_evaluation(arch, 1).metrics == tuned  # seeded by the search's seed and the place
    assert search.evaluator.evaluate_full(arch).metrics != tuned  # the shared weights' own score differs
    assert all(torch.equal(shared[k], v) for k, v in search.model.state_dict().items())  # trained on a copy
    assert search.evaluator.model is search.model
    assert result.best.evaluation.metrics in [search.finetuned_evaluation(arch, i).metrics for i in range(1, 4)]

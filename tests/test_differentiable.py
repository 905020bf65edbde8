"""DARTS and GDAS: weighted supernet paths, alpha learning, and whole searches through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlnas.controllers.differentiable import DifferentiableController
from rlnas.spaces import MacroSpace, NB201Space, RNNCellSpace
from rlnas.supernet import build_supernet
from tests.conftest import ROOT, run_cli

SPACES = {
    "macro": lambda: MacroSpace(num_layers=4, channels=[8, 16]),
    "nb201": lambda: NB201Space(channels=[8, 16, 32], cells_per_stage=1),
}


@pytest.mark.parametrize("name", SPACES)
def test_one_hot_weights_run_exactly_the_single_path(name):
    """GDAS's hard sample must train the same network a single-path step trains, with gradients to alpha."""
    space = SPACES[name]()
    torch.manual_seed(0)
    supernet = build_supernet(space, in_channels=3).eval()
    x = torch.randn(4, 3, 12, 12)
    for seed in range(4):
        arch = space.sample(np.random.default_rng(seed))
        weights = [
            torch.nn.functional.one_hot(torch.tensor(a), int(n)).float() for a, n in zip(arch, space.num_choices)
        ]
        got = supernet.forward_weighted(x, weights, [[a] for a in arch])[-1]
        torch.testing.assert_close(got, supernet(x, arch)[-1], rtol=0, atol=0)


def test_nb201_mixture_is_the_weighted_sum_of_its_paths():
    space = SPACES["nb201"]()
    torch.manual_seed(0)
    supernet = build_supernet(space, in_channels=3).eval()
    x = torch.randn(2, 3, 12, 12)
    a, b = (2,) * 6, (3,) * 6  # every edge one op, then every edge another (cells with linear paths)
    mix = [torch.tensor([0.0, 0.0, 0.25, 0.75, 0.0]) for _ in range(6)]
    got = supernet.forward_weighted(x, mix)[-1]
    # The mixture runs every op on every edge: it differs from both paths and depends on the weights.
    assert not torch.allclose(got, supernet(x, a)[-1]) and not torch.allclose(got, supernet(x, b)[-1])
    assert not torch.allclose(got, supernet.forward_weighted(x, [m.flip(0) for m in mix])[-1])
    # One-hot weights: the weighted sum is exactly that one path (the other ops get weight 0).
    for path in (a, b):
        one_hot = [torch.nn.functional.one_hot(torch.tensor(op), 5).float() for op in path]
        torch.testing.assert_close(supernet.forward_weighted(x, one_hot)[-1], supernet(x, path)[-1])


@pytest.mark.parametrize("mode", ["darts", "gdas"])
def test_alpha_learns_the_choice_that_lowers_the_loss(mode):
    """A loss that favours choice 2 of every decision drives softmax(alpha) there, through path_weights."""
    space = MacroSpace(num_layers=3, channels=[8])
    ctrl = DifferentiableController(space, seed=0, mode=mode, lr=0.05)
    start = ctrl.probabilities()
    for step in range(150):
        ctrl.set_progress(step / 150)
        weights, active = ctrl.path_weights()
        # Loss of the computed paths: 1 for every choice but choice 2 (op decisions) / 1 (skips).
        loss = sum(w.sum() - w[min(2, len(w) - 1)] for w in weights)
        ctrl.arch_step(loss, weights)
    end = ctrl.probabilities()
    for d, (p0, p1) in enumerate(zip(start, end)):
        good = min(2, len(p1) - 1)
        assert p1[good] > p0[good] + 0.1, (mode, d, p0, p1)
    assert ctrl.derived() == tuple(min(2, int(n) - 1) for n in space.num_choices)
    assert ctrl.best_guess(3)[0] == ctrl.derived()


def test_expected_cost_term_pushes_alpha_to_cheaper_choices():
    space = MacroSpace(num_layers=3, channels=[8])
    ctrl = DifferentiableController(space, seed=0, mode="darts", lr=0.05, cost_weight=1.0)
    cost = {"conv3x3": 600.0, "sepconv3x3": 100.0, "maxpool3x3": 70.0, "avgpool3x3": 70.0}

    def costs(arch):
        return {"params": sum(cost[space.layer_op(arch, i)] for i in range(space.num_layers))}

    ctrl.set_costs(costs, {"params": 250.0})  # conv everywhere (1800) is far above the limit
    assert float(ctrl.cost_penalty().detach()) > 0
    for _ in range(100):
        ctrl.arch_step(torch.zeros(()), [])
    p = ctrl.probabilities()
    assert all(p[space.op_index[i]][0] < 0.1 for i in range(space.num_layers))  # conv3x3 priced out
    assert float(ctrl.cost_penalty().detach()) < 0.05


def test_state_round_trip_and_unsupported_spaces():
    space = SPACES["macro"]()
    ctrl = DifferentiableController(space, seed=3, mode="gdas")
    weights, _ = ctrl.path_weights()
    ctrl.arch_step(sum(w[0] for w in weights), weights)
    ctrl.set_progress(0.5)
    copy = DifferentiableController(space, seed=0, mode="gdas")
    copy.load_state_dict(ctrl.state_dict())
    assert [p.tolist() for p in copy.probabilities()] == [p.tolist() for p in ctrl.probabilities()]
    assert copy.tau == ctrl.tau == pytest.approx(5.05)
    assert [w.tolist() for w in copy.path_weights()[0]] == [w.tolist() for w in ctrl.path_weights()[0]]
    with pytest.raises(ValueError, match="controller=darts needs a supernet with a weighted forward"):
        DifferentiableController(RNNCellSpace(), mode="darts")
    with pytest.raises(ValueError, match="controller.mode='snas' is unknown"):
        DifferentiableController(space, mode="snas")


@pytest.mark.parametrize("controller", ["darts", pytest.param("gdas", marks=pytest.mark.slow)])
def test_differentiable_search_runs_end_to_end(controller, tmp_path):
    proc = run_cli(f"controller={controller}", "+experiment=smoke", "search.epochs=3", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    alphas = json.loads((tmp_path / "alphas.json").read_text())
    best = json.loads((tmp_path / "best_arch.json").read_text())
    assert alphas["mode"] == controller and len(alphas["decisions"]) == len(best["arch"])
    assert all(abs(sum(d["probabilities"]) - 1) < 1e-5 for d in alphas["decisions"])
    assert (tmp_path / "alphas.png").stat().st_size > 0
    assert best["metrics"]["val_accuracy"] > 0
    header = (tmp_path / "history.csv").read_text().splitlines()[0]
    assert "arch" in header


def test_gdas_temperature_reaches_tau_min_at_the_last_epoch(tmp_path):
    from hydra import compose, initialize_config_dir

    from rlnas.search.builder import build_search

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "+task=classification",
                "controller=gdas",
                "+experiment=smoke",
                "search.epochs=4",
                "search.warmup_epochs=1",
                "search.supernet_steps=1",
                "search.random_baseline=0",
                "search.final_samples=1",
            ],
        )
    search = build_search(cfg, tmp_path, progress=False)
    seen = []
    original = search.controller.set_progress
    search.controller.set_progress = lambda fraction: (seen.append(fraction), original(fraction))[1]
    search.run()
    assert seen == [0.0, 0.5, 1.0]  # the first alpha epoch at tau_max, the last at tau_min
    assert search.controller.tau == pytest.approx(cfg.controller.tau_min)

"""Searching for the best architecture: the elite memory the RL controllers share, their defaults on
the toy table, masks honoured by every sampling controller, and the comparison tool's statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hydra.utils import instantiate

from rlnas.controllers.elite import EliteMemory
from tests.conftest import ROOT, evaluations_to_optimum, toy_space
from tools._common import load_config
from tools.compare_controllers import published_for, welch_p

ALL = ["random", "grid", "tpe", "evolution", "enas", "ppo", "maskable_ppo", "recurrent_ppo"]


def default_controller(name: str, space, seed: int):
    """The controller exactly as ``controller=NAME`` configures it (the defaults a user gets)."""
    cfg = load_config([f"controller={name}"]).controller
    kwargs = {k: v for k, v in cfg.items() if k not in ("init_from",)}
    return instantiate(kwargs, space=space, seed=seed, _convert_="all")


# -- the shared mechanism --------------------------------------------------------
def test_risk_seeking_advantages_reinforce_only_the_top_and_ignore_the_scale():
    memory = EliteMemory(risk_quantile=0.5)
    rewards = np.array([0.1, 0.4, 0.2, 0.9, 0.5, 0.3])
    adv = memory.advantages(rewards)
    assert (adv[rewards < np.quantile(rewards, 0.5)] == 0).all()
    assert adv.argmax() == 3 and (adv >= 0).all()
    # Percent, fractions or tiny differences: the same advantages.
    np.testing.assert_allclose(memory.advantages(rewards * 100 + 7), adv)
    np.testing.assert_allclose(memory.advantages(rewards * 1e-3 + 0.93), adv, rtol=1e-6)
    assert not memory.advantages([0.5, 0.5, 0.5]).any()  # nothing to learn from a flat batch
    assert memory.advantages([0.2, float("nan"), 0.8])[1] == 0


def test_elite_queue_keeps_the_best_distinct_architectures():
    memory = EliteMemory(elite_size=2)
    memory.add([(0, 0), (1, 1), (2, 2)], [0.1, 0.9, 0.5])
    memory.add([(1, 1), (3, 3)], [0.8, float("nan")])
    assert memory.elite_archs() == [(1, 1), (2, 2)]
    assert memory.elites[(1, 1)] == 0.8  # the latest reward of an architecture counts
    assert (3, 3) in memory.seen
    clone = EliteMemory(elite_size=2)
    clone.load_state_dict(memory.state_dict())
    assert clone.elites == memory.elites and clone.seen == memory.seen


def test_novel_proposals_skip_evaluated_architectures_until_none_are_left():
    rng = np.random.default_rng(0)
    memory = EliteMemory(novel_tries=10)
    memory.add([(a,) for a in range(8)], [0.0] * 8)

    def sample(k):
        return [(int(a),) for a in rng.integers(0, 10, size=k)]

    assert sorted(memory.novel(sample, 2)) == [(8,), (9,)]
    # Fewer new architectures than asked for: the rest are plain samples, never fewer than n.
    assert len(memory.novel(sample, 5)) == 5


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"elite_size": -1}, "controller.elite_size"),
        ({"risk_quantile": 0.0}, "controller.risk_quantile"),
        ({"risk_quantile": 1.5}, "controller.risk_quantile"),
        ({"novel_tries": -2}, "controller.novel_tries"),
    ],
)
def test_bad_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        EliteMemory(**kwargs)


# -- the defaults on the toy table -----------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "enas",
        "maskable_ppo",
        pytest.param("ppo", marks=pytest.mark.slow),
        pytest.param("recurrent_ppo", marks=pytest.mark.slow),
    ],
)
def test_default_rl_controllers_reach_the_hidden_optimum_on_most_seeds(name):
    """One of 2**20 architectures within 300 evaluations (random search: p ~ 0.03 % a seed)."""
    space = toy_space()
    hits = 0
    for seed in range(5):
        target = space.sample(np.random.default_rng(100 + seed))
        hits += evaluations_to_optimum(default_controller(name, space, seed), target, budget=300) is not None
    assert hits >= 4, f"{name} reached the optimum on {hits} of 5 seeds"


# -- hard-limit masks ------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_every_sampling_controller_honours_extra_action_masks(name, small_space):
    ctrl = default_controller(name, small_space, 0)
    op_steps = set(small_space.op_index)
    # A hard-limit style mask: operation 0 is never allowed, nor a skip into the last layer.
    last_skips = set(range(len(small_space))) - op_steps
    last = max(last_skips)

    def mask(prefix):
        t = len(prefix)
        return np.array([not ((t in op_steps and c == 0) or (t == last and c == 1)) for c in range(4)])

    ctrl.action_mask = mask
    rng = np.random.default_rng(0)
    for _ in range(6):  # past evolution's random start and TPE's start-up trials
        archs = ctrl.propose(5)
        assert len(archs) == 5
        for arch in archs:
            assert small_space.validate(arch) == tuple(arch)
            assert all(arch[t] != 0 for t in op_steps), (name, arch)
            assert arch[last] == 0, (name, arch)
        ctrl.observe(archs, list(rng.random(5)))


# -- the comparison's statistics -----------------------------------------------------
def test_welch_p_is_nan_where_the_test_is_undefined():
    assert math.isnan(welch_p([0.9], [0.1, 0.2, 0.3]))  # one value: no variance estimate
    assert math.isnan(welch_p([0.5, 0.5, 0.5], [0.5, 0.5]))  # identical constants
    assert math.isnan(welch_p([0.9, 0.9], [0.1, 0.1]))  # two constants apart: not "p = 0"
    assert math.isnan(welch_p([94.37, 94.37 + 1e-13], [93.1, 93.1]))  # float noise is no variance
    assert math.isnan(welch_p([], [0.1, 0.2]))
    p = welch_p([0.9, 0.9, 0.9], [0.1, 0.3, 0.2])  # one constant group beside a varying one is defined
    assert 0 < p < 0.01
    assert welch_p([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == pytest.approx(1.0)


def test_published_figures_belong_to_their_table_and_metric(tmp_path):
    from tools.compare_controllers import run_benchmark

    table = ROOT.parent / "shared" / "benchmarks" / "nb201_cifar10_test.csv"
    if not table.is_file():
        pytest.skip("the NB201 table is not beside the checkout")
    nb201 = run_benchmark("nb201_cifar10", "random", 0, 5, [])["identity"]
    assert published_for(nb201)["evolution"] == (93.92, 0.30)
    # The same rows under another name, or another metric column: none of NB201's figures.
    copy = tmp_path / "mine.csv"
    lines = table.read_text().splitlines()
    copy.write_text("\n".join([lines[0] + ",other", *(line + ",1.0" for line in lines[1:])]) + "\n")
    other = run_benchmark("nb201_cifar10", "random", 0, 5, [f"benchmark.path={copy}"])["identity"]
    assert other["path"] == str(copy) and published_for(other) == {}
    metric = run_benchmark("nb201_cifar10", "random", 0, 5, [f"benchmark.path={copy}", "benchmark.metric=other"])
    assert metric["identity"]["metric"] == "other" and published_for(metric["identity"]) == {}

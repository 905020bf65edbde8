import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlnas.controllers import ENASController, RandomController
from rlnas.costs import CostModel, LatencyTable
from rlnas.env import ArchitectureEnv
from rlnas.evaluators import Evaluation
from rlnas.rewards import (
    FeasibilityMask,
    HardReward,
    InfeasibleConstraintError,
    MetricReward,
    MnasReward,
    TunasAbsReward,
    WeightedReward,
    reward_number,
)
from rlnas.spaces import MacroSpace
from rlnas.supernet import build_child, build_supernet
from rlnas.tasks import ClassificationHead, Network
from tests.conftest import MatchEvaluator, toy_space

EV = Evaluation({"accuracy": 0.9}, {"latency_ms": 10.0, "size_mb": 0.5, "params": 2e5})


def test_metric_reward():
    assert MetricReward("accuracy")(EV) == 0.9
    with pytest.raises(KeyError, match="reward.metric='f1'"):
        MetricReward("f1")(EV)


def test_mnas_soft_and_hard_against_hand_computed_values():
    soft = MnasReward("accuracy", {"latency_ms": 5.0})
    assert soft(EV) == pytest.approx(0.9 * 2.0**-0.07)
    assert MnasReward("accuracy", {"latency_ms": 20.0})(EV) == pytest.approx(0.9 * 0.5**-0.07)
    hard = MnasReward("accuracy", {"latency_ms": 5.0}, mode="hard")
    assert hard(EV) == pytest.approx(0.9 * 2.0**-1)
    assert MnasReward("accuracy", {"latency_ms": 20.0}, mode="hard")(EV) == pytest.approx(0.9)
    two = MnasReward("accuracy", {"latency_ms": 5.0, "size_mb": 1.0})
    assert two(EV) == pytest.approx(0.9 * 2.0**-0.07 * 0.5**-0.07)


def test_a_cost_of_zero_or_below_is_named_not_a_complex_or_a_zero_division():
    """A table's cost column of 0 made MnasNet's (0 / target) ** -0.07 a ZeroDivisionError traceback, and a
    negative one a complex number (TypeError: float() of 'complex')."""
    free = Evaluation({"accuracy": 0.9}, {"params": 0.0})
    with pytest.raises(ValueError, match=r"reward.targets.params: an architecture has params=0, .* use reward=tunas"):
        MnasReward("accuracy", {"params": 10.0})(free)
    assert MnasReward("accuracy", {"params": 10.0}, mode="hard")(free) == pytest.approx(0.9)  # alpha 0: no factor
    assert TunasAbsReward("accuracy", {"params": 10.0})(free) == pytest.approx(0.9 - 0.07)
    for cost in (-5.0, float("nan")):
        rewards = [
            MnasReward("accuracy", {"params": 10.0}),
            TunasAbsReward("accuracy", {"params": 10.0}),
            WeightedReward("accuracy", {"params": 10.0}, {"params": 0.1}),
        ]
        for reward in rewards:
            with pytest.raises(ValueError, match=rf"reward.targets.params: an architecture has params={cost}; a cost"):
                reward(Evaluation({"accuracy": 0.9}, {"params": cost}))


def test_tunas_abs_hard_and_weighted_against_hand_computed_values():
    assert TunasAbsReward("accuracy", {"latency_ms": 5.0})(EV) == pytest.approx(0.9 - 0.07 * 1.0)
    assert TunasAbsReward("accuracy", {"latency_ms": 20.0}, beta=-0.5)(EV) == pytest.approx(0.9 - 0.5 * 0.5)
    assert HardReward("accuracy", {"size_mb": 1.0})(EV) == 0.9
    assert HardReward("accuracy", {"size_mb": 1.0, "latency_ms": 5.0}, penalty=-1.0)(EV) == -1.0
    w = WeightedReward("accuracy", {"params": 1e5, "latency_ms": 20.0}, {"params": 0.1, "latency_ms": 0.2})
    assert w(EV) == pytest.approx(0.9 - 0.1 * 2.0 - 0.2 * 0.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MnasReward(targets={"watts": 3}), r"reward.targets.watts is not a cost"),
        (lambda: MnasReward(targets={"latency_ms": 0}), r"reward.targets.latency_ms must be > 0"),
        (lambda: MnasReward(targets={"latency_ms": 1}, beta=0.5), r"reward.beta must be <= 0"),
        (lambda: MnasReward(targets={"latency_ms": 1}, mode="medium"), r"reward.mode='medium'"),
        (lambda: TunasAbsReward(targets={"size_mb": 1}, beta=0.1), r"reward.beta must be < 0"),
        (lambda: WeightedReward(targets={"params": 1}, weights={"params": -1}), r"reward.weights.params must be > 0"),
        (lambda: WeightedReward(targets={"params": 1}, weights={"mflops": 1}), r"reward.weights.mflops has no"),
        (lambda: HardReward(targets={}), r"reward.targets must set"),
    ],
)
def test_reward_config_errors_name_the_key(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_missing_cost_names_the_target():
    with pytest.raises(KeyError, match="reward.targets.mflops"):
        MnasReward("accuracy", {"mflops": 1.0})(EV)


@pytest.fixture(scope="module")
def cost_setup():
    space = MacroSpace(num_layers=5, ops=["conv5x5", "sepconv3x3", "maxpool3x3"], channels=[8, 16])
    supernet = build_supernet(space, 1)
    head = ClassificationHead(16, 10)
    factory = lambda arch: Network(build_child(space, arch, 1), ClassificationHead(16, 10))  # noqa: E731
    lut = LatencyTable.measure(supernet, head, (1, 8, 8), torch.device("cpu"), warmup=1, repeats=3)
    return space, CostModel(space, supernet, head, factory, (1, 8, 8), lut, track=["params", "latency_ms"])


def test_params_from_module_table_equal_the_standalone_child(cost_setup):
    space, model = cost_setup
    rng = np.random.default_rng(0)
    for _ in range(15):
        arch = space.sample(rng)
        child = model.child_factory(arch)
        assert model(arch)["params"] == sum(p.numel() for p in child.parameters())
    full = model.full(arch)
    assert full["size_mb"] == pytest.approx(full["params"] * 4e-6) and full["mflops"] > 0


def test_flops_grow_with_kernel_size(cost_setup):
    space, model = cost_setup

    def all_ops(choice):
        arch = [0] * len(space)
        for t in space.op_index:
            arch[t] = choice
        return space.validate(arch)

    cheap, dear = all_ops(2), all_ops(0)  # max-pools vs conv5x5 everywhere, no skips
    assert model.mflops(dear) > 5 * model.mflops(cheap)


def test_latency_table_is_saved_and_reused(cost_setup, tmp_path):
    space, model = cost_setup
    model.latency.save(tmp_path / "lut.json")
    again = LatencyTable.load(tmp_path / "lut.json")
    arch = space.sample(np.random.default_rng(1))
    used = model.supernet.used_modules(arch)
    assert again.predict(used) == pytest.approx(model.latency.predict(used))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json: not a latency table"):
        LatencyTable.load(tmp_path / "bad.json")


def _param_mask(cost_setup, limit):
    space, model = cost_setup
    return space, model, FeasibilityMask(space, model, {"params": limit})


def test_impossible_limit_is_reported(cost_setup):
    with pytest.raises(InfeasibleConstraintError, match=r"reward.targets.params=10 cannot be met"):
        _param_mask(cost_setup, 10)


@settings(max_examples=40, deadline=None)
@given(choices=st.lists(st.integers(0, 5), min_size=15, max_size=15), limit=st.sampled_from([1500, 2500, 4000]))
def test_masked_env_only_builds_feasible_archs(cost_setup, choices, limit):
    space, model, mask = _param_mask(cost_setup, limit)
    env = ArchitectureEnv(space, MatchEvaluator([0] * len(space)), feasibility=mask)
    env.reset(seed=0)
    for c in choices:
        allowed = np.flatnonzero(env.action_masks())
        assert len(allowed) > 0
        _, _, done, _, info = env.step(int(allowed[c % len(allowed)]))
    assert done and model(info["arch"])["params"] <= limit


def test_controllers_sample_only_feasible_archs_under_masks(cost_setup):
    space, model, mask = _param_mask(cost_setup, 2000)
    unmasked = RandomController(space, seed=0).propose(200)
    assert any(model(a)["params"] > 2000 for a in unmasked)  # the limit binds
    for ctrl in (RandomController(space, seed=0), ENASController(space, seed=0)):
        ctrl.action_mask = mask.mask
        archs = ctrl.propose(100)
        assert all(model(a)["params"] <= 2000 for a in archs)
        ctrl.observe(archs[:10], [0.5] * 10)  # scoring under the same masks stays finite
    assert torch.isfinite(ctrl.log_prob(archs[:5])).all()


def test_an_input_too_small_for_the_space_names_the_image_size():
    """2x2 images shrink to 1x1 feature maps: one sample cannot be run with batch statistics (torch's error)."""
    supernet = build_supernet(MacroSpace(num_layers=2, channels=[8, 16]), 1)
    with pytest.raises(ValueError, match=r"an input of \[1, 2, 2\] shrinks to single-pixel .* task.data.image_size"):
        LatencyTable.measure(supernet, torch.nn.Identity(), (1, 2, 2), torch.device("cpu"))
    assert LatencyTable.measure(supernet, torch.nn.Identity(), (1, 8, 8), torch.device("cpu"), 1, 1).entries


class AnswersWith:
    """A reward of the user's own (no ``metric`` setting) that returns ``value`` whatever it is shown."""

    def __init__(self, value=0.5, limit=None):
        self.value, self.targets = value, {"params": limit}

    def __call__(self, evaluation):
        return self.value


@pytest.mark.parametrize(
    "value, shown", [(None, "None (NoneType)"), ("0.5", "'0.5' (str)"), (True, "True (bool)"), ([0.5], "[0.5] (list)")]
)
def test_a_user_rewards_answer_must_be_a_number(value, shown):
    """None or a list ended in a traceback, a string in "could not convert string to float" naming no reward,
    and True or "0.5" were taken as numbers; a reward without a ``metric`` setting could not be built at all."""
    import re

    from omegaconf import OmegaConf

    from rlnas.search.budget import BudgetSearch
    from rlnas.search.builder import build_reward

    node = OmegaConf.create({"_target_": "tests.test_rewards.AnswersWith", "value": value, "limit": 10})
    reward, _ = build_reward(node, "accuracy")  # it takes no metric= setting
    message = re.escape(f"reward AnswersWith returned {shown}; it must return a number")
    search = BudgetSearch(toy_space(), MatchEvaluator([0] * 15), RandomController(toy_space()), reward, 20, 10)
    with pytest.raises(ValueError, match=message):
        search.run()
    space = MacroSpace(num_layers=1, channels=[8])
    env = ArchitectureEnv(space, MatchEvaluator([0] * len(space)), reward=AnswersWith(value))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        for _ in range(len(env.space)):
            env.step(0)
    for number in (np.float32(0.25), torch.tensor(0.25), 1):
        assert reward_number(number, reward) == pytest.approx(float(number))

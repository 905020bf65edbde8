import re

import numpy as np
import pytest
import torch

from rlnas.controllers import ENASController, RandomController
from rlnas.spaces import MacroSpace


def test_policy_returns_per_arch_log_prob_entropy_and_skip_penalty(small_space):
    ctrl = ENASController(small_space, seed=0)
    actions, log_prob, entropy, kl = ctrl.policy(7, generator=torch.Generator().manual_seed(0))
    assert actions.shape == (7, len(small_space))
    assert log_prob.shape == entropy.shape == kl.shape == (7,)
    assert (log_prob < 0).all() and (entropy > 0).all() and (kl >= 0).all()
    for arch in ctrl.propose(20):
        assert small_space.validate(arch) == arch


def test_log_prob_of_sampled_actions_matches_scoring(small_space):
    ctrl = ENASController(small_space, seed=1)
    actions, log_prob, _, _ = ctrl.policy(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ctrl.log_prob([tuple(a) for a in actions.tolist()]), log_prob)


def test_reinforce_raises_probability_of_rewarded_choice(small_space):
    ctrl = ENASController(small_space, seed=0, lr=0.01)
    op_t, target_op = small_space.op_index[1], 2

    def share() -> float:
        return float(np.mean([a[op_t] == target_op for a in ctrl.propose(400)]))

    before = share()
    for _ in range(30):
        archs = ctrl.propose(10)
        ctrl.observe(archs, [1.0 if a[op_t] == target_op else 0.0 for a in archs])
    assert 0.15 < before < 0.35  # near-uniform over 4 ops at initialisation
    assert share() > 0.6


def test_skip_penalty_pulls_skip_rate_towards_target():
    space = MacroSpace(num_layers=6, ops=["conv3x3"], channels=[8])
    # Flat rewards, no elites to imitate and no novelty filter: only the KL penalty shapes the policy
    # (with 2**15 architectures and a low skip rate, novel proposals would add skips by mutation).
    ctrl = ENASController(space, seed=0, lr=0.02, skip_target=0.1, skip_weight=5.0, elite_size=0, novel_tries=0)
    for _ in range(40):
        archs = ctrl.propose(10)
        stats = ctrl.observe(archs, [0.5] * 10)
    assert stats["skip_rate"] < 0.3


def test_state_dict_round_trip_reproduces_samples(small_space):
    a = ENASController(small_space, seed=3)
    a.observe(a.propose(4), [0.1, 0.2, 0.3, 0.4])
    b = ENASController(small_space, seed=99)
    b.load_state_dict(a.state_dict())
    assert a.propose(6) == b.propose(6)
    assert a.baseline == b.baseline


def test_random_controller_is_uniform(small_space):
    ctrl = RandomController(small_space, seed=0)
    archs = np.array(ctrl.propose(4000))
    op_counts = np.bincount(archs[:, small_space.op_index[1]], minlength=4) / 4000
    np.testing.assert_allclose(op_counts, 0.25, atol=0.03)


@pytest.mark.parametrize("name", ["enas", "maskable_ppo", "tpe", "evolution", "local_search", "random", "grid"])
def test_observe_refuses_what_no_search_loop_hands_over_and_the_controller_still_works(name):
    """A loop of the user's own could hand observe anything: an inf reward made PPO's policy NaN (every later
    propose failed) and ENAS's baseline inf; an architecture of another space was an IndexError in the LSTM,
    a string reward a TypeError in numpy, and evolution and local search took all of it in silence."""
    from rlnas import controllers
    from rlnas.spaces import CategoricalSpace

    space = CategoricalSpace({"a": ["x", "y", "z"], "b": ["p", "q"], "c": ["u", "v", "w"]})
    classes = {
        "enas": controllers.ENASController,
        "maskable_ppo": controllers.MaskablePPOController,
        "tpe": controllers.TPEController,
        "evolution": controllers.EvolutionController,
        "local_search": controllers.LocalSearchController,
        "random": controllers.RandomController,
        "grid": controllers.GridController,
    }
    ctrl = classes[name](space, seed=0)
    archs = ctrl.propose(4)
    for bad_archs, rewards, message in [
        (archs, [0.1, 0.2], "4 architectures but 2 rewards"),
        (archs, [0.1, float("inf"), 0.2, 0.3], "reward 1 is inf; leave failed evaluations out"),
        (archs, [float("nan")] * 4, "reward 0 is nan"),
        (archs, ["0.5", 0.1, 0.2, 0.3], "reward 0 must be a number, got '0.5'"),
        ([(5, 0, 0)], [0.5], "architecture 0 ((5, 0, 0)) is not one of this space"),
        ([(0, 0)], [0.5], "architecture 0 ((0, 0)) is not one of this space"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            ctrl.observe(bad_archs, rewards)
    ctrl.observe(archs, [0.1, 0.2, 0.3, 0.4])
    assert all(space.validate(a) for a in ctrl.propose(6))


CONTROLLER_CLASSES = [
    "ENASController",
    "MaskablePPOController",
    "PPOController",
    "TPEController",
    "EvolutionController",
    "LocalSearchController",
    "RandomController",
    "GridController",
]


@pytest.mark.parametrize("name", CONTROLLER_CLASSES)
def test_the_python_api_names_a_bad_count_seed_or_state(name):
    """Used from Python, propose(2.5) gave grid and local search 3 architectures and ENAS a torch error;
    propose(-1) an empty list; seed=-1 or 2**64 a NumPy or torch message naming no seed (seed=None an ENAS
    TypeError); another controller's state a KeyError of one of its keys."""
    from rlnas import controllers
    from rlnas.spaces import CategoricalSpace

    cls = getattr(controllers, name)
    space = CategoricalSpace({"a": ["x", "y", "z"], "b": ["p", "q"]})
    ctrl = cls(space, seed=0)
    for method in ("propose", "best_guess"):
        for n in (2.5, -1, "2", True, None):
            with pytest.raises(ValueError, match=re.escape(f"{method}(n): n={n!r} must be a whole number >= 0")):
                getattr(ctrl, method)(n)
        assert getattr(ctrl, method)(0) == [] and len(getattr(ctrl, method)(np.int64(2))) == 2
    for seed in (-1, 2**32, 2**64, 1.5, None, True):
        with pytest.raises(ValueError, match=re.escape(f"seed={seed!r} must be a whole number in 0..4294967295")):
            cls(space, seed=seed)
    assert cls(space, seed=2**32 - 1).propose(1)
    with pytest.raises(ValueError, match=re.escape("not a controller's state (it has no 'rng'; it holds ['policy'])")):
        ctrl.load_state_dict({"policy": {}})
    other = controllers.RandomController if name != "RandomController" else controllers.GridController
    with pytest.raises(ValueError, match=f"this state is a {other.__name__}'s; {name} cannot load it"):
        ctrl.load_state_dict(other(space, seed=0).state_dict())
    twin = cls(space, seed=5)
    twin.load_state_dict(ctrl.state_dict())  # its own kind's state still loads


class _Answers(RandomController):
    """A user's controller whose propose/best_guess/observe answer with ``reply(n, archs)`` instead."""

    def __init__(self, space, seed=0, reply=None, stats=None):
        super().__init__(space, seed)
        self.reply, self.stats = reply, stats

    def propose(self, n):
        return self.reply(n, [self.sample_allowed() for _ in range(n)])

    def best_guess(self, n):
        return self.propose(n)

    def observe(self, archs, rewards):
        return self.stats


@pytest.mark.parametrize(
    "reply, message",
    [
        (lambda n, a: None, "propose(3) returned NoneType, not a list of architectures"),
        (lambda n, a: [], "propose(3) returned 0 architectures; it must return 1 to 3"),
        (lambda n, a: a + a, "propose(3) returned 6 architectures; it must return 1 to 3"),
        (lambda n, a: [(9, 0)] * n, "(entry 0, (9, 0)): decision 'a' got choice 9"),
        (lambda n, a: [(0,)] * n, "architecture has 1 decisions, the space CategoricalSpace expects 2"),
        (lambda n, a: [(0.5, 1)] * n, "0.5 is not a whole number"),
    ],
)
def test_a_user_controllers_proposals_are_checked_where_it_answers(reply, message):
    """A controller of the user's own returning None or [] ended in a traceback of the search loop, a short
    architecture in NumPy's "operands could not be broadcast", a choice of 0.5 was taken as 0 silently."""
    from rlnas.spaces import CategoricalSpace

    space = CategoricalSpace({"a": ["x", "y", "z"], "b": ["p", "q"]})
    with pytest.raises(ValueError, match=re.escape(message)):
        _Answers(space, reply=reply).propose(3)
    # a shorter answer is one (a space that small), as are NumPy rows; both come back as tuples of ints
    ok = _Answers(space, reply=lambda n, a: [np.asarray(x) for x in a[:1]])
    answer = ok.propose(3)
    assert len(answer) == 1 and isinstance(answer[0], tuple) and all(type(v) is int for v in answer[0])


@pytest.mark.parametrize(
    "stats, expected",
    [
        (None, {}),
        ({"loss": np.float32(0.5), "n": 3}, {"loss": 0.5, "n": 3.0}),
        ({"x": "abc"}, "'x': 'abc'"),
        ([1], "list"),
    ],
)
def test_a_user_controllers_statistics_are_numbers_or_none(stats, expected):
    from rlnas.spaces import CategoricalSpace

    space = CategoricalSpace({"a": ["x", "y", "z"], "b": ["p", "q"]})
    ctrl = _Answers(space, reply=lambda n, a: a, stats=stats)
    if isinstance(expected, dict):
        assert ctrl.observe([(0, 0)], [0.5]) == expected
    else:
        with pytest.raises(ValueError, match=re.escape(expected)):
            ctrl.observe([(0, 0)], [0.5])

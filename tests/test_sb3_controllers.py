"""PPO controllers (stable-baselines3 / sb3-contrib) behind the propose/observe seam."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO

from rlnas.controllers import MaskablePPOController, PPOController, RecurrentPPOController

PPO_FAMILY = [(PPOController, PPO), (MaskablePPOController, MaskablePPO), (RecurrentPPOController, RecurrentPPO)]
IDS = ["ppo", "maskable_ppo", "recurrent_ppo"]


# recurrent_ppo's masks are also checked in the default suite by test_search_for_max.py's mask test
# (its default settings); this variant (about 30 s) runs on purpose (-m slow).
@pytest.mark.parametrize(
    "cls",
    [PPOController, MaskablePPOController, pytest.param(RecurrentPPOController, marks=pytest.mark.slow)],
    ids=IDS,
)
def test_every_sample_is_valid_and_respects_extra_masks(cls, small_space):
    ctrl = cls(small_space, seed=0, rollout_archs=4)
    op_steps = set(small_space.op_index)
    # A hard-limit style mask: operation 0 is never allowed.
    ctrl.action_mask = lambda prefix: np.array([len(prefix) not in op_steps or c != 0 for c in range(4)])
    for _ in range(3):
        archs = ctrl.propose(8)
        for arch in archs:
            assert small_space.validate(arch) == arch
            assert all(arch[t] != 0 for t in small_space.op_index)
        ctrl.observe(archs, list(np.linspace(0, 1, 8)))
    assert ctrl.updates == 6  # 24 observed / 4 per rollout


@pytest.mark.parametrize("cls, algo", PPO_FAMILY, ids=IDS)
def test_sb3_model_saves_loads_and_state_round_trips(cls, algo, small_space, tmp_path):
    ctrl = cls(small_space, seed=1, rollout_archs=5)
    archs = ctrl.propose(5)
    stats = ctrl.observe(archs, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert stats["updates"] == 1 and np.isfinite(stats["value_loss"])
    (path,) = ctrl.save_artifacts(tmp_path)
    loaded = algo.load(path, device="cpu")
    for name, tensor in ctrl.model.policy.state_dict().items():
        assert (loaded.policy.state_dict()[name] == tensor).all(), name
    ctrl.observe(*_half_rollout(ctrl))
    clone = cls(small_space, seed=99, rollout_archs=5)
    clone.load_state_dict(ctrl.state_dict())
    assert clone.propose(6) == ctrl.propose(6)
    # The partly filled rollout buffer travels with the state: both update at the same point.
    a = ctrl.propose(3)
    assert clone.propose(3) == a
    assert ctrl.observe(a, [1.0, 0.0, 1.0])["updates"] == clone.observe(a, [1.0, 0.0, 1.0])["updates"] == 2


def _half_rollout(ctrl):
    archs = ctrl.propose(2)
    return archs, [0.5, 0.7]


def test_unobserved_proposals_do_not_enter_the_rollout(small_space):
    ctrl = PPOController(small_space, seed=0, rollout_archs=2)
    ctrl.propose(10)  # e.g. supernet training samples: never observed
    archs = ctrl.propose(2)
    # Not proposed: no transitions enter the rollout (the memory still learns its reward).
    assert "updates" not in ctrl.observe([(0,) * len(small_space)], [1.0])
    assert ctrl.buffer.pos == 0
    assert ctrl.observe(archs, [0.0, 1.0])["updates"] == 1


def test_controller_sampling_leaves_global_rng_alone(small_space):
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    expected = torch.rand(3), np.random.rand(3)
    torch.manual_seed(0)
    np.random.seed(0)
    ctrl = RecurrentPPOController(small_space, seed=0, rollout_archs=2)
    ctrl.observe(ctrl.propose(2), [0.0, 1.0])
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_rollout_archs_must_be_positive(small_space):
    with pytest.raises(ValueError, match="controller.rollout_archs"):
        PPOController(small_space, rollout_archs=0)


def test_actor_and_critic_take_their_own_widths_from_sb3s_mapping(small_space):
    # net_arch={pi: [...], vf: [...]}, SB3's own form, was refused as "must be a list of int"
    from omegaconf import OmegaConf

    widths = OmegaConf.create({"pi": [24], "vf": [8]})  # as Hydra passes it
    ctrl = MaskablePPOController(small_space, seed=0, rollout_archs=2, net_arch=widths)
    extractor = ctrl.model.policy.mlp_extractor
    assert extractor.latent_dim_pi == 24 and extractor.latent_dim_vf == 8
    assert ctrl.observe(*_half_rollout(ctrl))["updates"] == 1
    with pytest.raises(ValueError, match=r"the actor's and the critic's widths, pi and vf; got \['pi'\]"):
        PPOController(small_space, seed=0, net_arch={"pi": [8]})
    with pytest.raises(ValueError, match=r"controller.net_arch.vf=\[0\] must be a list of layer widths >= 1"):
        PPOController(small_space, seed=0, net_arch={"pi": [8], "vf": [0]})


def test_a_ppo_controller_leaves_no_folder_in_the_temporary_directory(small_space, tmp_path, monkeypatch):
    # SB3's default logger makes an SB3-<time> folder per model; a search builds one controller per
    # run (and a comparison hundreds), none of which should litter the temporary directory.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    ctrl = MaskablePPOController(small_space, seed=0, rollout_archs=4)
    archs = ctrl.propose(4)
    assert ctrl.observe(archs, [0.1, 0.2, 0.3, 0.4])["updates"] == 1
    assert list(tmp_path.glob("SB3-*")) == []


def test_ppo_local_steps_start_from_the_best_and_fade_with_the_policys_entropy(small_space):
    """controller.local_share in the PPO family: its scale is the policy's normalised entropy at each update."""
    ctrl = MaskablePPOController(small_space, seed=0, rollout_archs=4, local_share=1.0)
    first = ctrl.propose(4)
    ctrl.observe(first, [0.1, 0.2, 0.3, 0.9])  # a full rollout: one PPO update
    assert 0.5 < ctrl.memory.local_scale <= 1.0 and ctrl.updates == 1
    batch = ctrl.propose(4)
    steps = round(4 * ctrl.memory.local_scale)
    assert ctrl.memory.sources["local"] == steps >= 2
    assert all(sum(a != b for a, b in zip(arch, first[3])) == 1 for arch in batch[:steps])
    assert ctrl.memory.policy_share() == pytest.approx((4 + 4 - steps) / 8)

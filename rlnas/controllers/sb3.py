"""PPO controllers from stable-baselines3 and sb3-contrib behind the propose/observe seam.

SB3 algorithms own their rollout buffers, optimisers and update rules; what
they expect from ``learn()`` is an environment that returns a reward at every
step. In weight-sharing NAS the reward of an architecture must come from the
*current* shared weights and the supernet must train between policy updates,
so here the search loop plays the role of ``collect_rollouts``:

* :meth:`SB3Controller.propose` runs the SB3 policy over the decisions of a
  batch of architectures (one episode each, observations exactly as
  :class:`~rlnas.env.ArchitectureEnv` builds them) and remembers the actions,
  values and log-probabilities;
* :meth:`SB3Controller.observe` writes those transitions with the rewards
  into the algorithm's own rollout buffer (reward on the last decision,
  ``gamma = 1``). When the buffer holds ``rollout_archs`` architectures, the
  rollout ends: returns and advantages are computed and the algorithm's own
  ``train()`` runs. The loop then trains the supernet before the next
  rollout starts, so every rollout is scored by one set of shared weights when
  ``rollout_archs`` divides the architectures of an epoch's controller phase.

Only the latest proposal batch can be observed: architectures proposed for
supernet training or for comparisons are never observed, and their
transitions are dropped at the next :meth:`~SB3Controller.propose`.

The algorithms are in :mod:`rlnas.controllers.ppo`, the elite imitation and
buffer helpers in :mod:`rlnas.controllers.sb3_parts`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rlnas.controllers.sb3_parts as parts
from rlnas.controllers.base import (
    Controller,
    check_finite_weights,
    check_observation,
    check_policy_size,
    name_update_failure,
)
from rlnas.controllers.elite import EliteMemory
from rlnas.controllers.sb3_parts import EliteImitation, HistoryExtractor, NoEvaluator, full_mask, preserved_global_rng
from rlnas.spaces.base import Arch, SearchSpace


class SB3Controller(EliteImitation, Controller):
    """Base of the PPO controllers; subclasses pick the SB3 algorithm.

    Args:
        space: The search space.
        seed: Seed of initialisation, sampling and minibatch shuffling.
        rollout_archs: Architectures per rollout (``n_steps = rollout_archs * T``).
        learning_rate: Adam learning rate of the policy.
        n_epochs: Passes over each rollout.
        batch_size: Minibatch size in transitions.
        ent_coef: Entropy bonus weight.
        clip_range: PPO clipping parameter.
        gae_lambda: GAE lambda (1: Monte-Carlo returns minus the value baseline).
        vf_coef: Value loss weight.
        net_arch: Hidden layer sizes of the policy and value MLPs, or SB3's mapping ``{pi: [...], vf: [...]}``
            of each one's own (on the command line ``~controller.net_arch '+controller.net_arch={pi:[64],vf:[32]}'``,
            since a mapping does not merge into the default list).
        policy_kwargs: Extra keyword arguments of the SB3 policy.
        device: Device of the policy (the policy is tiny; CPU is fastest).
        elite_size: Best architectures kept and imitated after every observed batch (priority-queue training;
            0: off).
        elite_weight: Weight of the elites' negative log-likelihood in the imitation steps.
        risk_quantile: Fraction of each rollout reinforced (risk-seeking policy gradient); 1: SB3's own
            advantages (returns minus the value estimate).
        novel_tries: Resampling rounds for architectures already evaluated (0: off).
        fallback: How the novelty fallback leaves an architecture already evaluated
            (:data:`rlnas.controllers.elite.FALLBACKS`).
        local_share: Up to this fraction of each batch is local search's step from the best architecture
            seen, scaled by the policy's normalised entropy at its last update (:mod:`rlnas.controllers.elite`;
            0: off).
    """

    #: SB3 policy name.
    policy_name = "MlpPolicy"
    #: Whether the policy receives the action masks.
    uses_masks = False
    #: Whether the policy is recurrent (carries LSTM states between decisions).
    recurrent = False

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        rollout_archs: int = 10,
        learning_rate: float = 1e-3,
        n_epochs: int = 10,
        batch_size: int = 64,
        ent_coef: float = 0.0,
        clip_range: float = 0.2,
        gae_lambda: float = 1.0,
        vf_coef: float = 0.5,
        net_arch: Sequence[int] | Mapping[str, Sequence[int]] = (64, 64),
        policy_kwargs: dict[str, Any] | None = None,
        device: str = "cpu",
        elite_size: int = 5,
        elite_weight: float = 1.0,
        risk_quantile: float = 0.5,
        novel_tries: int = 3,
        fallback: str = "walk",
        local_share: float = 0.0,
    ) -> None:
        super().__init__(space, seed)
        if rollout_archs < 1:
            raise ValueError(f"controller.rollout_archs={rollout_archs} must be >= 1")
        if learning_rate <= 0:
            raise ValueError(f"controller.learning_rate={learning_rate} must be positive")
        if elite_weight < 0:
            raise ValueError(f"controller.elite_weight={elite_weight} must be >= 0")
        for key, value in (("n_epochs", n_epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"controller.{key}={value} must be >= 1")
        if not clip_range > 0:
            raise ValueError(f"controller.clip_range={clip_range} must be > 0 (PPO's clipping range)")
        if not 0 <= gae_lambda <= 1:
            raise ValueError(f"controller.gae_lambda={gae_lambda} must be in [0, 1] (GAE, Schulman et al. 2016)")
        if ent_coef < 0:
            raise ValueError(f"controller.ent_coef={ent_coef} must be >= 0 (a bonus for exploring)")
        if vf_coef < 0:
            # A negative weight trains the value function away from the returns.
            raise ValueError(f"controller.vf_coef={vf_coef} must be >= 0 (the value loss's weight)")
        layers = _net_arch(net_arch)
        from rlnas.utils import resolve_device

        try:
            resolve_device(str(device))
        except ValueError as err:
            raise ValueError(str(err).replace("device=", "controller.device=")) from None
        from stable_baselines3.common.logger import Logger

        from rlnas.env import ArchitectureEnv

        self.env = ArchitectureEnv(space, NoEvaluator())  # type: ignore[arg-type]
        self.num_steps = len(space)
        self.rollout_archs = int(rollout_archs)
        shared = layers["pi"] if layers["pi"] == layers["vf"] else layers  # SB3 takes either form
        kwargs = {"net_arch": shared, "features_extractor_class": HistoryExtractor, **(policy_kwargs or {})}
        n_steps = self.rollout_archs * self.num_steps
        self._check_size(layers, kwargs.get("lstm_hidden_size"), n_steps)
        # SB3 seeds python, numpy and torch globally; keep the caller's streams intact.
        with preserved_global_rng(), warnings.catch_warnings():
            # A last minibatch shorter than batch_size is harmless here.
            warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
            self.model = self.algorithm_class()(
                self.policy_name,
                self.env,
                n_steps=n_steps,
                batch_size=min(int(batch_size), n_steps),
                n_epochs=int(n_epochs),
                learning_rate=float(learning_rate),
                gamma=1.0,
                gae_lambda=float(gae_lambda),
                ent_coef=float(ent_coef),
                vf_coef=float(vf_coef),
                clip_range=float(clip_range),
                policy_kwargs=kwargs,
                seed=seed,
                device=device,
                verbose=0,
                # Risk-seeking advantages are already scaled by the rollout's spread, and the
                # zeros of the unreinforced samples must stay zeros.
                normalize_advantage=risk_quantile >= 1,
            )
        # The statistics are read back from the logger (observe()); it writes no file, and unlike
        # SB3's configure() it makes no SB3-<time> folder in the temporary directory per controller.
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.buffer = self.model.rollout_buffer
        self.buffer.reset()
        self._pending: dict[Arch, list[dict[str, Any]]] = {}
        self.updates = 0
        self.memory = EliteMemory(elite_size, risk_quantile, novel_tries, fallback, local_share)
        self.elite_weight = float(elite_weight)
        #: Rewards of the episodes in the rollout buffer, in order.
        self._episode_rewards: list[float] = []

    def _check_size(self, layers: dict[str, list[int]], lstm: int | None, n_steps: int) -> None:
        """Refuses a policy or rollout buffer too large to allocate, before SB3 allocates it.

        The policy's weights: SB3's separate actor and critic MLPs over the one-hot history (and, for
        RecurrentPPO, an LSTM each), its action and value heads; the buffer holds ``n_steps`` observations.
        """
        features = int(np.sum(self.env.observation_space.nvec))
        inputs = int(lstm) if lstm else features
        recurrent = 4 * (features + int(lstm) + 2) * int(lstm) if lstm else 0
        weights = 2 * recurrent
        for part, outputs in (("pi", self.space.max_choices), ("vf", 1)):
            widths = layers[part]
            weights += sum((a + 1) * b for a, b in zip([inputs, *widths], widths))
            weights += ((widths[-1] if widths else inputs) + 1) * outputs
        shown = layers["pi"] if layers["pi"] == layers["vf"] else layers
        setting = f"controller.net_arch={shown}" + (f" with controller.lstm_hidden_size={lstm}" if lstm else "")
        check_policy_size(weights, setting)
        check_policy_size(n_steps * features, f"controller.rollout_archs={self.rollout_archs}", "a rollout buffer")

    @classmethod
    def algorithm_class(cls) -> type:
        raise NotImplementedError

    # -- sampling -------------------------------------------------------------
    def _mask_rows(self, t: int, prefixes: list[list[int]]) -> np.ndarray:
        base = self.space.masks[t]
        if self.action_mask is None:
            return np.repeat(base[None], len(prefixes), axis=0)
        return np.stack([base & self.action_mask(p) for p in prefixes])

    def _initial_states(self, n: int) -> Any:
        return None

    def _step(
        self, obs: torch.Tensor, masks: np.ndarray, states: Any, starts: torch.Tensor, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        actions, values, log_probs = self.model.policy(obs, deterministic=deterministic)
        return actions, values, log_probs, None

    @torch.no_grad()
    def _rollout(self, n: int, deterministic: bool = False) -> tuple[list[Arch], list[list[dict[str, Any]]]]:
        """Runs the policy over the decisions of ``n`` architectures at once."""
        policy = self.model.policy
        policy.set_training_mode(False)
        T = self.num_steps
        obs = np.zeros((n, T + 1), dtype=np.int64)
        prefixes: list[list[int]] = [[] for _ in range(n)]
        records: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        states = self._initial_states(n)
        with preserved_global_rng(int(self.rng.integers(2**31))):
            for t in range(T):
                obs[:, T] = t
                masks = self._mask_rows(t, prefixes)
                starts = torch.full((n,), float(t == 0), device=policy.device)
                obs_t = torch.as_tensor(obs, device=policy.device)
                before = states
                actions, values, log_probs, states = self._step(obs_t, masks, states, starts, deterministic)
                raw = actions.cpu().numpy().reshape(n)
                values_np, log_np = values.cpu().numpy().reshape(n), log_probs.cpu().numpy().reshape(n)
                for i in range(n):
                    allowed = np.flatnonzero(masks[i])
                    # Agents without masks: every raw action maps onto an allowed choice
                    # (modulo the allowed list), like the env's "wrap" mode.
                    choice = int(raw[i]) if masks[i][raw[i]] else int(allowed[int(raw[i]) % len(allowed)])
                    records[i].append(
                        {
                            "obs": obs[i].copy(),
                            "action": int(raw[i]),
                            "value": float(values_np[i]),
                            "log_prob": float(log_np[i]),
                            "mask": masks[i].copy(),
                            "start": t == 0,
                            "states": self._slice_states(before, i),
                        }
                    )
                    prefixes[i].append(choice)
                    obs[i, t] = choice + 1
        return [tuple(p) for p in prefixes], records

    def _slice_states(self, states: Any, i: int) -> Any:
        return None

    def propose(self, n: int) -> list[Arch]:
        drawn: dict[Arch, list[list[dict[str, Any]]]] = {}

        def sample(k: int) -> list[Arch]:
            archs, records = self._rollout(k)
            for arch, rec in zip(archs, records):
                drawn.setdefault(arch, []).append(rec)
            return archs

        archs = self.memory.novel(sample, n, self.mutate, self.new_neighbour)
        # Earlier batches' transitions stay until their rewards come (a trial search observes a batch
        # after proposing the next); every other search observes each batch before the next.
        for arch in archs:
            if drawn.get(arch):  # a mutated architecture has no transitions: it is imitated, not reinforced
                self._pending.setdefault(arch, []).append(drawn[arch].pop(0))
        return archs

    def best_guess(self, n: int) -> list[Arch]:
        """The policy's deterministic architecture, the elites, then samples."""
        greedy, _ = self._rollout(1, deterministic=True)
        best = list(dict.fromkeys([*greedy, *self.memory.elite_archs()]))[:n]
        return best + (self._rollout(n - len(best))[0] if n > len(best) else [])

    # -- learning -------------------------------------------------------------
    def _add(self, record: dict[str, Any], reward: float) -> None:
        kwargs: dict[str, Any] = {}
        if self.uses_masks:
            kwargs["action_masks"] = full_mask(record["mask"], self.space.max_choices)
        if self.recurrent:
            kwargs["lstm_states"] = record["states"]
        self.buffer.add(
            record["obs"][None],
            np.array([[record["action"]]]),
            np.array([reward], dtype=np.float32),
            np.array([record["start"]], dtype=np.float32),
            torch.tensor([[record["value"]]]),
            torch.tensor([record["log_prob"]]),
            **kwargs,
        )

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        archs = check_observation(self.space, archs, rewards)
        stats: dict[str, float] = {}
        for arch, reward in zip(archs, rewards):
            queue = self._pending.get(tuple(arch))
            if not queue:  # not sampled by this policy (a mutation or a restored batch): nothing to learn from
                continue
            steps = queue.pop(0)
            if not queue:
                del self._pending[tuple(arch)]
            for t, record in enumerate(steps):
                self._add(record, float(reward) if t == len(steps) - 1 else 0.0)
            self._episode_rewards.append(float(reward))
            self.model.num_timesteps += len(steps)
            if self.buffer.full:
                try:
                    stats = self._train()
                except (ValueError, RuntimeError) as err:  # e.g. SB3's next epoch meets NaN logits: name the cause
                    name_update_failure(err, self.model.policy, f"controller.learning_rate={self.model.learning_rate}")
                    raise
        self.memory.add(archs, rewards)
        if len(archs):
            with preserved_global_rng(int(self.rng.integers(2**31))):
                imitation = self._imitate(self.memory.elite_archs())
            if imitation is not None:
                stats = {**stats, "elite_log_prob": imitation}
        check_finite_weights(self.model.policy, f"controller.learning_rate={self.model.learning_rate}")
        return {**stats, "policy_share": self.memory.policy_share()}

    def _train(self) -> dict[str, float]:
        """Ends the rollout: GAE with no bootstrap (the last step is terminal), then SB3's update."""
        self.buffer.compute_returns_and_advantage(
            last_values=torch.zeros(1, 1, device=self.model.device), dones=np.ones(1, dtype=np.float32)
        )
        if self.memory.risk_quantile < 1 and len(self._episode_rewards) == self.rollout_archs:
            # Risk-seeking policy gradient (Petersen et al., 2021): every decision of an episode
            # gets its architecture's advantage within the rollout; the value head still learns
            # the returns SB3 computed. (A rollout begun before a resume from a checkpoint without
            # episode rewards keeps SB3's advantages.)
            adv = self.memory.advantages(self._episode_rewards)
            self.buffer.advantages[:] = np.repeat(adv, self.num_steps).reshape(self.buffer.advantages.shape)
        self._episode_rewards = []
        with preserved_global_rng(int(self.rng.integers(2**31))):
            self.model.train()
        self.updates += 1
        logged = dict(self.model.logger.name_to_value)
        self.model.logger.dump(self.model.num_timesteps)
        self.buffer.reset()
        keep = (
            "entropy_loss",
            "policy_gradient_loss",
            "value_loss",
            "approx_kl",
            "clip_fraction",
            "explained_variance",
        )
        stats = {k.split("/", 1)[1]: float(v) for k, v in logged.items() if k.split("/", 1)[-1] in keep}
        stats["updates"] = float(self.updates)
        if "entropy_loss" in stats:  # SB3 logs minus the mean entropy of one decision
            self.memory.follow_entropy(-stats["entropy_loss"], self.space.num_choices)
        return stats

    # -- persistence ----------------------------------------------------------
    def save_artifacts(self, directory: Path) -> list[Path]:
        """Writes the SB3 model (``controller_sb3.zip``; load with the algorithm's ``load``)."""
        path = Path(directory) / "controller_sb3.zip"
        self.model.save(path)
        return [path]

    def state_dict(self) -> dict[str, Any]:
        blob = io.BytesIO()
        self.model.save(blob)
        return {
            **super().state_dict(),
            "model": blob.getvalue(),
            "buffer": parts.buffer_state(self.buffer),
            "num_timesteps": self.model.num_timesteps,
            "updates": self.updates,
            "memory": self.memory.state_dict(),
            "episode_rewards": list(self._episode_rewards),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.set_parameters(io.BytesIO(state["model"]), exact_match=True, device=self.model.device)
        parts.load_buffer_state(self.buffer, state["buffer"])
        self.model.num_timesteps = state["num_timesteps"]
        self.updates = state["updates"]
        self._pending = {}
        if "memory" in state:  # checkpoints written before the elite memory have none
            self.memory.load_state_dict(state["memory"])
            self._episode_rewards = list(state["episode_rewards"])


def _net_arch(net_arch: Any) -> dict[str, list[int]]:
    """``{"pi": widths, "vf": widths}`` from ``net_arch``: one list for both MLPs, or SB3's mapping of each."""

    def widths(value: Any, key: str) -> list[int]:
        listed = [value] if isinstance(value, (str, bytes, int, Mapping)) else list(value)
        if not all(isinstance(width, int) and not isinstance(width, bool) and width >= 1 for width in listed):
            raise ValueError(f"{key}={value!r} must be a list of layer widths >= 1"[:200])
        return listed

    if isinstance(net_arch, Mapping):
        keys = sorted(str(k) for k in net_arch)
        if keys != ["pi", "vf"]:
            raise ValueError(
                f"controller.net_arch: a mapping names the actor's and the critic's widths, pi and vf; got {keys}"[:200]
            )
        return {part: widths(net_arch[part], f"controller.net_arch.{part}") for part in ("pi", "vf")}
    both = widths(net_arch, "controller.net_arch")
    return {"pi": both, "vf": list(both)}

"""The ENAS controller: an LSTM sampling one decision per step, trained by policy gradient.

Pham et al., 2018, "Efficient Neural Architecture Search via Parameter Sharing".
The policy's defaults are those of the authors' macro search (melodyguan/enas,
``scripts/cifar10_macro_search.sh``): LSTM size 64, one layer,
entropy weight 1e-4, skip target 0.4, skip weight 0.8; the tanh constant is
2.5 instead of 1.5 (see :class:`ENASController`). The
learning rate is 1e-2 instead of the script's 1e-3: ENAS makes ~15,000
controller updates in a search, the default search here a few hundred, and at
1e-3 the controller barely moves in that many. The update searches for the
best architecture rather than the best average (risk-seeking policy gradient,
priority-queue imitation, novel proposals; :mod:`rlnas.controllers.elite`);
``risk_quantile=1, elite_size=0, novel_tries=0, update_epochs=1`` is ENAS's
REINFORCE with its moving-average baseline (decay 0.99, and ``fallback`` does not act with ``novel_tries=0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlnas.controllers.base import (
    Controller,
    check_finite_weights,
    check_observation,
    check_policy_size,
    name_update_failure,
)
from rlnas.controllers.elite import EliteMemory
from rlnas.controllers.enas_policy import ENASPolicy
from rlnas.spaces.base import Arch, SearchSpace

#: Largest log-probability ratio a sample's surrogate is computed at (see :func:`clipped_surrogate`).
MAX_LOG_RATIO = 20.0


def clipped_surrogate(log_prob: Tensor, old_log_prob: Tensor, advantages: Tensor, clip_range: float) -> Tensor:
    """PPO's clipped surrogate per sample (Schulman et al., 2017, eq. 7).

    ``min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)`` with ``ratio = p / p_old``:
    a sample whose probability already moved past ``1 +- eps`` in its
    advantage's direction gives no further gradient. Where ``log_prob`` equals
    ``old_log_prob`` (the first step on a batch) its gradient is REINFORCE's,
    ``A * grad log p``.

    The log-ratio is capped at ``MAX_LOG_RATIO`` before ``exp``: an architecture's log-probability
    sums one term per decision, and in a space of thousands of decisions one step can move it by
    hundreds (``exp(141)`` is ``inf`` in float32, and its gradient NaN). Past the cap the sample has
    left the trust region by a factor of ``e**20`` and gives no gradient, as the clip does for ``A > 0``.
    """
    ratio = torch.exp((log_prob - old_log_prob).clamp(max=MAX_LOG_RATIO))
    return torch.minimum(ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages)


class ENASController(Controller):
    """The ENAS policy trained to find the best architecture (see :meth:`observe`).

    With ``risk_quantile=1`` the policy-gradient term is REINFORCE with an
    exponential-moving-average baseline (Williams, 1992; ENAS eq. 1):
    ``reward' = reward + entropy_weight * entropy`` (ENAS adds the sample
    entropy to the reward), ``baseline <- baseline - (1 - decay) * (baseline - reward')``
    and ``loss = -log p(arch) * (reward' - baseline) + skip_weight * KL``.

    Args:
        space: The search space.
        seed: Seed of initialisation and sampling.
        lstm_size: LSTM hidden size (ENAS: 64).
        lr: Adam learning rate (ENAS: 1e-3 over ~15,000 updates; 1e-2 here).
        temperature: Softmax temperature (ENAS macro: none).
        tanh_constant: Logit clipping constant (ENAS macro: 1.5; 2.5 here, so that the policy can put
            nearly all its mass on one architecture and its novel proposals become that architecture's
            neighbours: at 1.5 a choice among 3 never gets more than 0.91).
        entropy_weight: Weight of the entropy bonus (ENAS: 1e-4, added to the reward; with risk-seeking
            advantages a term of the loss).
        baseline_decay: Decay of the moving-average baseline (ENAS: 0.99).
        skip_target: Target skip probability (ENAS: 0.4).
        skip_weight: Weight of the skip KL penalty (ENAS: 0.8).
        grad_clip: Maximum gradient norm of a controller update (``None``: off).
        elite_size: Best architectures kept and imitated (priority-queue training; 0: off).
        elite_weight: Weight of the elites' negative log-likelihood in the loss.
        risk_quantile: Fraction of each batch reinforced (risk-seeking policy gradient; 1: plain REINFORCE
            with the moving-average baseline).
        novel_tries: Resampling rounds for architectures already evaluated (0: off).
        update_epochs: Gradient steps per update on the same batch and elites. After the first, the
            policy-gradient term is PPO's clipped surrogate (Schulman et al., 2017, eq. 7): the ratio of the
            updated policy's probability to the sampling policy's, clipped to ``1 +- clip_range``, so the
            repeated steps stay near the policy that drew the batch. The first step is plain REINFORCE
            (the ratio is 1 there).
        clip_range: PPO's epsilon for ``update_epochs > 1`` (Schulman et al.: 0.2).
        fallback: How the novelty fallback leaves an architecture already evaluated
            (:data:`rlnas.controllers.elite.FALLBACKS`). ``neighbours``, local search's step (White et al.,
            2021): once the policy has settled, its mode's neighbourhood is evaluated whole, so a late search
            reaches a local optimum (the toy table's optimum in every run at 300 evaluations, 0.9993 with
            ``walk``); the PPO family keeps ``walk`` (docs/results.md, "a fallback that covers the mode's
            neighbourhood").
        local_share: Up to this fraction of each batch is local search's step from the best architecture
            seen, scaled by the policy's normalised entropy (:mod:`rlnas.controllers.elite`; 0: off). It
            pays on rugged tables at budgets of 50-100 evaluations and costs a little at 300
            (docs/results.md, "Local steps").
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        lstm_size: int = 64,
        lr: float = 1e-2,
        temperature: float | None = None,
        tanh_constant: float | None = 2.5,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
        skip_target: float = 0.4,
        skip_weight: float = 0.8,
        grad_clip: float | None = None,
        elite_size: int = 5,
        elite_weight: float = 1.0,
        risk_quantile: float = 0.5,
        novel_tries: int = 3,
        update_epochs: int = 3,
        clip_range: float = 0.2,
        fallback: str = "neighbours",
        local_share: float = 0.0,
    ) -> None:
        super().__init__(space, seed)
        if not clip_range > 0:
            raise ValueError(f"controller.clip_range={clip_range} must be > 0")
        self.clip_range = float(clip_range)
        if not 0 < skip_target < 1:
            raise ValueError(f"controller.skip_target={skip_target} must be in (0, 1)")
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"controller.baseline_decay={baseline_decay} must be in [0, 1)")
        if lr <= 0:
            raise ValueError(f"controller.lr={lr} must be positive")
        if temperature is not None and not temperature > 0:
            raise ValueError(f"controller.temperature={temperature} must be > 0 or null (null: none)")
        if tanh_constant is not None and not tanh_constant > 0:
            raise ValueError(f"controller.tanh_constant={tanh_constant} must be > 0 or null (null: no clipping)")
        if entropy_weight < 0:
            raise ValueError(f"controller.entropy_weight={entropy_weight} must be >= 0 (a bonus for exploring)")
        if lstm_size < 1:
            raise ValueError(f"controller.lstm_size={lstm_size} must be >= 1")
        if grad_clip is not None and not grad_clip > 0:
            # clip_grad_norm_ with a negative bound flips every gradient.
            raise ValueError(f"controller.grad_clip={grad_clip} must be > 0 or null (null: no clipping)")
        if skip_weight < 0:
            raise ValueError(f"controller.skip_weight={skip_weight} must be >= 0 (the weight of the skip KL penalty)")
        # An LSTM cell of size h has 8 h^2 weights: sized before it is allocated (a typo such as 640000 asks
        # for tens of GB, and past 2**63 bytes torch's own size computation overflows).
        check_policy_size(8 * lstm_size * lstm_size, f"controller.lstm_size={lstm_size}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = ENASPolicy(space, lstm_size, temperature, tanh_constant, "skip", skip_target)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.skip_weight = skip_weight
        self.grad_clip = grad_clip
        self.baseline: float | None = None
        if elite_weight < 0:
            raise ValueError(f"controller.elite_weight={elite_weight} must be >= 0")
        self.elite_weight = float(elite_weight)
        self.memory = EliteMemory(elite_size, risk_quantile, novel_tries, fallback, local_share)
        if update_epochs < 1:
            raise ValueError(f"controller.update_epochs={update_epochs} must be >= 1")
        self.update_epochs = int(update_epochs)

    @torch.no_grad()
    def sample(self, n: int) -> list[Arch]:
        """``n`` plain samples of the policy."""
        if n <= 0:
            return []
        actions, *_ = self.policy(n, generator=self.generator, mask_fn=self.action_mask)
        return [tuple(row) for row in actions.tolist()]

    def propose(self, n: int) -> list[Arch]:
        return self.memory.novel(self.sample, n, self.mutate, self.new_neighbour)

    @torch.no_grad()
    def best_guess(self, n: int) -> list[Arch]:
        """The greedy (most likely) architecture, the elites, then samples: ``n`` distinct when the space allows."""
        greedy, *_ = self.policy(1, greedy=True, mask_fn=self.action_mask)
        best = list(dict.fromkeys([tuple(greedy[0].tolist()), *self.memory.elite_archs()]))[:n]
        return best + self.sample(n - len(best))

    def _actions(self, archs: Sequence[Arch]) -> Tensor:
        return torch.as_tensor([list(a) for a in archs], dtype=torch.long).reshape(len(archs), len(self.space))

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        """One update: risk-seeking policy gradient on the batch plus the elites' log-likelihood.

        ``loss = -mean_top[(r - q) / s * log p(arch)] - elite_weight * mean_elites[log p(arch)]
        - entropy_weight * H + skip_weight * KL``, where the first mean runs over
        the batch's top ``risk_quantile`` (Petersen et al., 2021) and the second
        over the priority queue (Abolafia et al., 2018); see
        :mod:`rlnas.controllers.elite`. With ``risk_quantile=1`` the first term
        is ENAS's REINFORCE with its moving-average baseline. Architectures the
        policy did not sample (the novelty fallback's mutations in the latest
        :meth:`propose`) get no policy-gradient term: they are learnt from
        through the priority queue alone, as in the PPO family.
        """
        archs = check_observation(self.space, archs, rewards)
        actions = self._actions(archs)
        sampled = torch.as_tensor([tuple(a) not in self.memory.fallback for a in archs], dtype=torch.float32)
        if self.memory.risk_quantile >= 1:
            # ENAS: the entropy joins the reward, the baseline is a moving average.
            with torch.no_grad():
                entropy = self.policy(len(archs), actions=actions, mask_fn=self.action_mask)[2]
            shaped = torch.as_tensor(rewards, dtype=torch.float32) + self.entropy_weight * entropy
            advantages = []
            for r in shaped.tolist():
                if self.baseline is None:
                    self.baseline = r  # start at the first reward instead of ENAS's 0
                self.baseline -= (1 - self.baseline_decay) * (self.baseline - r)
                advantages.append(r - self.baseline)
            adv = torch.as_tensor(advantages)
            reinforced = len(archs)
            entropy_weight = 0.0
        else:
            adv = torch.as_tensor(self.memory.advantages(rewards), dtype=torch.float32)
            reinforced = max(1, int((adv != 0).sum()))
            entropy_weight = self.entropy_weight
            self.baseline = float(np.mean(rewards))
        adv = adv * sampled
        reinforced = max(1, int((adv != 0).sum()) if self.memory.risk_quantile < 1 else int(sampled.sum()))
        self.memory.add(archs, rewards)
        elites = self.memory.elite_archs() if self.elite_weight > 0 else []
        old_log_prob = None
        setting = f"controller.lr={self.optimizer.param_groups[0]['lr']}"  # named if an update breaks the policy
        for _ in range(self.update_epochs):
            log_prob, entropy, skip_kl = self.policy(len(archs), actions=actions, mask_fn=self.action_mask)[1:]
            if old_log_prob is None:
                old_log_prob = log_prob.detach()
            surrogate = clipped_surrogate(log_prob, old_log_prob, adv, self.clip_range)
            loss = -surrogate.sum() / reinforced - entropy_weight * entropy.mean()
            loss = loss + self.skip_weight * skip_kl.mean()
            if elites:
                elite_logp = self.policy(len(elites), actions=self._actions(elites), mask_fn=self.action_mask)[1]
                loss = loss - self.elite_weight * elite_logp.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.policy.parameters(), self.grad_clip)
            try:
                self.optimizer.step()
            except RuntimeError as err:
                name_update_failure(err, self.policy, setting)
                raise
        check_finite_weights(self.policy, setting)
        # The policy's certainty, for the local steps (an architecture's entropy sums one term per decision).
        self.memory.follow_entropy(float(entropy.detach().mean()) / len(self.space), self.space.num_choices)
        skip_cols = [t for t, d in enumerate(self.space.decisions) if d.kind == "skip"]
        skip_rate = float(actions[:, skip_cols].float().mean()) if skip_cols else 0.0
        return {
            "loss": float(loss.detach()),
            "baseline": float(self.baseline),
            "entropy": float(entropy.detach().mean()),
            "skip_rate": skip_rate,
            "log_prob": float(log_prob.detach().mean()),
            "elite_best": max(self.memory.elites.values(), default=float("nan")),
            "policy_share": self.memory.policy_share(),
        }

    def log_prob(self, archs: Sequence[Arch]) -> Tensor:
        """Log-probability of each architecture under the current policy."""
        with torch.no_grad():
            actions = torch.as_tensor([list(a) for a in archs], dtype=torch.long)
            return self.policy(len(archs), actions=actions, mask_fn=self.action_mask)[1]

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "memory": self.memory.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline = state["baseline"]
        if "memory" in state:  # checkpoints written before the elite memory have none
            self.memory.load_state_dict(state["memory"])

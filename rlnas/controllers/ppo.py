"""The SB3 algorithms behind :class:`~rlnas.controllers.sb3.SB3Controller`: PPO, MaskablePPO, RecurrentPPO."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlnas.controllers.sb3 import SB3Controller
from rlnas.controllers.sb3_parts import full_mask
from rlnas.spaces.base import SearchSpace


class PPOController(SB3Controller):
    """stable-baselines3 PPO (Schulman et al., 2017) with an MLP policy on the action history.

    The policy has no masks: an action outside a decision's allowed choices is
    mapped onto them (``allowed[action % len(allowed)]``), so every sample is a
    valid architecture and the log-probability stored is the raw action's.
    """

    @classmethod
    def algorithm_class(cls) -> type:
        from stable_baselines3 import PPO

        return PPO


class MaskablePPOController(SB3Controller):
    """sb3-contrib MaskablePPO: invalid and infeasible choices get zero probability.

    Not recurrent: the observation carries the whole action history, which is
    all a Markov policy needs to take each decision in context.
    """

    uses_masks = True

    @classmethod
    def algorithm_class(cls) -> type:
        from sb3_contrib import MaskablePPO

        return MaskablePPO

    def _step(self, obs, masks, states, starts, deterministic):
        full = np.stack([full_mask(m, self.space.max_choices) for m in masks])
        actions, values, log_probs = self.model.policy(obs, deterministic=deterministic, action_masks=full)
        return actions, values, log_probs, None

    def _evaluate(self, obs, actions, masks, n):
        return self.model.policy.evaluate_actions(obs, actions, action_masks=masks)[1]


class RecurrentPPOController(SB3Controller):
    """sb3-contrib RecurrentPPO with an LSTM policy (the PPO analogue of the ENAS controller).

    RecurrentPPO has no action masks; invalid actions are handled like
    :class:`PPOController`'s (mapped onto the allowed choices).

    Args:
        lstm_hidden_size: Hidden size of the policy's LSTM (ENAS: 64).
        **kwargs: See :class:`SB3Controller`.
    """

    policy_name = "MlpLstmPolicy"
    recurrent = True

    def __init__(self, space: SearchSpace, seed: int = 0, lstm_hidden_size: int = 64, **kwargs: Any) -> None:
        if isinstance(lstm_hidden_size, bool) or not isinstance(lstm_hidden_size, int) or lstm_hidden_size < 1:
            raise ValueError(f"controller.lstm_hidden_size={lstm_hidden_size!r} must be a whole number >= 1")
        policy_kwargs = {"lstm_hidden_size": int(lstm_hidden_size), **(kwargs.pop("policy_kwargs", None) or {})}
        super().__init__(space, seed, policy_kwargs=policy_kwargs, **kwargs)

    @classmethod
    def algorithm_class(cls) -> type:
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO

    def _initial_states(self, n: int) -> Any:
        from sb3_contrib.common.recurrent.type_aliases import RNNStates

        lstm = self.model.policy.lstm_actor
        shape = (lstm.num_layers, n, lstm.hidden_size)

        def zeros() -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(shape, device=self.model.device), torch.zeros(shape, device=self.model.device)

        return RNNStates(zeros(), zeros())

    def _step(self, obs, masks, states, starts, deterministic):
        actions, values, log_probs, states = self.model.policy(obs, states, starts, deterministic=deterministic)
        return actions, values, log_probs, states

    def _evaluate(self, obs, actions, masks, n):
        # Whole episodes as sequences: zero LSTM states, an episode start at each first decision.
        states = self._initial_states(n)
        starts = torch.zeros(n, self.num_steps, device=self.model.device)
        starts[:, 0] = 1.0
        return self.model.policy.evaluate_actions(obs, actions, states, starts.reshape(-1))[1]

    def _slice_states(self, states: Any, i: int) -> Any:
        from sb3_contrib.common.recurrent.type_aliases import RNNStates

        return RNNStates(
            tuple(s[:, i : i + 1].clone() for s in states.pi), tuple(s[:, i : i + 1].clone() for s in states.vf)
        )

"""Pieces of the SB3 adapter: the elite imitation step, the rollout buffer as tensors, masks, an RNG guard.

:class:`EliteImitation` is the priority-queue training the RL controllers share
(Abolafia et al., 2018), written against an SB3 policy; the rest is what
:class:`~rlnas.controllers.sb3.SB3Controller` needs around SB3 itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.torch_layers import FlattenExtractor

from rlnas.spaces.base import Arch
from rlnas.spaces.seams import Evaluation
from rlnas.utils import global_rng_state, seed_everything, set_global_rng_state


class NoEvaluator:
    """Placeholder evaluator: the SB3 model needs the env's spaces, never its rewards."""

    reward_metric = "none"

    def evaluate(self, arch: Arch) -> Evaluation:  # pragma: no cover - never called
        raise RuntimeError("the SB3 controller's template environment does not evaluate architectures")


class HistoryExtractor(FlattenExtractor):
    """SB3's flatten extractor (one-hot action history) with an ``int`` feature size.

    SB3 reports a ``MultiDiscrete`` observation's size as a NumPy integer,
    which ``nn.LSTM`` rejects (RecurrentPPO on the action history).
    """

    def __init__(self, observation_space: Any) -> None:
        super().__init__(observation_space)
        self._features_dim = int(self._features_dim)


def buffer_state(buffer: Any) -> dict[str, Any]:
    """The rollout buffer's contents as tensors and numbers (loadable with ``weights_only=True``, no pickle)."""
    state: dict[str, Any] = {}
    for name, value in vars(buffer).items():
        if isinstance(value, np.ndarray):
            state[name] = torch.from_numpy(value.copy())
        elif isinstance(value, (bool, int, float)):
            state[name] = value
    return state


def load_buffer_state(buffer: Any, state: dict[str, Any]) -> None:
    """Fills ``buffer`` (built for the same space) from :func:`buffer_state`."""
    for name, value in state.items():
        current = getattr(buffer, name, None)
        if isinstance(value, torch.Tensor):
            # Arrays the buffer allocates (their dtype kept) or derives while sampling (taken as saved).
            dtype = current.dtype if isinstance(current, np.ndarray) else None
            setattr(buffer, name, value.numpy().astype(dtype, copy=True) if dtype else value.numpy().copy())
        elif isinstance(value, (bool, int, float)) and name in vars(buffer):
            setattr(buffer, name, type(current)(value) if current is not None else value)


class EliteImitation:
    """Imitation steps on the best architectures for an SB3 policy (mixed into the SB3 controller).

    Needs ``self.model`` (an SB3 algorithm), ``self.elite_weight``,
    ``self.num_steps``, ``self.space`` and ``self._mask_rows``.
    """

    model: Any
    elite_weight: float
    num_steps: int
    space: Any

    def _imitate(self, archs: list[Arch]) -> float | None:
        """Priority-queue training (Abolafia et al., 2018): ``n_epochs`` steps on the elites' log-likelihood.

        Runs after every observed batch, also while the rollout buffer is still filling.

        Returns the elites' mean log-probability before the steps (``None`` when there is nothing to imitate).
        """
        if not archs or self.elite_weight == 0:
            return None
        policy = self.model.policy
        policy.set_training_mode(True)
        obs, actions, masks = self._episodes(archs)
        first = None
        for _ in range(self.model.n_epochs):
            log_prob = self._evaluate(obs, actions, masks, len(archs)).view(len(archs), -1).sum(1)
            loss = -self.elite_weight * log_prob.mean()
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), self.model.max_grad_norm)
            policy.optimizer.step()
            first = float(log_prob.detach().mean()) if first is None else first
        policy.set_training_mode(False)
        return first

    def _episodes(self, archs: list[Arch]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Observations (n * T, T + 1), actions (n * T,) and masks (n * T, width) of known architectures."""
        T, width = self.num_steps, self.space.max_choices
        obs = np.zeros((len(archs), T, T + 1), dtype=np.int64)
        masks = np.zeros((len(archs), T, width), dtype=bool)
        for i, arch in enumerate(archs):
            for t in range(T):
                obs[i, t, :t] = np.asarray(arch[:t]) + 1
                obs[i, t, T] = t
                masks[i, t] = full_mask(self._mask_rows(t, [list(arch[:t])])[0], width)
        device = self.model.device
        return (
            torch.as_tensor(obs.reshape(-1, T + 1), device=device),
            torch.as_tensor(np.asarray(archs).reshape(-1), device=device),
            masks.reshape(-1, width),
        )

    def _evaluate(self, obs: torch.Tensor, actions: torch.Tensor, masks: np.ndarray, n: int) -> torch.Tensor:
        """Log-probabilities of ``actions`` (one per row of ``obs``) under the current policy."""
        return self.model.policy.evaluate_actions(obs, actions)[1]


def full_mask(mask: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros(width, dtype=bool)
    out[: len(mask)] = mask
    return out


class preserved_global_rng:
    """Runs a block with seeded global RNGs (python, numpy, torch) and restores all of them afterwards."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self._state = global_rng_state()
        if self.seed is not None:
            seed_everything(self.seed)

    def __exit__(self, *exc: object) -> None:
        set_global_rng_state(self._state)

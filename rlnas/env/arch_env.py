"""Building an architecture as a sequence of discrete actions."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlnas.spaces.base import SearchSpace
from rlnas.spaces.constraints import FeasibilityMask
from rlnas.spaces.seams import Evaluation, Evaluator, MetricReward, Reward, reward_number


class ArchitectureEnv(gym.Env):
    """One episode builds one architecture, one decision per step.

    ## Description
    The agent takes the decisions of a :class:`~rlnas.spaces.SearchSpace` in
    order (for the ENAS macro space: each layer's operation, then its skip
    connections). After the last decision the finished architecture is scored
    by an injected :class:`~rlnas.evaluators.Evaluator`; the environment
    itself never trains anything.

    ## Action Space
    ``Discrete(max_choices)``, the size of the largest decision. Choices a
    decision does not have are hidden by :meth:`action_masks` (for maskable
    agents). An action outside the mask is wrapped modulo the decision's number
    of choices (``invalid_action="wrap"``, so agents without masks still build
    valid architectures) or rejected (``invalid_action="raise"``).

    ## Observation Space
    ``MultiDiscrete([max_choices + 1] * T + [T + 1])``: the action history
    (choice + 1 per decision taken, 0 for decisions still open), then the index
    of the current step.

    ## Rewards
    0 for every step but the last; then ``reward(evaluator.evaluate(arch))``. On a
    sparse table with ``missing: skip``, an architecture the table lacks ends the
    episode with the table's ``missing_reward`` and ``info["missing"] = True``.

    ## Episode End
    Terminated after the ``T``-th decision; never truncated.

    ## Arguments
    - ``space``: the search space.
    - ``evaluator``: scores finished architectures.
    - ``reward``: turns an :class:`Evaluation` into a float (default: the metric).
    - ``invalid_action``: ``"wrap"`` or ``"raise"``.
    - ``feasibility``: optional :class:`~rlnas.rewards.FeasibilityMask`; its
      masks join the space's, so every finished architecture meets the hard
      limits. A masked action is replaced by the decision's cheapest choice
      (``"wrap"``) or rejected (``"raise"``).

    ``info`` of the last step holds ``arch``, ``metrics`` and ``costs``.
    """

    # render_fps: one decision a frame when a viewer animates "ansi" text.
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        space: SearchSpace,
        evaluator: Evaluator,
        reward: Reward | None = None,
        invalid_action: str = "wrap",
        render_mode: str | None = None,
        feasibility: FeasibilityMask | None = None,
    ) -> None:
        # Names or configs (space="macro") fail later, deep inside, with an AttributeError: named here.
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace (e.g. rlnas.spaces.MacroSpace()), got {type(space).__name__}")
        if not callable(getattr(evaluator, "evaluate", None)):
            raise TypeError(f"evaluator must have an evaluate(arch) method, got {type(evaluator).__name__}")
        if reward is not None and not callable(reward):  # "abc" failed at the first episode's end
            raise TypeError(
                f"reward must turn an Evaluation into a float (e.g. rlnas.rewards.MetricReward()), got {reward!r}"
            )
        if feasibility is not None and not callable(getattr(feasibility, "mask", None)):
            raise TypeError(f"feasibility must be a rlnas.rewards.FeasibilityMask, got {type(feasibility).__name__}")
        if invalid_action not in ("wrap", "raise"):
            raise ValueError(f"invalid_action={invalid_action!r}; allowed: 'wrap', 'raise'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            # "human" would draw nothing, silently: the environment renders text only
            raise ValueError(f"render_mode={render_mode!r}; allowed: {self.metadata['render_modes']} or None")
        self.space = space
        self.evaluator = evaluator
        self.reward_fn: Reward = reward or MetricReward()
        self.invalid_action = invalid_action
        self.render_mode = render_mode
        self.feasibility = feasibility
        self.num_steps = len(space)
        self.action_space = spaces.Discrete(space.max_choices)
        self.observation_space = spaces.MultiDiscrete(
            np.array([space.max_choices + 1] * self.num_steps + [self.num_steps + 1], dtype=np.int64)
        )
        self._actions: list[int] = []
        self.last_evaluation: Evaluation | None = None
        # Gymnasium's contract: reset() starts an episode (gymnasium.make's order check says so; the class
        # used directly must too, or a first step would silently take the place of a reset).
        self._started = False

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.num_steps + 1, dtype=np.int64)
        obs[: len(self._actions)] = np.asarray(self._actions, dtype=np.int64) + 1
        obs[-1] = len(self._actions)
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._actions = []
        self.last_evaluation = None
        self._started = True
        return self._obs(), {}

    def action_masks(self) -> np.ndarray:
        """Boolean mask of the valid actions of the current decision."""
        if len(self._actions) >= self.num_steps:
            return self.space.masks[-1].copy()
        mask = self.space.masks[len(self._actions)].copy()
        if self.feasibility is not None:
            mask &= self.feasibility.mask(self._actions)
        return mask

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self._started:
            raise RuntimeError("step() before the first reset(): call reset() to start an episode")
        if len(self._actions) >= self.num_steps:
            raise RuntimeError("episode is over: call reset()")
        t = len(self._actions)
        n = int(self.space.num_choices[t])
        # A Discrete action is an integer (a NumPy integer or a 0-d integer array from a policy too);
        # 2.9 or "1" is a caller's bug that int() would silently turn into another action.
        if isinstance(action, np.ndarray) and action.shape == () or isinstance(action, np.generic):
            action = action.item()
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
            raise TypeError(
                f"action {action!r} for decision {self.space.decisions[t].name!r} must be an integer "
                f"in 0..{n - 1}, got {type(action).__name__}"
            )
        action = int(action)
        if not 0 <= action < n:
            if self.invalid_action == "raise" or not 0 <= action < self.space.max_choices:
                raise ValueError(
                    f"action {action} is invalid for decision {self.space.decisions[t].name!r} with {n} choices"
                )
            action %= n
        if self.feasibility is not None and not self.feasibility.mask(self._actions)[action]:
            if self.invalid_action == "raise":
                raise ValueError(f"action {action} of {self.space.decisions[t].name!r} breaks a hard limit")
            action = self.feasibility.cheapest[t]
        self._actions.append(action)
        if len(self._actions) < self.num_steps:
            return self._obs(), 0.0, False, False, {}
        arch = tuple(self._actions)
        from rlnas.benchmarks.tabular import AbsentRecord

        try:
            evaluation = self.evaluator.evaluate(arch)
        except AbsentRecord:  # a sparse table's absent architecture (benchmark.missing=skip): its stand-in reward
            self.last_evaluation = None
            info = {"arch": arch, "metrics": {}, "costs": {}, "missing": True}
            return self._obs(), float(self.evaluator.missing_reward), True, False, info
        self.last_evaluation = evaluation
        reward = reward_number(self.reward_fn(evaluation), self.reward_fn)
        info = {"arch": arch, "metrics": dict(evaluation.metrics), "costs": dict(evaluation.costs)}
        return self._obs(), reward, True, False, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            done = self.space.decisions[: len(self._actions)]
            return ", ".join(f"{d.name}={d.choices[a]}" for d, a in zip(done, self._actions))
        return None

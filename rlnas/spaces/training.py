"""Training decisions beside the architecture's: joint architecture and hyperparameter search.

A trial search trains every candidate on its own, so how it is trained can be
searched with what it is: :class:`TrainingSpace` appends one decision per
training setting (``train/lr``, ``train/batch_size``, ...) after a space's own
decisions. The env, its masks and every controller see them as any other
decision; only the trial that trains the candidate tells them apart
(:meth:`TrainingSpace.split`). A supernet shares one recipe among all its
paths, so these decisions exist in trial searches only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rlnas.spaces.base import Arch, Decision, SearchSpace

#: Prefix of the training decisions' names (and of their kinds).
PREFIX = "train/"


def _choice_name(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class TrainingSpace(SearchSpace):
    """A space's decisions followed by training decisions.

    Args:
        base: The architecture space (what the network is built from).
        choices: Setting name -> its candidate values, e.g. ``{"lr": [0.01, 0.05, 0.1]}``.

    Raises:
        ValueError: On an empty list of values, a repeated value or a name the base space uses.
    """

    def __init__(self, base: SearchSpace, choices: Mapping[str, Sequence[Any]]) -> None:
        self.base = base
        self.choices: dict[str, tuple[Any, ...]] = {}
        decisions = list(base.decisions)
        for name, values in choices.items():
            values = tuple(values) if isinstance(values, (list, tuple)) else (values,)
            if not values:
                raise ValueError(f"trials.hparams.{name} lists no values")
            names = tuple(_choice_name(v) for v in values)
            if len(set(names)) != len(names):
                raise ValueError(f"trials.hparams.{name} lists a value twice: {list(values)}")
            self.choices[str(name)] = values
            decisions.append(Decision(f"{PREFIX}{name}", f"{PREFIX}{name}", names))
        super().__init__(decisions)

    def split(self, arch: Iterable[int]) -> tuple[Arch, dict[str, Any]]:
        """The base space's architecture and the training settings chosen by ``arch``."""
        values = self.validate(arch)
        n = len(self.base)
        return values[:n], {name: self.choices[name][c] for name, c in zip(self.choices, values[n:])}

    def describe(self, arch: Iterable[int]) -> str:
        """The base space's description, then ``train/name=value`` for each training decision."""
        base, settings = self.split(arch)
        return describe_with_settings(self.base.describe(base), settings)


def describe_with_settings(description: str, settings: Mapping[str, Any]) -> str:
    """An architecture's description followed by ``train/name=value`` for each training setting."""
    extra = " ".join(f"{PREFIX}{k}={_choice_name(v)}" for k, v in settings.items())
    return f"{description} {extra}".strip()

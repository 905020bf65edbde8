"""Search spaces: an ordered list of discrete decisions.

An architecture has exactly one representation in rlnas: a tuple of ints, one
choice index per decision. Everything else (readable dicts, strings, networks)
is derived from that tuple by the space that defines it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnas.utils import memory_budget

Arch = tuple[int, ...]


def check_supernet_fits(weights: float, keys: str, what: str = "the supernet") -> None:
    """Refuses a space whose supernet (every choice at its widest) would not fit, before anything is built.

    Args:
        weights: About how many float32 weights the supernet holds (an upper bound).
        keys: The settings that set the size, as the error names them.
        what: The network part sized (a task's head is checked alike).

    Raises:
        ValueError: Naming ``keys`` and the size, when it exceeds a quarter of this machine's memory.
    """
    if 4.0 * weights > memory_budget():
        raise ValueError(
            f"{keys}: {what} would hold about {4.0 * weights / 2**30:,.1f} GiB of weights, "
            "more than a quarter of this machine's memory"
        )


def check_choices(key: str, choices: Sequence[Any]) -> None:
    """Refuses an empty or repeated list of choices: a repeat gives one choice twice the prior probability.

    Raises:
        ValueError: Naming ``space.<key>``.
    """
    if not len(choices):
        raise ValueError(f"space.{key} must list at least one choice")
    if len(set(choices)) != len(choices):
        raise ValueError(f"space.{key} has duplicates: {list(choices)}")


#: Most decisions one architecture may take. A controller takes them one by one for every
#: architecture it proposes: 45,150 (300 macro layers) take ENAS 22 s per batch of 10 on this
#: project's 2-core CPU; 12.5 million (5,000 layers) would take hours per batch.
MAX_DECISIONS = 100_000


def check_decision_count(count: int, setting: str) -> None:
    """Refuses a space whose architectures take more than :data:`MAX_DECISIONS` decisions.

    Raises:
        ValueError: Naming the setting and the count.
    """
    if count > MAX_DECISIONS:
        raise ValueError(
            f"{setting} gives {count:,} decisions per architecture, more than a controller can take "
            f"({MAX_DECISIONS:,} at most); choose a smaller value"
        )


def _choice_index(value: Any) -> int:
    """``value`` as a choice index: a whole number (a NumPy or 0-d tensor integer, or a float such as 3.0).

    ``int()`` turned 2.9 into 2, ``True`` into 1 and ``"3"`` into 3: another architecture than the one meant.
    """
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is not a choice index")
    try:
        return operator.index(value)
    except TypeError:
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        raise TypeError(f"{value!r} is not a whole number") from None


class InvalidArchitectureError(ValueError):
    """Raised when an architecture does not belong to its search space."""


@dataclass(frozen=True)
class Decision:
    """One discrete decision of a search space.

    Attributes:
        name: Unique name, e.g. ``"layer3/op"``.
        kind: Group of decisions sharing semantics (and a controller head),
            e.g. ``"op"`` or ``"skip"``.
        choices: Readable names of the choices, in index order.
    """

    name: str
    kind: str
    choices: tuple[str, ...]

    @property
    def num_choices(self) -> int:
        return len(self.choices)


class SearchSpace:
    """An ordered list of :class:`Decision` with encode/decode/validate.

    Subclasses build the decisions; this base knows nothing about networks.

    Args:
        decisions: The decisions, in the order a controller takes them.
    """

    def __init__(self, decisions: Sequence[Decision]) -> None:
        if not decisions:
            raise ValueError("a search space needs at least one decision")
        names = [d.name for d in decisions]
        if len(set(names)) != len(names):
            raise ValueError(f"decision names must be unique, got {names}")
        for d in decisions:
            if d.num_choices < 1:
                raise ValueError(f"decision {d.name!r} has no choices")
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self.kinds: tuple[str, ...] = tuple(dict.fromkeys(d.kind for d in decisions))
        self.num_choices = np.array([d.num_choices for d in decisions], dtype=np.int64)
        self.max_choices = int(self.num_choices.max())
        # (num_decisions, max_choices) boolean table of the valid actions per step.
        self.masks = np.arange(self.max_choices)[None, :] < self.num_choices[:, None]

    def __len__(self) -> int:
        return len(self.decisions)

    @property
    def size(self) -> int:
        """Number of distinct architectures (may be astronomically large)."""
        return int(np.prod([int(n) for n in self.num_choices], dtype=object))

    def validate(self, arch: Iterable[int]) -> Arch:
        """Returns ``arch`` as a tuple of ints or raises a clear error.

        Raises:
            InvalidArchitectureError: On a wrong length or an out-of-range choice.
        """
        try:
            values = tuple(_choice_index(a) for a in arch)
        except (TypeError, ValueError) as err:
            raise InvalidArchitectureError(f"architecture must be a sequence of ints: {err}") from None
        if len(values) != len(self.decisions):
            raise InvalidArchitectureError(
                f"architecture has {len(values)} decisions, the space {type(self).__name__} "
                f"expects {len(self.decisions)}"
            )
        for value, d in zip(values, self.decisions):
            if not 0 <= value < d.num_choices:
                raise InvalidArchitectureError(
                    f"decision {d.name!r} got choice {value}, allowed 0..{d.num_choices - 1} ({', '.join(d.choices)})"
                )
        return values

    def decode(self, arch: Iterable[int]) -> dict[str, str]:
        """Maps each decision name to the readable name of its choice."""
        values = self.validate(arch)
        return {d.name: d.choices[v] for d, v in zip(self.decisions, values)}

    def encode(self, decoded: dict[str, Any]) -> Arch:
        """Inverse of :meth:`decode` (accepts choice names or indices)."""
        missing = [d.name for d in self.decisions if d.name not in decoded]
        if missing:
            raise InvalidArchitectureError(f"decoded architecture misses decisions {missing}")
        values = []
        for d in self.decisions:
            value = decoded[d.name]
            if isinstance(value, str):
                if value not in d.choices:
                    raise InvalidArchitectureError(
                        f"decision {d.name!r} has no choice {value!r}; allowed: {list(d.choices)}"
                    )
                values.append(d.choices.index(value))
            else:
                values.append(int(value))
        return self.validate(values)

    def describe(self, arch: Iterable[int]) -> str:
        """A compact one-line string of an architecture."""
        return " ".join(f"{k}={v}" for k, v in self.decode(arch).items())

    def sample(self, rng: np.random.Generator | int | None = None) -> Arch:
        """A uniformly random architecture (``rng``: a NumPy generator, or a seed for one)."""
        rng = np.random.default_rng(rng)  # a Generator passes through unchanged
        return tuple(int(rng.integers(n)) for n in self.num_choices)

"""The controller seam used by the search loop.

A controller proposes architectures (tuples of ints, i.e. the env's action
sequences, drawn under the same action masks) and learns from their rewards.
The loop never branches on the controller type.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.spaces.base import Arch, SearchSpace

#: The file a finished search saves its controller to (what ``controller.init_from`` reads).
CONTROLLER_FILE = "controller.pt"


#: Most weights a controller's policy may have (800 MB in float32); ENAS's default policy has about 35,000.
MAX_POLICY_WEIGHTS = 200_000_000


#: Largest seed a controller takes: NumPy's, torch's and optuna's generators all take 32-bit seeds.
MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """``seed`` as an int, refused by name unless it is a whole number in ``0..MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed={seed!r} must be a whole number in 0..{MAX_SEED}")
    return int(seed)


def check_count(n: Any, method: str) -> int:
    """``n`` as an int, refused unless it is a whole number >= 0 (``propose(2.5)`` is a caller's bug)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{method}(n): n={n!r} must be a whole number >= 0 (how many architectures)")
    return int(n)


def _counting(method: Callable[..., list[Arch]]) -> Callable[..., list[Arch]]:
    """``method`` (a controller's ``propose`` or ``best_guess``) with its ``n`` and its answer checked."""

    @functools.wraps(method)
    def checked(self: Controller, n: int, *args: Any, **kwargs: Any) -> list[Arch]:
        n = check_count(n, method.__name__)
        return checked_proposals(self, method.__name__, n, method(self, n, *args, **kwargs))

    checked.counts_checked = True  # type: ignore[attr-defined]
    return checked


def checked_proposals(controller: Controller, method: str, n: int, archs: Any) -> list[Arch]:
    """``archs`` (what ``controller.method(n)`` returned) as tuples of ints, once they are ``n`` of its space.

    A controller of the user's own could return anything: ``None`` or an empty list ended in a traceback
    of the search loop, an architecture one decision short in NumPy's "operands could not be broadcast",
    an out-of-range choice in a warning that the table lacked 200 proposals, and a choice of ``1.5`` was
    truncated to ``1`` without a word. Fewer than ``n`` is an answer (a space that small), none to
    ``propose`` is not: the loop would wait for one forever.

    Raises:
        ValueError: Naming the controller, the method and the first entry that is not usable.
    """
    where = f"{type(controller).__name__}.{method}({n})"
    if not isinstance(archs, (list, tuple)):
        raise ValueError(f"{where} returned {type(archs).__name__}, not a list of architectures")
    if len(archs) > n or (method == "propose" and n and not archs):
        raise ValueError(f"{where} returned {len(archs)} architectures; it must return 1 to {n}")
    out = []
    for i, arch in enumerate(archs):
        try:
            out.append(controller.space.validate(arch))
        except ValueError as err:
            raise ValueError(
                f"{where} returned an architecture not of this space (entry {i}, {arch!r}): {err}"[:400]
            ) from None
    return out


def checked_stats(controller: Controller, stats: Any) -> dict[str, float]:
    """What ``controller.observe`` returned, as the statistics to log (``None``: none).

    Raises:
        ValueError: For a result that is not a mapping of names to numbers, naming the controller and key.
    """
    if stats is None:
        return {}
    where = f"{type(controller).__name__}.observe"
    if not isinstance(stats, dict):
        raise ValueError(f"{where} returned {type(stats).__name__}; it must return a dict of statistics (or None)")
    out = {}
    for key, value in stats.items():
        try:
            if isinstance(value, str):
                raise TypeError(value)
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} returned {key!r}: {value!r}"[:200] + "; statistics must be numbers") from None
    return out


def _observing(method: Callable[..., Any]) -> Callable[..., dict[str, float]]:
    """``method`` (a controller's ``observe``) with its statistics checked."""

    @functools.wraps(method)
    def checked(self: Controller, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        return checked_stats(self, method(self, archs, rewards))

    checked.counts_checked = True  # type: ignore[attr-defined]
    return checked


def check_policy_size(weights: int, setting: str, what: str = "a policy") -> None:
    """Refuses a policy too large to build before it is allocated, naming the setting that sizes it.

    ``controller.lstm_size=1000000000`` asked the allocator for 160 GB (a traceback where memory is
    capped; where it is not, the kernel's out-of-memory kill, without a word).

    Raises:
        ValueError: Naming ``setting`` and the size it asks for.
    """
    if weights > MAX_POLICY_WEIGHTS:
        raise ValueError(
            f"{setting} gives {what} of {weights:.3g} numbers ({4 * weights / 2**30:,.0f} GiB); "
            f"controllers are built with at most {MAX_POLICY_WEIGHTS:,}"
        )


def check_finite_weights(module: Any, setting: str) -> None:
    """Refuses a policy whose update left a weight NaN or infinite, naming the setting to lower.

    A learning rate such as 1e37 passes every range check and then overflows the first Adam step; the next
    sample failed deep in torch ("probability tensor contains either inf, nan", or a distribution's
    constraint report).

    Raises:
        ValueError: Naming ``setting`` (e.g. ``controller.lr=1e+37``).
    """
    import torch

    if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
        raise ValueError(f"{setting}: a policy update made the controller's weights non-finite; lower it")


def name_update_failure(err: Exception, module: Any, setting: str) -> None:
    """Raises a one-line error naming ``setting`` when ``err`` (from a policy update) came from its size.

    Weights made non-finite by the update are named by :func:`check_finite_weights`; torch's
    "value cannot be converted to type float without overflow" (Adam divides the learning rate by
    ``1 - beta1``, so 3e38 overflows float32) is named likewise. Any other error is left to the caller.
    """
    check_finite_weights(module, setting)
    if isinstance(err, RuntimeError) and "overflow" in str(err):
        raise ValueError(f"{setting}: overflows float32 in the controller's optimiser step; lower it") from None


def check_observation(space: SearchSpace, archs: Sequence[Arch], rewards: Sequence[float]) -> list[Arch]:
    """``archs`` as tuples, once they and ``rewards`` are what :meth:`Controller.observe` learns from.

    The search loops hand over only finite rewards of valid architectures; a loop of the user's own
    (ask/tell from Python) could hand over anything, and a NaN or infinite reward, a string, or an
    architecture from another space broke the controllers each their own way (a NaN policy, a baseline
    stuck at inf, an IndexError deep in the LSTM, or nothing at all).

    Raises:
        ValueError: Naming the first entry that is not usable.
    """
    if len(archs) != len(rewards):
        raise ValueError(f"observe: {len(archs)} architectures but {len(rewards)} rewards; one reward per architecture")
    checked = []
    for i, (arch, reward) in enumerate(zip(archs, rewards)):
        try:
            checked.append(space.validate(arch))
        except ValueError as err:
            raise ValueError(f"observe: architecture {i} ({arch!r}) is not one of this space: {err}"[:300]) from None
        if isinstance(reward, bool) or not isinstance(reward, (int, float, np.integer, np.floating)):
            raise ValueError(f"observe: reward {i} must be a number, got {reward!r}"[:200])
        if not np.isfinite(reward):
            raise ValueError(
                f"observe: reward {i} is {reward}; leave failed evaluations out (the search loops do) or give "
                "them a low finite reward"
            )
    return checked


class Controller(abc.ABC):
    """Base class of controllers.

    Args:
        space: The search space whose decisions the controller takes.
        seed: Seed of the controller's own randomness.
    """

    #: Whether :meth:`observe` changes what :meth:`propose` returns.
    learns: bool = True
    #: Whether the controller learns architecture weights by gradient (DARTS,
    #: GDAS): the loop then trains the supernet on its mixture weights and
    #: hands it validation losses (see :mod:`rlnas.controllers.differentiable`).
    differentiable: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every controller's propose(n) and best_guess(n), a user's own included, take a count (2.5 or -1
        # was rounded up, emptied or failed deep inside depending on the controller) and answer with
        # architectures of the space; observe answers with statistics to log.
        super().__init_subclass__(**kwargs)
        for name, wrap in (("propose", _counting), ("best_guess", _counting), ("observe", _observing)):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "counts_checked", False):
                setattr(cls, name, wrap(method))

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.rng = np.random.default_rng(check_seed(seed))
        #: Optional extra mask: prefix -> allowed actions of the next decision
        #: (e.g. a :class:`~rlnas.rewards.FeasibilityMask`), the env's masks too.
        self.action_mask: Callable[[Sequence[int]], np.ndarray] | None = None

    @abc.abstractmethod
    def propose(self, n: int) -> list[Arch]:
        """Samples ``n`` architectures to evaluate."""

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        """Learns from the rewards of proposed architectures; returns statistics to log.

        Raises:
            ValueError: When the lengths differ, an architecture is not of the space or a reward is not a
                finite number (:func:`check_observation`).
        """
        check_observation(self.space, archs, rewards)
        return {}

    def best_guess(self, n: int) -> list[Arch]:
        """Architectures the controller believes best (default: fresh samples)."""
        return self.propose(check_count(n, "best_guess"))

    def sample_allowed(self) -> Arch:
        """One uniform sample, each decision drawn among the choices :attr:`action_mask` allows."""
        if self.action_mask is None:
            return self.space.sample(self.rng)
        prefix: list[int] = []
        for t in range(len(self.space)):
            allowed = np.flatnonzero(self.space.masks[t] & self.action_mask(prefix))
            prefix.append(int(self.rng.choice(allowed)))
        return tuple(prefix)

    #: Mutations tried before :meth:`mutate` falls back to a fresh :meth:`sample_allowed`.
    max_rejections = 20

    def mutate(self, arch: Sequence[int]) -> Arch:
        """``arch`` with one random decision changed to another choice, one :attr:`action_mask` allows."""
        mutable = [t for t, n in enumerate(self.space.num_choices) if n > 1]
        if not mutable:  # a space of one architecture
            return tuple(arch)
        for _ in range(self.max_rejections):
            t = int(self.rng.choice(mutable))
            choices = [c for c in range(int(self.space.num_choices[t])) if c != arch[t]]
            child = list(arch)
            child[t] = int(self.rng.choice(choices))
            if self.allowed(child):
                return tuple(child)
        return self.sample_allowed()

    def new_neighbour(self, arch: Sequence[int], known: Callable[[Arch], bool]) -> Arch | None:
        """A random one-decision neighbour of ``arch`` that is allowed and not ``known``; ``None`` when none is left."""
        options = []
        for t, n in enumerate(self.space.num_choices):
            for c in range(int(n)):
                if c != arch[t]:
                    child = (*arch[:t], c, *arch[t + 1 :])
                    if not known(child) and self.allowed(child):
                        options.append(child)
        return options[int(self.rng.integers(len(options)))] if options else None

    def allowed(self, arch: Sequence[int]) -> bool:
        """Whether every decision of ``arch`` is allowed by :attr:`action_mask` (always, without one)."""
        if self.action_mask is None:
            return True
        return all(bool(self.action_mask(list(arch[:t]))[a]) for t, a in enumerate(arch))

    def save(self, directory: Path) -> None:
        """Writes ``controller.pt`` (the state and the class name, atomically) and :meth:`save_artifacts`."""
        from rlnas.utils import save_atomic

        save_atomic({**self.state_dict(), "controller_class": type(self).__name__}, Path(directory) / CONTROLLER_FILE)
        self.save_artifacts(Path(directory))

    def save_artifacts(self, directory: Path) -> list[Path]:
        """Writes controller files in their native format (e.g. an SB3 model zip); returns their paths."""
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"controller_class": type(self).__name__, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`'s state.

        Raises:
            ValueError: For a mapping that is no controller's state, or another controller class's.
        """
        if not isinstance(state, dict) or "rng" not in state:
            shown = sorted(map(str, state))[:6] if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"not a controller's state (it has no 'rng'; it holds {shown})")
        kind = state.get("controller_class")
        if kind is not None and kind != type(self).__name__:  # each class reads its own keys
            raise ValueError(f"this state is a {kind}'s; {type(self).__name__} cannot load it")
        self.rng.bit_generator.state = state["rng"]


class RandomController(Controller):
    """Uniform random search over the space (Li & Talwalkar, 2019, as a baseline)."""

    learns = False

    def propose(self, n: int) -> list[Arch]:
        return [self.sample_allowed() for _ in range(n)]

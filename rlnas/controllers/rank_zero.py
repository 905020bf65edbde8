"""The controller of a multi-process search: rank 0 decides, the other ranks are told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlnas.controllers.base import Controller
from rlnas.spaces.base import Arch
from rlnas.utils.distributed import Comm


class RankZeroController:
    """A controller that decides on rank 0 and tells the other ranks.

    ``propose`` and ``best_guess`` are broadcast from rank 0; ``observe``
    updates rank 0's controller only (the rewards it gets are already averaged
    over all ranks). Everything else (masks, flags, state, saving) is the
    wrapped controller's own; the other ranks' copies stay untrained.

    Args:
        inner: The controller rank 0 runs.
        comm: The ranks.
    """

    def __init__(self, inner: Controller, comm: Comm) -> None:
        self.inner, self.comm = inner, comm

    def __getattr__(self, name: str) -> Any:
        if name in ("inner", "comm"):  # during unpickling, before __init__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def propose(self, n: int) -> list[Arch]:
        archs = self.inner.propose(n) if self.comm.is_main else None
        return [tuple(a) for a in self.comm.broadcast_object(archs)]

    def best_guess(self, n: int) -> list[Arch]:
        archs = self.inner.best_guess(n) if self.comm.is_main else None
        return [tuple(a) for a in self.comm.broadcast_object(archs)]

    def observe(self, archs: Sequence[Arch], rewards: Sequence[float]) -> dict[str, float]:
        return self.inner.observe(archs, rewards) if self.comm.is_main else {}

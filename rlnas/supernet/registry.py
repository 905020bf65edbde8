"""Which supernet and child classes build each space type.

Below every supernet module, so that shared code (a supernet extracting its
own child) can build children without importing the package that imports it.
The package :mod:`rlnas.supernet` registers the shipped space types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from rlnas.spaces.base import SearchSpace

_REGISTRY: dict[type, tuple[type[nn.Module], type[nn.Module]]] = {}


def register(space_type: type, supernet_cls: type[nn.Module], child_cls: type[nn.Module]) -> None:
    """Declares how to build the supernet and children of ``space_type``."""
    _REGISTRY[space_type] = (supernet_cls, child_cls)


def _lookup(space: SearchSpace) -> tuple[type[nn.Module], type[nn.Module]]:
    for cls in type(space).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    raise TypeError(f"no supernet is registered for the space {type(space).__name__}")


def build_supernet(space: SearchSpace, in_channels: int) -> Any:
    """The shared-weight supernet of ``space``; ``forward(x, arch)`` returns stage features."""
    return _lookup(space)[0](space, in_channels)


def build_child(space: SearchSpace, arch: Sequence[int], in_channels: int, track_running_stats: bool = True) -> Any:
    """A fresh standalone child network of ``arch``; ``forward(x)`` returns stage features."""
    return _lookup(space)[1](space, arch, in_channels, track_running_stats=track_running_stats)

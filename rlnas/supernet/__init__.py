"""Shared-weight supernets and their standalone children, one per space type.

A space type plugs in with :func:`register` (supernet class, child class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from rlnas.spaces.base import SearchSpace
from rlnas.spaces.cell import NB201Space
from rlnas.spaces.macro import MacroSpace
from rlnas.spaces.sequence import AttentionSpace, RNNCellSpace
from rlnas.supernet.attention import AttentionChild, AttentionSuperNet
from rlnas.supernet.cell import NB201Child, NB201SuperNet
from rlnas.supernet.macro import MacroChild, MacroSuperNet
from rlnas.supernet.recurrent import RNNCellChild, RNNCellSuperNet

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


register(MacroSpace, MacroSuperNet, MacroChild)
register(NB201Space, NB201SuperNet, NB201Child)
register(RNNCellSpace, RNNCellSuperNet, RNNCellChild)
register(AttentionSpace, AttentionSuperNet, AttentionChild)

__all__ = [
    "AttentionChild", "AttentionSuperNet", "MacroChild", "MacroSuperNet", "NB201Child", "NB201SuperNet",
    "RNNCellChild", "RNNCellSuperNet", "build_child", "build_supernet", "register",
]

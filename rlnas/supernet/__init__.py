"""Shared-weight supernets and their standalone children, one per space type.

A space type plugs in with :func:`register` (supernet class, child class);
the registry lives in :mod:`rlnas.supernet.registry`, below the supernets.
"""

from __future__ import annotations

from rlnas.spaces.cell import NB201Space
from rlnas.spaces.macro import MacroSpace
from rlnas.spaces.sequence import AttentionSpace, RNNCellSpace
from rlnas.supernet.attention import AttentionChild, AttentionSuperNet
from rlnas.supernet.cell import NB201Child, NB201SuperNet
from rlnas.supernet.macro import MacroChild, MacroSuperNet
from rlnas.supernet.recurrent import RNNCellChild, RNNCellSuperNet
from rlnas.supernet.registry import build_child, build_supernet, register

register(MacroSpace, MacroSuperNet, MacroChild)
register(NB201Space, NB201SuperNet, NB201Child)
register(RNNCellSpace, RNNCellSuperNet, RNNCellChild)
register(AttentionSpace, AttentionSuperNet, AttentionChild)

__all__ = [
    "AttentionChild",
    "AttentionSuperNet",
    "MacroChild",
    "MacroSuperNet",
    "NB201Child",
    "NB201SuperNet",
    "RNNCellChild",
    "RNNCellSuperNet",
    "build_child",
    "build_supernet",
    "register",
]

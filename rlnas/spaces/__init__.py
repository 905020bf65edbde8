"""Search spaces: decisions, choices and the tuple-of-ints architecture."""

from rlnas.spaces.base import Arch, Decision, InvalidArchitectureError, SearchSpace
from rlnas.spaces.categorical import CategoricalSpace
from rlnas.spaces.cell import NB201Space
from rlnas.spaces.macro import MacroSpace, parse_op
from rlnas.spaces.sequence import AttentionSpace, RNNCellSpace

__all__ = [
    "Arch",
    "AttentionSpace",
    "CategoricalSpace",
    "Decision",
    "InvalidArchitectureError",
    "MacroSpace",
    "NB201Space",
    "RNNCellSpace",
    "SearchSpace",
    "parse_op",
]

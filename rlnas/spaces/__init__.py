"""Search spaces: decisions, choices and the tuple-of-ints architecture."""

from rlnas.spaces.base import Arch, Decision, InvalidArchitectureError, SearchSpace
from rlnas.spaces.categorical import CategoricalSpace
from rlnas.spaces.cell import NB201Space
from rlnas.spaces.macro import MacroSpace, parse_op

__all__ = [
    "Arch", "CategoricalSpace", "Decision", "InvalidArchitectureError", "MacroSpace", "NB201Space", "SearchSpace",
    "parse_op",
]

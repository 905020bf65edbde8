"""Search spaces: decisions, choices and the tuple-of-ints architecture."""

from rlnas.spaces.base import Arch, Decision, InvalidArchitectureError, SearchSpace
from rlnas.spaces.macro import MacroSpace, parse_op

__all__ = ["Arch", "Decision", "InvalidArchitectureError", "MacroSpace", "SearchSpace", "parse_op"]

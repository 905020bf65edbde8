"""Hard limits as action masks (defined in :mod:`rlnas.spaces.constraints`, below the env and controllers)."""

from rlnas.spaces.constraints import FeasibilityMask, InfeasibleConstraintError

__all__ = ["FeasibilityMask", "InfeasibleConstraintError"]

"""The evaluator seam: an architecture in, its metrics and costs out (defined in :mod:`rlnas.spaces.seams`)."""

from rlnas.spaces.seams import Evaluation, Evaluator

__all__ = ["Evaluation", "Evaluator"]

"""Evaluators: architecture -> metrics and costs."""

from rlnas.evaluators.base import Evaluation, Evaluator
from rlnas.evaluators.supernet import SuperNetEvaluator

__all__ = ["Evaluation", "Evaluator", "SuperNetEvaluator"]

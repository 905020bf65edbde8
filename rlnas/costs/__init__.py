"""Cost models: parameters, model size, FLOPs and a latency lookup table."""

from rlnas.costs.latency import LatencyTable, measure_ms
from rlnas.costs.model import COST_NAMES, CostModel

__all__ = ["COST_NAMES", "CostModel", "LatencyTable", "measure_ms"]
